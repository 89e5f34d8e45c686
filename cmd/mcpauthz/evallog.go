package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
)

// errFound stops reading the decision log at the event looked for.
var errFound = errors.New("found")

// evalLogged decides again the decision --id of the decision log
// --decision-log, on the policy input its event recorded, with the
// configured policy, and prints the result beside the logged one: the
// answer to "why was this denied?" from the decision id a caller saw.
// --explain and print() output go to stderr as for --request.
func evalLogged(ctx context.Context, ef *evalFlags, a *app, diag *diagnostics, stdout io.Writer) error {
	ev, err := findLogged(ef.decisionLog, ef.id, ef.stdin)
	if err != nil {
		return err
	}
	if raw := bytes.TrimSpace(ev.Input); len(raw) == 0 || string(raw) == "null" {
		return fmt.Errorf("decision %s was refused before the policy ran, so there is no input to decide again: logged %s", ef.id, resultText(ev.Result))
	}
	input, err := ast.ValueFromReader(bytes.NewReader(ev.Input))
	if err != nil {
		return fmt.Errorf("decision %s: logged input: %w", ef.id, err)
	}
	d, err := a.engine.DecideInput(ctx, input)
	if errors.Is(err, decision.ErrBatchInput) {
		// One element of a batch: the policy alone, as --input-file.
		fmt.Fprintf(diag.stderr, "note: decision %s is one element of a JSON-RPC batch; evaluating the policy on its input alone (logged: %s)\n", ef.id, resultText(ev.Result))
		return writeInputResult(ctx, ef, diag, input, stdout)
	}
	if err != nil {
		return fmt.Errorf("decision %s: %w", ef.id, err)
	}
	if _, err := diag.evaluate(ctx, input); err != nil {
		fmt.Fprintf(diag.stderr, "note: no print() output or explanation: %v\n", err)
	}
	out := outputOf(d)
	logged := ev.Result
	out.Logged = &logged
	if err := writeDecision(stdout, ef.format, out); err != nil {
		return err
	}
	if ef.fail && !d.Allow {
		return exitError{code: 1}
	}
	return nil
}

// findLogged returns the event of decision id in the decision log at path
// ("-": in), its own event and not a shadow difference of it.
func findLogged(path, id string, in io.Reader) (*decisionlog.Recorded, error) {
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("reading decision log: %w", err)
		}
		defer f.Close()
		in = f
	}
	var found *decisionlog.Recorded
	err := decisionlog.ReadEvents(in, func(_ int, ev *decisionlog.Recorded) error {
		if ev.DecisionID == id && !ev.Shadow && ev.Path != decisionlog.PinPath {
			found = ev
			return errFound
		}
		return nil
	})
	switch {
	case found != nil:
		return found, nil
	case err != nil:
		return nil, fmt.Errorf("decision log %s: %w", path, err)
	}
	return nil, fmt.Errorf("decision log %s has no decision %s: the id is the x-mcp-authz-decision-id header of the answer, or decision_id in the log (is it the right file, written with decision_logs.file?)", path, id)
}
