// Package results applies the policy's word on what a caller may receive:
// the verdict of data.mcp.authz.result over one answer to tools/call,
// resources/read or prompts/get (pass, withhold, or redact), read from
// the rule's value, and the redactions applied to the texts of the result.
//
// It knows nothing of transports or of the engine: the engine evaluates
// the rule and hands its value here (ParseVerdict), then the result
// (Redact).
package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"
)

// Redaction is one pattern the rule asked to redact: every match in every
// text of the result is replaced by With (literally: no $ expansion).
type Redaction struct {
	Pattern *regexp.Regexp
	With    string
	// Name labels the redaction in the decision log and the metrics.
	Name string
}

// Verdict is what the result rule said of one answer.
type Verdict struct {
	// Withheld: the caller gets an error in place of the result, saying
	// Reason.
	Withheld bool
	Reason   string
	// Redact are the patterns to redact (none when Withheld).
	Redact []Redaction
}

// maxCached bounds the patterns a Patterns keeps compiled: a policy that
// builds patterns from its input must not grow memory without bound.
const maxCached = 4096

// Patterns compiles the RE2 patterns of one policy snapshot, each once:
// the snapshot's own patterns when it is activated (Precompile, so a bad
// one fails the load), and any a rule builds at run time on first use.
// It is safe for concurrent use.
type Patterns struct {
	mu sync.RWMutex
	m  map[string]*regexp.Regexp
}

// NewPatterns returns an empty set.
func NewPatterns() *Patterns { return &Patterns{m: make(map[string]*regexp.Regexp)} }

// Compile returns expr compiled (RE2: matched in linear time).
func (p *Patterns) Compile(expr string) (*regexp.Regexp, error) {
	p.mu.RLock()
	re, ok := p.m[expr]
	p.mu.RUnlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("redaction pattern %q is not valid RE2: %w", expr, err)
	}
	p.mu.Lock()
	if len(p.m) < maxCached {
		p.m[expr] = re
	}
	p.mu.Unlock()
	return re, nil
}

// Len is the number of patterns held compiled.
func (p *Patterns) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.m)
}

