package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/mcpauthz/mcpauthz/decision"
)

// maskEvalTimeout bounds one evaluation of a mask or drop rule.
const maskEvalTimeout = time.Second

// hasLogRules reports whether the policy has a mask or a drop rule.
func hasLogRules(pol *decision.Policy) bool {
	mask, drop := pol.LogRules()
	return mask != nil || drop != nil
}

// maskAndDrop applies the policy's decision log rules to e, as OPA's
// decision log plugin does: the drop rule, with the event as input,
// drops it when true; the mask rule, with the event as input, returns
// JSON pointers under /input or /result to erase, or {op: "upsert"|"remove",
// path, value} objects. It reports whether the event is dropped. It runs
// on the writer goroutine, never on the decision path. Credentials were
// erased when the input was built (decision.Redacted): no rule brings
// them back.
func (l *Log) maskAndDrop(pol *decision.Policy, e *opaEvent) bool {
	mask, drop := pol.LogRules()
	if mask == nil && drop == nil {
		return false
	}
	b, err := json.Marshal(e)
	if err != nil {
		l.maskFailed(e, err)
		return false
	}
	input, err := ast.ValueFromReader(bytes.NewReader(b))
	if err != nil {
		l.maskFailed(e, err)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), maskEvalTimeout)
	defer cancel()
	if drop != nil {
		rs, err := drop.Eval(ctx, rego.EvalParsedInput(input))
		switch {
		case err != nil:
			l.log.Warn("decision log drop rule failed; the event is kept", "decision_id", e.DecisionID, "error", err)
		case len(rs) > 0 && len(rs[0].Expressions) > 0 && rs[0].Expressions[0].Value == true:
			return true
		}
	}
	if mask != nil {
		rs, err := mask.Eval(ctx, rego.EvalParsedInput(input))
		if err != nil {
			l.maskFailed(e, err)
			return false
		}
		if len(rs) > 0 && len(rs[0].Expressions) > 0 {
			rules, err := parseMaskRules(rs[0].Expressions[0].Value)
			if err != nil {
				l.maskFailed(e, err)
				return false
			}
			for _, r := range withTwins(rules, e) {
				r.apply(e)
			}
		}
	}
	return false
}

// maskFailed erases the whole input of an event whose mask could not be
// worked out: what the policy meant to hide is not logged.
func (l *Log) maskFailed(e *opaEvent, err error) {
	l.log.Warn("decision log mask failed; the event's input is erased", "decision_id", e.DecisionID, "error", err)
	e.Input = nil
	e.Erased = append(e.Erased, "/input")
}

// maskRule is one entry of a mask rule's result.
type maskRule struct {
	op    string // "remove" or "upsert"
	path  string
	parts []string // unescaped, the first is "input" or "result"
	value any
}

// parseMaskRules reads a mask rule's value (a set, so a list here): JSON
// pointer strings (remove) or {op, path, value} objects.
func parseMaskRules(v any) ([]maskRule, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("mask rule result is %T, want a set", v)
	}
	out := make([]maskRule, 0, len(list))
	for _, item := range list {
		r := maskRule{op: "remove"}
		switch it := item.(type) {
		case string:
			r.path = it
		case map[string]any:
			if op, ok := it["op"]; ok {
				s, _ := op.(string)
				r.op = s
			}
			r.path, _ = it["path"].(string)
			r.value = it["value"]
		default:
			return nil, fmt.Errorf("mask rule entry is %T, want a JSON pointer or an {op, path, value} object", item)
		}
		if r.op != "remove" && r.op != "upsert" {
			return nil, fmt.Errorf("mask op %q is not remove or upsert", r.op)
		}
		if !strings.HasPrefix(r.path, "/") {
			return nil, fmt.Errorf("mask path %q is not slash-prefixed", r.path)
		}
		r.parts = strings.Split(r.path[1:], "/")
		for i, p := range r.parts {
			r.parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
		}
		if r.parts[0] != "input" && r.parts[0] != "result" {
			return nil, fmt.Errorf("mask path %q is not under /input or /result", r.path)
		}
		out = append(out, r)
	}
	return out, nil
}

var errNoPath = errors.New("no such path")

// twinPrefixes are the places where the policy input holds one value
// twice: the operation's target as mcpauthz reads it (input.mcp.tool,
// .prompt, .resource) and the raw params it was read from. Each pair is
// (the target's member, the params member); the target's object must be
// in the event for the pair to hold (a tools/call has a tool, no prompt).
var twinPrefixes = [...]struct {
	target string   // "tool", "prompt" or "resource"
	member []string // under input.mcp.<target> and input.mcp.params alike
}{
	{"tool", []string{"arguments"}},
	{"tool", []string{"name"}},
	{"prompt", []string{"arguments"}},
	{"prompt", []string{"name"}},
	{"resource", []string{"uri"}},
}

