// Package decisionlog writes decision logs in OPA's event shape, one JSON
// line per decision, asynchronously. It observes the engine through
// decision.InputObserver.
package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/internal/redact"
)

// Options configure decision logs.
type Options struct {
	// Path is the decision's path in OPA's event ("mcp/authz/decision");
	// default "mcp/authz/decision".
	Path    string
	Console bool // write events to standard output
	// ConsoleFormat is how Console writes: ConsoleJSON (the default:
	// OPA's events, one JSON line each) or ConsoleText (one line per
	// decision for a person; events then go to File, Writer or Service
	// only, when set).
	ConsoleFormat string
	// TextWriter, when set, receives the ConsoleText lines instead of
	// standard output: a test's.
	TextWriter io.Writer
	File       string // append events to this file
	// Writer, when set, receives the events instead of standard output or
	// File: another sink, or a test's.
	Writer io.Writer
	// Buffer is how many events may wait to be written; when full, new
	// events are dropped and counted rather than slowing decisions.
	Buffer int
	// Service, when its URL is set, uploads the events in OPA's decision
	// log protocol (beside any other sink).
	Service ServiceOptions
	// Policy, when set, returns the current policy, whose decision log
	// mask and drop rules (decision.Policy.LogRules) apply to every event
	// before it is written.
	Policy func() *decision.Policy
	Logger *slog.Logger
}

// Log writes one JSON line per decision in OPA's decision log event
// shape, asynchronously: the decision path only hands over a pointer, so a
// slow, blocked or failing sink never slows a decision; its events are
// dropped and counted instead. The input it logs is the policy input, whose
// credentials are erased when it is built (see decision.Redacted).
type Log struct {
	ch      chan event
	w       io.Writer
	closer  io.Closer
	done    chan struct{}
	dropped atomic.Uint64
	up      *uploader // nil without a service
	text    io.Writer // ConsoleText's lines; nil without
	policy  func() *decision.Policy
	log     *slog.Logger
	path    string
	// lastWarn is when a write failure was last logged; only run reads and
	// writes it.
	lastWarn       time.Time
	lastUploadWarn atomic.Int64 // unix nanoseconds
	// inputJSON is where run writes an event's input as JSON, reused from
	// event to event.
	inputJSON []byte
}

// decisionLogWarnEvery spaces the warnings of a failing sink: a full disk
// fails every write, and one line per decision would flood the log.
const decisionLogWarnEvery = time.Minute

// decisionLogBatch is how many bytes of events are written at once, at most
// (one event more): a burst costs one write, not one per event.
const decisionLogBatch = 64 << 10

type event struct {
	// pin, when set, is a tool pin mismatch (decision.PinObserver), not a
	// decision: d and input are nil.
	pin *decision.PinMismatch
	// result, when set, is what the result rule did with the answer to
	// the call d allowed (decision.ResultObserver): input is nil.
	result  *decision.ResultOutcome
	d       *decision.Decision
	input   ast.Value
	elapsed time.Duration
	at      time.Time
	// shadow, when set, makes this a shadow difference event: d is the
	// live decision, shadow the shadow bundle's, which took shadowElapsed.
	shadow        *decision.Decision
	shadowElapsed time.Duration
}

