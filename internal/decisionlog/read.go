package decisionlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/internal/redact"
)

// Result is what an event records of a decision (its result member):
// the fields that say what the caller got. Two decisions with equal
// Results answered their caller alike (headers aside).
type Result struct {
	Allow  bool     `json:"allow"`
	Code   string   `json:"code"`
	Reason string   `json:"reason,omitempty"`
	Scopes []string `json:"scopes,omitempty"`
	// Status is the HTTP status of a denial; 0 on allow.
	Status int `json:"status,omitempty"`
	// RateLimit is the policy's rate_limit of an allowed decision: what
	// Envoy's rate limit service counted the call against.
	RateLimit map[string]string `json:"rate_limit,omitempty"`
}

// ResultOf is the Result of d, as its event records it.
func ResultOf(d *decision.Decision) Result {
	r := Result{Allow: d.Allow, Code: d.Code, Reason: d.Reason, Scopes: d.Scopes}
	if !d.Allow {
		r.Status = d.Status
	}
	if len(d.RateLimit) > 0 {
		r.RateLimit = make(map[string]string, len(d.RateLimit))
		for _, e := range d.RateLimit {
			r.RateLimit[e.Name] = e.Value
		}
	}
	return r
}

// erased returns r with its reason and rate limit values passed through
// redact.String, as every string of a logged event is.
func (r Result) erased() Result {
	r.Reason = redact.String(r.Reason)
	for k, v := range r.RateLimit {
		r.RateLimit[k] = redact.String(v)
	}
	return r
}

// Equal reports whether r and o record the same outcome.
func (r Result) Equal(o Result) bool {
	return r.Allow == o.Allow && r.Code == o.Code && r.Reason == o.Reason && r.Status == o.Status &&
		slices.Equal(r.Scopes, o.Scopes) && maps.Equal(r.RateLimit, o.RateLimit)
}

// event is the result member of an event: a map, so that mask rules can
// erase and upsert in it as OPA's do.
func (r Result) event() map[string]any {
	m := map[string]any{"allow": r.Allow, "code": r.Code}
	if r.Reason != "" {
		m["reason"] = r.Reason
	}
	if len(r.Scopes) > 0 {
		m["scopes"] = r.Scopes
	}
	if !r.Allow {
		m["status"] = r.Status
	}
	if len(r.RateLimit) > 0 {
		// map[string]any, as mask rules walk it.
		rl := make(map[string]any, len(r.RateLimit))
		for k, v := range r.RateLimit {
			rl[k] = v
		}
		m["rate_limit"] = rl
	}
	return m
}

// Recorded is one decision log event read back: the input the decision
// was made on and the result it had.
type Recorded struct {
	DecisionID string `json:"decision_id"`
	// Path is the decision's path, or PinPath for a tool pin event.
	Path string `json:"path"`
	// Input is the policy input as logged; absent when the request was
	// refused before the policy ran (unreadable, too large, malformed).
	Input  json.RawMessage `json:"input"`
	Result Result          `json:"result"`
	// Erased and Masked name what mask rules removed or replaced.
	Erased []string `json:"erased"`
	Masked []string `json:"masked"`
	DryRun bool     `json:"dry_run"`
	// Shadow marks an event of a shadow difference (it repeats the
	// decision id of the decision's own event).
	Shadow bool `json:"shadow"`
}

// ReadEvents reads decision log events from r and calls fn on each, in
// order, with its index: one JSON object per line as the console and file
// sinks write them, JSON arrays of events as uploads carry them, or any
// sequence of both, the whole gzip-compressed or not. It stops at the first
// error fn returns or the first value that is not an event.
func ReadEvents(r io.Reader, fn func(i int, ev *Recorded) error) error {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("reading gzip: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	dec := json.NewDecoder(br)
	i := 0
	one := func(raw json.RawMessage) error {
		var ev Recorded
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		if ev.DecisionID == "" {
			return fmt.Errorf("event %d: no decision_id: not a decision log event", i)
		}
		if err := fn(i, &ev); err != nil {
			return err
		}
		i++
		return nil
	}
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("after %d events: %w", i, err)
		}
		if raw = bytes.TrimSpace(raw); len(raw) > 0 && raw[0] == '[' {
			var evs []json.RawMessage
			if err := json.Unmarshal(raw, &evs); err != nil {
				return fmt.Errorf("array after %d events: %w", i, err)
			}
			for _, ev := range evs {
				if err := one(ev); err != nil {
					return err
				}
			}
			continue
		}
		if err := one(raw); err != nil {
			return err
		}
	}
}