// withTwins returns rules with, for each rule whose path is one of two
// copies of a value in e's input, the same rule on the other copy: a mask
// follows the value, so a rule written for input.mcp.tool.arguments (as
// OPA users write it) does not leak the secret through
// input.mcp.params.arguments, and the other way round. A twin that is
// already a rule is not added twice; an upsert's twin is added only where
// the value is (it hides a value, it never creates one).
func withTwins(rules []maskRule, e *opaEvent) []maskRule {
	mcp, _ := walk(e.Input, []string{"mcp"}, false)
	if mcp == nil {
		return rules
	}
	seen := make(map[[2]string]bool, len(rules))
	for _, r := range rules {
		seen[[2]string{r.op, r.path}] = true
	}
	out := rules
	for _, r := range rules {
		for _, twin := range twinPaths(r.parts, mcp) {
			t := maskRule{op: r.op, parts: twin, value: r.value, path: pointer(twin)}
			if seen[[2]string{t.op, t.path}] {
				continue
			}
			if t.op == "upsert" {
				if _, err := walk(e.Input, twin[1:], false); err != nil {
					continue
				}
			}
			seen[[2]string{t.op, t.path}] = true
			out = append(out, t)
		}
	}
	return out
}

// twinPaths returns the other copies of the value at parts (input, mcp,
// ...) in the event's input.mcp object.
func twinPaths(parts []string, mcp any) [][]string {
	if len(parts) < 4 || parts[0] != "input" || parts[1] != "mcp" {
		return nil
	}
	has := func(target string) bool {
		_, err := walk(mcp, []string{target}, false)
		return err == nil
	}
	var out [][]string
	for _, tp := range twinPrefixes {
		n := len(tp.member)
		if len(parts) < 3+n || !slices.Equal(parts[3:3+n], tp.member) || !has(tp.target) {
			continue
		}
		rest := parts[3+n:]
		switch parts[2] {
		case tp.target:
			out = append(out, slices.Concat([]string{"input", "mcp", "params"}, tp.member, rest))
		case "params":
			out = append(out, slices.Concat([]string{"input", "mcp", tp.target}, tp.member, rest))
		}
	}
	return out
}

// pointer writes parts as a JSON pointer (RFC 6901 escapes).
func pointer(parts []string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(p, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// apply erases or upserts the rule's path in e and records it in erased
// or masked; a path that is not there is left alone, as in OPA.
func (r *maskRule) apply(e *opaEvent) {
	var root *any
	var result any
	if r.parts[0] == "input" {
		root = &e.Input
	} else {
		result = any(e.Result)
		root = &result
		defer func() {
			m, _ := result.(map[string]any)
			e.Result = m
		}()
	}
	rest := r.parts[1:]
	switch r.op {
	case "remove":
		if len(rest) == 0 {
			if *root == nil {
				return
			}
			*root = nil
		} else if err := remove(root, rest); err != nil {
			return
		}
		e.Erased = append(e.Erased, r.path)
	case "upsert":
		if len(rest) == 0 {
			*root = r.value
		} else if err := upsert(*root, rest, r.value); err != nil {
			return
		}
		e.Masked = append(e.Masked, r.path)
	}
}

func remove(root *any, path []string) error {
	parent, err := walk(*root, path[:len(path)-1], false)
	if err != nil {
		return err
	}
	last := path[len(path)-1]
	switch p := parent.(type) {
	case map[string]any:
		if _, ok := p[last]; !ok {
			return errNoPath
		}
		delete(p, last)
		return nil
	case []any:
		// Removing from an array shortens it: write it back into its parent.
		i, err := strconv.Atoi(last)
		if err != nil || i < 0 || i >= len(p) {
			return errNoPath
		}
		shorter := append(p[:i:i], p[i+1:]...)
		if len(path) == 1 {
			*root = shorter
			return nil
		}
		gp, _ := walk(*root, path[:len(path)-2], false)
		switch g := gp.(type) {
		case map[string]any:
			g[path[len(path)-2]] = shorter
		case []any:
			j, _ := strconv.Atoi(path[len(path)-2])
			g[j] = shorter
		}
		return nil
	}
	return errNoPath
}

func upsert(root any, path []string, value any) error {
	parent, err := walk(root, path[:len(path)-1], true)
	if err != nil {
		return err
	}
	last := path[len(path)-1]
	switch p := parent.(type) {
	case map[string]any:
		p[last] = value
		return nil
	case []any:
		i, err := strconv.Atoi(last)
		if err != nil || i < 0 || i >= len(p) {
			return errNoPath
		}
		p[i] = value
		return nil
	}
	return errNoPath
}

// walk follows path from node; create makes missing object members.
func walk(node any, path []string, create bool) (any, error) {
	for _, k := range path {
		switch v := node.(type) {
		case map[string]any:
			child, ok := v[k]
			if !ok {
				if !create {
					return nil, errNoPath
				}
				child = map[string]any{}
				v[k] = child
			}
			node = child
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(v) {
				return nil, errNoPath
			}
			node = v[i]
		default:
			return nil, errNoPath
		}
	}
	return node, nil
}