// New starts the writer.
func New(o Options) (*Log, error) {
	if o.Buffer <= 0 {
		o.Buffer = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Path == "" {
		o.Path = "mcp/authz/decision"
	}
	l := &Log{ch: make(chan event, o.Buffer), done: make(chan struct{}), log: o.Logger, path: o.Path, policy: o.Policy}
	switch o.ConsoleFormat {
	case "", ConsoleJSON:
	case ConsoleText:
		if o.Console {
			l.text, o.Console = o.TextWriter, false
			if l.text == nil {
				l.text = os.Stdout
			}
		}
	default:
		return nil, fmt.Errorf("decision log console format %q is not %s or %s", o.ConsoleFormat, ConsoleJSON, ConsoleText)
	}
	switch {
	case o.Writer != nil:
		l.w = o.Writer
	case o.File != "":
		f, err := os.OpenFile(o.File, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, fmt.Errorf("opening decision log: %w", err)
		}
		l.w, l.closer = f, f
	case o.Console:
		l.w = os.Stdout
	case o.Service.URL == "" && l.text == nil:
		return nil, errNoSink
	}
	if o.Service.URL != "" {
		l.up = newUploader(o.Service, &l.dropped, l.uploadFailed)
	}
	go l.run()
	return l, nil
}

// Observe queues the decision for writing; it never blocks.
func (l *Log) Observe(_ context.Context, _ *decision.Request, d *decision.Decision, input ast.Value, elapsed time.Duration) {
	select {
	case l.ch <- event{d: d, input: input, elapsed: elapsed, at: time.Now()}:
	default:
		l.dropped.Add(1)
	}
}

// ObservePinMismatch queues an event for a listed tool that did not
// match its pin; it never blocks.
func (l *Log) ObservePinMismatch(_ context.Context, _ *decision.Request, m *decision.PinMismatch) {
	select {
	case l.ch <- event{pin: m, at: time.Now()}:
	default:
		l.dropped.Add(1)
	}
}

// ObserveResult queues the event of an answer the result rule judged,
// under the decision id of the call (outcome, method, the redactions'
// names and counts, never the text matched); it never blocks.
func (l *Log) ObserveResult(_ context.Context, d *decision.Decision, o *decision.ResultOutcome) {
	oc := *o
	select {
	case l.ch <- event{d: d, result: &oc, at: time.Now()}:
	default:
		l.dropped.Add(1)
	}
}

// ResultPath is the path of the events that tell what the result rule
// did with an answer.
const ResultPath = "mcpauthz/result"

// ObserveShadow queues the event of a decision the shadow bundle decided
// otherwise (see internal/shadow): live is the decision as made, shadow
// the shadow bundle's, input the input the shadow decided on. It never
// blocks; a full buffer drops the event and counts it.
func (l *Log) ObserveShadow(live, shadow *decision.Decision, input ast.Value, elapsed, shadowElapsed time.Duration) {
	select {
	case l.ch <- event{d: live, input: input, elapsed: elapsed, at: time.Now(), shadow: shadow, shadowElapsed: shadowElapsed}:
	default:
		l.dropped.Add(1)
	}
}

// PinPath is the path of the events that tell of a tool pin mismatch.
const PinPath = "mcpauthz/tool_pin"

// ObservesInput is true: the log records the whole input.
func (l *Log) ObservesInput() bool { return true }

// Dropped returns how many events were dropped: because the buffer was full
// (the sink is slower than decisions, or blocked), or because the sink
// failed to take them.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// opaEvent is OPA's decision log event, with mcpauthz's outcome in result.
type opaEvent struct {
	DecisionID string         `json:"decision_id"`
	Path       string         `json:"path"`
	Input      any            `json:"input,omitempty"`
	Result     map[string]any `json:"result"`
	Bundles    map[string]any `json:"bundles,omitempty"`
	Timestamp  string         `json:"timestamp"`
	Metrics    map[string]any `json:"metrics"`
	Labels     map[string]any `json:"labels"`
	Erased     []string       `json:"erased,omitempty"`
	Masked     []string       `json:"masked,omitempty"`
	// DryRun marks a decision made under policy.dry_run: result is the
	// policy's real outcome, and the request was allowed.
	DryRun bool `json:"dry_run,omitempty"`
	// ShadowResult is what the shadow bundle decided where it differs
	// from result; Shadow marks such an event, a second event of the
	// decision (same decision_id) beside its own.
	ShadowResult map[string]any `json:"shadow_result,omitempty"`
	Shadow       bool           `json:"shadow,omitempty"`
}

// run writes the queued events until Close. Events are encoded into a batch
// that is written when the queue is empty or the batch full; a batch the
// sink refuses is dropped and counted, and the next one is tried afresh, so
// a sink that recovers (a disk freed) is written to again.
func (l *Log) run() {
	defer close(l.done)
	var batch bytes.Buffer
	enc := json.NewEncoder(&batch)
	n := 0 // events in batch
	flush := func() {
		if n == 0 {
			return
		}
		if _, err := l.w.Write(batch.Bytes()); err != nil {
			l.dropped.Add(uint64(n))
			l.writeFailed(err)
		}
		batch.Reset()
		n = 0
	}
	for ev := range l.ch {
		// A pin event holds no input, and the mask and drop rules are
		// written for decisions: it is written as it is.
		var pol *decision.Policy
		if l.policy != nil && ev.pin == nil && ev.result == nil {
			pol = l.policy()
		}
		masking := pol != nil && hasLogRules(pol)
		// Mask and drop rules edit the input as Go values; without them it
		// is written straight from the policy's values.
		e := l.opaEvent(&ev, !masking)
		if masking && l.maskAndDrop(pol, &e) {
			continue
		}
		if l.text != nil {
			l.writeText(&ev, &e, masking)
		}
		mark := batch.Len()
		if err := enc.Encode(&e); err != nil {
			batch.Truncate(mark)
			l.dropped.Add(1)
			l.writeFailed(err)
			continue
		}
		if l.up != nil {
			// The encoder ends the event with a newline; the array does not
			// need it.
			l.up.add(bytes.Clone(bytes.TrimSuffix(batch.Bytes()[mark:], []byte{'\n'})))
		}
		if l.w == nil {
			batch.Reset()
			continue
		}
		n++
		if len(l.ch) == 0 || batch.Len() >= decisionLogBatch {
			flush()
		}
	}
	flush()
}

// opaEvent builds the logged event of one decision. The conversion of the
// input happens here, off the decision path.
func (l *Log) opaEvent(ev *event, rawInput bool) opaEvent {
	if m := ev.pin; m != nil {
		return opaEvent{
			DecisionID: m.ID,
			Path:       PinPath,
			Result: map[string]any{"allow": false, "code": decision.CodeToolPinMismatch, "reason": redact.String(m.Reason()),
				"tool": m.Tool, "server": m.Server, "pinned_sha256": m.Pinned, "listed_sha256": m.Listed},
			Bundles:   map[string]any{"policy": map[string]any{"revision": m.Revision}},
			Timestamp: ev.at.UTC().Format(time.RFC3339Nano),
			Metrics:   map[string]any{},
			Labels:    map[string]any{"app": "mcpauthz"},
		}
	}
	if o := ev.result; o != nil {
		res := map[string]any{"outcome": o.Outcome, "method": o.Method}
		if ev.d.Tool != "" {
			res["tool"] = ev.d.Tool
		}
		if len(o.Counts) > 0 {
			res["redactions"] = map[string]int(o.Counts)
		}
		if o.Reason != "" {
			res["reason"] = redact.String(o.Reason)
		}
		if o.Err != nil {
			res["error"] = redact.String(o.Err.Error())
		}
		return opaEvent{
			DecisionID: ev.d.ID,
			Path:       ResultPath,
			Result:     res,
			Bundles:    map[string]any{"policy": map[string]any{"revision": ev.d.Revision}},
			Timestamp:  ev.at.UTC().Format(time.RFC3339Nano),
			Metrics:    map[string]any{},
			Labels:     map[string]any{"app": "mcpauthz"},
		}
	}
	var input any
	if ev.input != nil {
		var ok bool
		if rawInput {
			l.inputJSON, ok = appendJSON(l.inputJSON[:0], ev.input)
			if ok {
				input = json.RawMessage(l.inputJSON)
			}
		}
		if !ok {
			input, _ = ast.JSON(ev.input)
			input = eraseValue(input)
		}
	}
	e := opaEvent{
		DecisionID: ev.d.ID,
		Path:       l.path,
		Input:      input,
		Result:     ResultOf(ev.d).erased().event(),
		Bundles:    map[string]any{"policy": map[string]any{"revision": ev.d.Revision}},
		Timestamp:  ev.at.UTC().Format(time.RFC3339Nano),
		Metrics:    map[string]any{"timer_server_handler_ns": ev.elapsed.Nanoseconds()},
		Labels:     map[string]any{"app": "mcpauthz"},
		DryRun:     ev.d.DryRun,
	}
	if ev.shadow != nil {
		e.Shadow, e.ShadowResult = true, ResultOf(ev.shadow).erased().event()
		e.Bundles["shadow"] = map[string]any{"revision": ev.shadow.Revision}
		e.Metrics["timer_shadow_ns"] = ev.shadowElapsed.Nanoseconds()
	}
	return e
}

// writeFailed logs a failure of the sink, at most once a
// decisionLogWarnEvery; Dropped counts every event lost meanwhile.
func (l *Log) writeFailed(err error) {
	now := time.Now()
	if !l.lastWarn.IsZero() && now.Sub(l.lastWarn) < decisionLogWarnEvery {
		return
	}
	l.lastWarn = now
	l.log.Warn("writing decision log failed; events dropped", "error", err, "dropped_total", l.dropped.Load())
}

// uploadFailed logs a failed upload; the events stay buffered for the
// next attempt, up to the buffer's limit. It runs on the uploader's
// goroutine, so it has its own pacing.
func (l *Log) uploadFailed(err error) {
	now := time.Now()
	if last := l.lastUploadWarn.Load(); last != 0 && now.Sub(time.Unix(0, last)) < decisionLogWarnEvery {
		return
	}
	l.lastUploadWarn.Store(now.UnixNano())
	l.log.Warn("uploading decision logs failed; will retry", "error", err, "dropped_total", l.dropped.Load())
}

// Uploaded returns how many events the decision log service accepted.
func (l *Log) Uploaded() uint64 {
	if l.up == nil {
		return 0
	}
	return l.up.uploaded.Load()
}

// Close flushes pending events (one last upload to the service) and
// closes the file.
func (l *Log) Close() error {
	close(l.ch)
	<-l.done
	if l.up != nil {
		l.up.close()
	}
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}

var (
	_ decision.InputObserver = (*Log)(nil)
	_ decision.PinObserver   = (*Log)(nil)
)
