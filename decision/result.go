package decision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/decision/results"
)

// This file judges what comes back: when the policy defines the result
// rule (data.mcp.authz.result), the answer to each tools/call,
// resources/read and prompts/get it allowed is evaluated with the call's
// input plus input.result (the JSON-RPC result as the server sent it) and
// input.decision_id, and passed, withheld or redacted (decision/results).
// A policy without the rule costs nothing: ResultCallsOf is nil and no
// transport holds the answer.

// resultMethods are the methods whose answers the result rule judges.
var resultMethods = map[string]bool{"tools/call": true, "resources/read": true, "prompts/get": true}

// prepareResult prepares the result rule of the snapshot, and compiles
// every redaction pattern the snapshot holds (its data under mcpauthz,
// and the literals of its modules), so a bad one fails the load.
func (p *Policy) prepareResult(ctx context.Context) error {
	if p.rules.result == "" {
		return nil
	}
	q, ok := p.Snapshot.Query(p.rules.result)
	if !ok {
		return nil
	}
	p.result, p.patterns = q, results.NewPatterns()
	// data.mcpauthz as evaluated: its data and the rules that need no
	// input (the secrets library's redact list among them).
	rs, err := rego.New(rego.Query("data.mcpauthz"), rego.Compiler(p.Snapshot.Compiler), rego.Store(p.Snapshot.Store)).Eval(ctx)
	if err != nil {
		return fmt.Errorf("evaluating data.mcpauthz for redaction patterns: %w", err)
	}
	if len(rs) > 0 && len(rs[0].Expressions) > 0 {
		if err := p.patterns.Precompile(rs[0].Expressions[0].Value); err != nil {
			return fmt.Errorf("data.mcpauthz: %w", err)
		}
	}
	var werr error
	for name, m := range p.Snapshot.Compiler.Modules {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if werr != nil {
				return true
			}
			obj, ok := t.Value.(ast.Object)
			if !ok || !obj.IsGround() || obj.Get(ast.StringTerm("pattern")) == nil {
				return false
			}
			v, err := ast.JSON(obj)
			if err != nil {
				return false
			}
			if err := p.patterns.Precompile(v); err != nil {
				werr = fmt.Errorf("%s: %w", name, err)
			}
			return false
		})
		if werr != nil {
			return werr
		}
	}
	return nil
}

// HasResultRule reports whether the current policy judges results.
func (e *Engine) HasResultRule() bool {
	pol := e.opts.Snapshots.Current()
	return pol != nil && pol.result != nil
}

// ResultCalls are the calls of one allowed request whose answers the
// result rule judges, with the input each was decided on. It is used by
// one goroutine (the one reading the answer).
type ResultCalls struct {
	e          *Engine
	pol        *Policy
	d          *Decision
	decisionID string
	calls      []resultCall
	batch      bool
}

type resultCall struct {
	method   string
	id       []byte
	key      idKey
	input    ast.Object
	answered bool
}

// ResultOutcome says what judging one message of an answer did.
type ResultOutcome struct {
	// Judged: the message answered a call and the rule was evaluated
	// (or could not be: Err).
	Judged bool
	// Outcome is passed, redacted, withheld or failed ("" when not judged).
	Outcome string
	// Method is the call's method.
	Method string
	// Counts are the redactions made, by name (never the text matched).
	Counts results.Counts
	// Reason is the rule's withhold reason.
	Reason string
	// Err is why the answer could not be judged (it was withheld).
	Err error
}

// Result outcomes.
const (
	ResultPassed   = "passed"
	ResultRedacted = "redacted"
	ResultWithheld = "withheld"
	ResultFailed   = "failed"
)

// ResultCallsOf returns the calls of r, allowed by d, whose answers the
// result rule judges; nil when the policy has no result rule or r holds
// no such call (the answer then goes on untouched).
func (e *Engine) ResultCallsOf(ctx context.Context, r *Request, d *Decision) *ResultCalls {
	pol := e.opts.Snapshots.Current()
	if pol == nil || pol.result == nil || d == nil || !d.Allow || len(r.Body) == 0 || r.Method != "POST" {
		return nil
	}
	body, err := mcp.ParseWith(r.Body, mcp.Options{SkipParams: true})
	if err != nil {
		return nil
	}
	want := false
	for i := range body.Messages {
		m := &body.Messages[i]
		want = want || (m.Kind == mcp.KindRequest && resultMethods[m.Method])
	}
	if !want {
		return nil
	}
	rc := &ResultCalls{e: e, pol: pol, d: d, decisionID: d.ID, batch: body.Batch}
	inputs, denied := e.Inputs(ctx, r)
	for i := range body.Messages {
		m := &body.Messages[i]
		if m.Kind != mcp.KindRequest || !resultMethods[m.Method] {
			continue
		}
		c := resultCall{method: m.Method, id: bytes.Clone(m.ID), key: idKeyOf(m.ID)}
		if denied == nil && i < len(inputs) {
			c.input, _ = inputs[i].(ast.Object)
		}
		// A call without an input (the request no longer prepares) is
		// judged failed: its answer is withheld.
		rc.calls = append(rc.calls, c)
	}
	return rc
}

// Pending reports whether a call is not yet answered.
func (rc *ResultCalls) Pending() bool {
	for i := range rc.calls {
		if !rc.calls[i].answered {
			return true
		}
	}
	return false
}

// FailPending answers every call not yet answered with a JSON-RPC error
// naming the decision id (why: what went wrong, for the caller); nil when
// every call was answered. A batch's errors are an array.
func (rc *ResultCalls) FailPending(why string) []byte {
	var out [][]byte
	for i := range rc.calls {
		c := &rc.calls[i]
		if c.answered {
			continue
		}
		c.answered = true
		out = append(out, rc.failBody(c.id, why))
	}
	switch {
	case len(out) == 0:
		return nil
	case len(out) == 1 && !rc.batch:
		return out[0]
	}
	return append(append([]byte("["), bytes.Join(out, []byte(","))...), ']')
}

