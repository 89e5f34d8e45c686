package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/spf13/cobra"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
)

// replayFlags are replay's own flags.
type replayFlags struct {
	serveFlags
	format string
}

// replayReport is what replay prints (--format json; the text form says
// the same).
type replayReport struct {
	File      string         `json:"file"`
	Revision  string         `json:"revision"`
	Events    int            `json:"events"`
	Replayed  int            `json:"replayed"`
	Changed   int            `json:"changed"`
	Unchanged int            `json:"unchanged"`
	Skipped   int            `json:"skipped"`
	Changes   []replayChange `json:"changes"`
	Skips     []replaySkip   `json:"skips"`
}

// replayChange is one decision the new policy decides otherwise.
type replayChange struct {
	DecisionID string             `json:"decision_id"`
	Method     string             `json:"method,omitempty"`
	Tool       string             `json:"tool,omitempty"`
	Subject    string             `json:"subject,omitempty"`
	Old        decisionlog.Result `json:"old"`
	New        decisionlog.Result `json:"new"`
	// Masked says a mask rule erased or replaced part of the logged
	// input: the change may come from the masking, not the policy.
	Masked bool `json:"masked,omitempty"`
}

// replaySkip is an event that could not be decided again.
type replaySkip struct {
	DecisionID string `json:"decision_id"`
	Why        string `json:"why"`
}

func newReplayCmd() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay --config FILE --bundle NEW [flags] DECISIONS.log",
		Short: "decide logged decisions again with a new policy and print what would change",
		Long: `Decide every decision of a decision log again, on the policy input it
recorded, with the policy of --config (--bundle replaces its bundles with
the new one), and print what would change: the counts, then each changed
decision with its method, tool, subject, old and new result. The log is
what the decision log writes (one JSON event per line), or the JSON
arrays of an upload, gzip-compressed or not; "-" reads standard input.

A result is the decision's allow, code, status, reason and scopes.
Events without an input (refused before the policy ran), of one element
of a JSON-RPC batch, shadow difference events and tool pin events are
skipped and listed.
An input a mask rule changed is replayed as logged and its change marked:
the masking, not the policy, may be the cause.

Exit status: 0 when nothing changed, 1 when some decision changed, 2 on
an error (a log that cannot be read, a policy that does not load).`,
		Example: `  mcpauthz replay --config prod.yaml --bundle ./policy-next decisions.log`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("replay takes one decision log file (or -), got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			changed, err := cmdReplay(cmd.Context(), &f, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
			var ue usageError
			switch {
			case errors.As(err, &ue):
				return err
			case err != nil:
				return exitError{code: 2, msg: "mcpauthz replay: " + err.Error()}
			case changed:
				return exitError{code: 1}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	f.registerConfig(fs)
	fs.StringVarP(&f.format, "format", "f", "text", "output `format`: text or json")
	return cmd
}

// cmdReplay replays the log at path and prints the report; it reports
// whether any decision changed.
func cmdReplay(ctx context.Context, f *replayFlags, path string, stdout, stderr io.Writer) (bool, error) {
	if f.format != "text" && f.format != "json" {
		return false, usageError{fmt.Errorf("--format %q is not text or json", f.format)}
	}
	cfg, err := f.load()
	if err != nil {
		return false, err
	}
	if f.logLevel == "" {
		// Warnings about serving (a placeholder resource, no token
		// source) mean nothing to a replay, which verifies no token.
		cfg.Log.Level = "error"
	}
	// Replay observes nothing: the configured sinks are not opened, so
	// replaying never writes to the production decision log.
	cfg.DecisionLogs.Console, cfg.DecisionLogs.File, cfg.DecisionLogs.Service = false, "", nil
	cfg.Shadow.Bundles = nil
	a, err := buildApp(ctx, cfg, newLogger(stderr, cfg.Log))
	if err != nil {
		return false, err
	}
	defer a.close()
	if err := a.bundles.LoadOnce(ctx); err != nil {
		return false, fmt.Errorf("loading policy: %w", err)
	}
	in := io.Reader(os.Stdin)
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return false, err
		}
		defer file.Close()
		in = file
	}
	rep := replayReport{File: path, Revision: a.bundles.Snapshot().Revision, Changes: []replayChange{}, Skips: []replaySkip{}}
	err = decisionlog.ReadEvents(in, func(i int, ev *decisionlog.Recorded) error {
		rep.Events++
		return rep.replay(ctx, a.engine, i, ev)
	})
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if f.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return rep.Changed > 0, enc.Encode(rep)
	}
	_, err = io.WriteString(stdout, rep.text())
	return rep.Changed > 0, err
}