// Precompile compiles every pattern found in doc (a policy's data or a
// literal of its modules, as Go values: maps, slices, strings): the value
// of every "pattern" member of an object that also has a "with" or a
// "name" member. It fails on the first that is not valid RE2.
func (p *Patterns) Precompile(doc any) error {
	switch v := doc.(type) {
	case map[string]any:
		if s, ok := v["pattern"].(string); ok && (v["with"] != nil || v["name"] != nil) {
			if _, err := p.Compile(s); err != nil {
				return err
			}
		}
		for _, c := range v {
			if err := p.Precompile(c); err != nil {
				return err
			}
		}
	case []any:
		for _, c := range v {
			if err := p.Precompile(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// ParseVerdict reads the value of the result rule (as Go values; nil when
// the rule is undefined for this answer: pass). An object with withhold
// (a non-empty string) withholds; one with redact (an array of
// {pattern, with?, name?}) redacts; an empty object passes. Anything else
// is an error: the caller withholds the result (fail closed).
func ParseVerdict(v any, pats *Patterns) (Verdict, error) {
	if v == nil {
		return Verdict{}, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Verdict{}, fmt.Errorf("result rule: want an object ({withhold} or {redact}), got %T", v)
	}
	for k := range obj {
		if k != "withhold" && k != "redact" {
			return Verdict{}, fmt.Errorf("result rule: unknown member %q (want withhold or redact)", k)
		}
	}
	if w, ok := obj["withhold"]; ok {
		s, ok := w.(string)
		if !ok || s == "" {
			return Verdict{}, errors.New("result rule: withhold must be a non-empty string (the reason the caller reads)")
		}
		return Verdict{Withheld: true, Reason: s}, nil
	}
	r, ok := obj["redact"]
	if !ok {
		return Verdict{}, nil
	}
	list, ok := r.([]any)
	if !ok {
		return Verdict{}, fmt.Errorf("result rule: redact must be an array of {pattern, with, name}, got %T", r)
	}
	out := Verdict{Redact: make([]Redaction, 0, len(list))}
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return Verdict{}, fmt.Errorf("result rule: redact[%d] must be an object", i)
		}
		pat, ok := m["pattern"].(string)
		if !ok || pat == "" {
			return Verdict{}, fmt.Errorf("result rule: redact[%d].pattern must be a non-empty string", i)
		}
		re, err := pats.Compile(pat)
		if err != nil {
			return Verdict{}, fmt.Errorf("result rule: redact[%d]: %w", i, err)
		}
		rd := Redaction{Pattern: re, With: "[REDACTED]", Name: "redacted"}
		if w, ok := m["with"]; ok {
			if rd.With, ok = w.(string); !ok {
				return Verdict{}, fmt.Errorf("result rule: redact[%d].with must be a string", i)
			}
		}
		if n, ok := m["name"]; ok {
			if rd.Name, ok = n.(string); !ok || rd.Name == "" {
				return Verdict{}, fmt.Errorf("result rule: redact[%d].name must be a non-empty string", i)
			}
		}
		out.Redact = append(out.Redact, rd)
	}
	return out, nil
}

// Counts are the matches redacted, by Redaction.Name.
type Counts map[string]int

// Names returns the names counted, sorted.
func (c Counts) Names() []string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Redact applies rs to every text of result (the JSON-RPC result of an
// answer to method): content[].text and content[].resource.text of a
// tool result, every string of its structuredContent, contents[].text of
// a resource, the texts of a prompt's messages. Keys, blobs and other
// members are never touched. It returns the result unchanged (same
// bytes) when nothing matched, else the result re-encoded; an error when
// result is not a JSON object.
func Redact(method string, result []byte, rs []Redaction) ([]byte, Counts, error) {
	dec := json.NewDecoder(bytes.NewReader(result))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, fmt.Errorf("reading the result: %w", err)
	}
	if dec.More() {
		return nil, nil, errors.New("reading the result: data after the JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("reading the result: want an object, got %T", v)
	}
	w := walker{rs: rs}
	switch method {
	case "tools/call":
		w.blocks(obj["content"])
		if sc, ok := obj["structuredContent"]; ok {
			obj["structuredContent"] = w.all(sc)
		}
	case "resources/read":
		w.blocks(obj["contents"])
	case "prompts/get":
		if msgs, ok := obj["messages"].([]any); ok {
			for _, m := range msgs {
				if mo, ok := m.(map[string]any); ok {
					w.blocks(mo["content"])
				}
			}
		}
	}
	if w.counts == nil {
		return result, nil, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, nil, fmt.Errorf("writing the redacted result: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), w.counts, nil
}

// walker redacts the texts it is shown, counting matches.
type walker struct {
	rs     []Redaction
	counts Counts
}

// text returns s with every redaction applied.
func (w *walker) text(s string) string {
	for i := range w.rs {
		r := &w.rs[i]
		n := 0
		s = r.Pattern.ReplaceAllStringFunc(s, func(string) string { n++; return r.With })
		if n > 0 {
			if w.counts == nil {
				w.counts = make(Counts)
			}
			w.counts[r.Name] += n
		}
	}
	return s
}

// blocks redacts content blocks: one object or an array of them, each
// with a text, or an embedded resource with one.
func (w *walker) blocks(v any) {
	switch b := v.(type) {
	case []any:
		for _, e := range b {
			w.blocks(e)
		}
	case map[string]any:
		if s, ok := b["text"].(string); ok {
			b["text"] = w.text(s)
		}
		if res, ok := b["resource"].(map[string]any); ok {
			if s, ok := res["text"].(string); ok {
				res["text"] = w.text(s)
			}
		}
	}
}

// all redacts every string value under v (never a key).
func (w *walker) all(v any) any {
	switch x := v.(type) {
	case string:
		return w.text(x)
	case []any:
		for i := range x {
			x[i] = w.all(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = w.all(x[k])
		}
	}
	return v
}