func (rc *ResultCalls) failBody(id []byte, why string) []byte {
	return rpcErrorBody(id, mcp.CodeInternalError,
		fmt.Sprintf("mcpauthz: the result was withheld: %s (decision %s)", why, rc.decisionID), nil)
}

// Judge judges one message of the answer (a JSON-RPC response, a batch
// of them, or anything else the server sent). It returns what goes on in
// its place (nil: nothing) and what was done, one outcome per call the
// message answered. A message the strict parser refuses stands for the
// calls not yet answered: they get errors (fail closed).
func (rc *ResultCalls) Judge(ctx context.Context, msg []byte) ([]byte, []ResultOutcome) {
	body, err := mcp.ParseWith(msg, mcp.Options{SkipParams: true})
	if err != nil {
		if !rc.Pending() {
			return nil, nil // nothing a lenient reader could take for an answer
		}
		return rc.FailPending("the answer could not be read"), []ResultOutcome{{Judged: true, Outcome: ResultFailed, Err: err}}
	}
	if !body.Batch {
		out, o := rc.judgeOne(ctx, msg)
		if o == nil {
			return out, nil
		}
		return out, []ResultOutcome{*o}
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(msg, &elems); err != nil {
		return rc.FailPending("the answer could not be read"), []ResultOutcome{{Judged: true, Outcome: ResultFailed, Err: err}}
	}
	var outs []ResultOutcome
	kept := make([][]byte, 0, len(elems))
	changed := false
	for _, el := range elems {
		out, o := rc.judgeOne(ctx, el)
		if o != nil {
			outs = append(outs, *o)
		}
		changed = changed || !bytes.Equal(out, el)
		if out != nil {
			kept = append(kept, out)
		}
	}
	if !changed {
		return msg, outs
	}
	return append(append([]byte("["), bytes.Join(kept, []byte(","))...), ']'), outs
}

// judgeOne judges one JSON-RPC message; o is nil when it answers none of
// the calls (it goes on as it is).
func (rc *ResultCalls) judgeOne(ctx context.Context, msg []byte) (out []byte, o *ResultOutcome) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(msg, &env); err != nil {
		return msg, nil // not an object: the parser accepted it, it answers nothing
	}
	id, hasID := env["id"]
	if !hasID {
		return msg, nil // a notification or request of the server
	}
	if _, isReq := env["method"]; isReq {
		return msg, nil
	}
	key := idKeyOf(id)
	var c *resultCall
	for i := range rc.calls {
		if rc.calls[i].key.matches(key) {
			c = &rc.calls[i]
			break
		}
	}
	if c == nil {
		return msg, nil
	}
	if c.answered {
		return nil, nil // a second answer to the same call
	}
	c.answered = true
	res, ok := env["result"]
	if !ok {
		return msg, &ResultOutcome{Judged: true, Outcome: ResultPassed, Method: c.method} // an error answer
	}
	o = &ResultOutcome{Judged: true, Method: c.method}
	fail := func(err error) ([]byte, *ResultOutcome) {
		o.Outcome, o.Err = ResultFailed, err
		return rc.failBody(id, "the result could not be judged"), o
	}
	verdict, err := rc.evaluate(ctx, c, res)
	if err != nil {
		return fail(err)
	}
	if verdict.Withheld {
		o.Outcome, o.Reason = ResultWithheld, verdict.Reason
		if c.method == "tools/call" {
			return toolErrorBody(id, "result withheld by policy: "+verdict.Reason), o
		}
		return rpcErrorBody(id, mcp.CodeInvalidRequest, "result withheld by policy: "+verdict.Reason, nil), o
	}
	o.Outcome = ResultPassed
	if len(verdict.Redact) == 0 {
		return msg, o
	}
	red, counts, err := results.Redact(c.method, res, verdict.Redact)
	if err != nil {
		return fail(err)
	}
	if counts == nil {
		return msg, o
	}
	o.Outcome, o.Counts = ResultRedacted, counts
	env["result"] = red
	b, err := marshalNoEscape(env)
	if err != nil {
		return fail(err)
	}
	return b, o
}

// evaluate evaluates the result rule on call c's input with res.
func (rc *ResultCalls) evaluate(ctx context.Context, c *resultCall, res []byte) (results.Verdict, error) {
	if c.input == nil {
		return results.Verdict{}, errors.New("the call's input could not be built again")
	}
	rv, err := mcp.ReadJSON(res)
	if err != nil {
		return results.Verdict{}, fmt.Errorf("reading the result: %w", err)
	}
	if _, ok := rv.(ast.Object); !ok {
		return results.Verdict{}, errors.New("reading the result: not a JSON object")
	}
	input := ast.NewObject()
	c.input.Foreach(func(k, v *ast.Term) {
		if !k.Equal(ast.StringTerm("result")) && !k.Equal(ast.StringTerm("decision_id")) {
			input.Insert(k, v)
		}
	})
	input.Insert(ast.StringTerm("result"), ast.NewTerm(rv))
	input.Insert(ast.StringTerm("decision_id"), ast.StringTerm(rc.decisionID))
	rs, err := rc.pol.result.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return results.Verdict{}, fmt.Errorf("evaluating %s: %w", rc.e.opts.Package+".result", err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return results.Verdict{}, nil
	}
	return results.ParseVerdict(rs[0].Expressions[0].Value, rc.pol.patterns)
}