// replay decides one event again and records the outcome in rep.
func (rep *replayReport) replay(ctx context.Context, e *decision.Engine, i int, ev *decisionlog.Recorded) error {
	skip := func(why string) error {
		rep.Skipped++
		rep.Skips = append(rep.Skips, replaySkip{DecisionID: ev.DecisionID, Why: why})
		return nil
	}
	switch {
	case ev.Shadow:
		return skip("a shadow difference event (the decision's own event is replayed)")
	case ev.Path == decisionlog.PinPath:
		return skip("a tool pin mismatch event, not a decision")
	}
	if raw := bytes.TrimSpace(ev.Input); len(raw) == 0 || string(raw) == "null" {
		return skip("no input: refused before the policy ran")
	}
	input, err := ast.ValueFromReader(bytes.NewReader(ev.Input))
	if err != nil {
		return fmt.Errorf("event %d (%s): input: %w", i, ev.DecisionID, err)
	}
	d, err := e.DecideInput(ctx, input)
	switch {
	case errors.Is(err, decision.ErrBatchInput):
		return skip("one element of a JSON-RPC batch: the batch's other elements are not logged")
	case err != nil:
		return fmt.Errorf("event %d (%s): %w", i, ev.DecisionID, err)
	}
	rep.Replayed++
	now := decisionlog.ResultOf(d)
	if ev.Result.Equal(now) {
		rep.Unchanged++
		return nil
	}
	rep.Changed++
	rep.Changes = append(rep.Changes, replayChange{
		DecisionID: ev.DecisionID, Method: d.Method, Tool: d.Tool, Subject: d.Subject,
		Old: ev.Result, New: now, Masked: len(ev.Erased)+len(ev.Masked) > 0,
	})
	return nil
}

// text is the report for a person (and a CI log).
func (rep *replayReport) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "replayed %d of %d events of %s with revision %s: %d changed, %d unchanged, %d skipped\n",
		rep.Replayed, rep.Events, rep.File, rep.Revision, rep.Changed, rep.Unchanged, rep.Skipped)
	for _, c := range rep.Changes {
		b.WriteString("\nchanged " + c.DecisionID)
		for _, v := range []string{c.Method, c.Tool} {
			if v != "" {
				b.WriteString(" " + v)
			}
		}
		if c.Subject != "" {
			b.WriteString(" subject=" + c.Subject)
		}
		if c.Masked {
			b.WriteString(" (input masked: the masking may be the cause)")
		}
		fmt.Fprintf(&b, "\n  old: %s\n  new: %s\n", resultText(c.Old), resultText(c.New))
	}
	if len(rep.Skips) > 0 {
		b.WriteString("\nskipped:\n")
		for _, s := range rep.Skips {
			fmt.Fprintf(&b, "  %s: %s\n", s.DecisionID, s.Why)
		}
	}
	return b.String()
}

// resultText is one result on one line: "allow" or "deny 403
// insufficient_scope", then the reason and scopes.
func resultText(r decisionlog.Result) string {
	s := "allow"
	if !r.Allow {
		s = fmt.Sprintf("deny %d", r.Status)
	}
	if r.Code != "" && r.Code != decision.CodeAllowed {
		s += " " + r.Code
	}
	if r.Reason != "" {
		s += fmt.Sprintf(" %q", r.Reason)
	}
	if len(r.Scopes) > 0 {
		s += " scopes=" + strings.Join(r.Scopes, ",")
	}
	if len(r.RateLimit) > 0 {
		var rl []string
		for _, k := range slices.Sorted(maps.Keys(r.RateLimit)) {
			rl = append(rl, k+":"+r.RateLimit[k])
		}
		s += " rate_limit=" + strings.Join(rl, ",")
	}
	return s
}
