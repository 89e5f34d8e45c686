package results

import (
	"encoding/json"
	"strings"
	"testing"
)

var aws = Redaction{Name: "aws", With: "[aws]"}

func init() {
	re, err := NewPatterns().Compile(`AKIA[0-9A-Z]{16}`)
	if err != nil {
		panic(err)
	}
	aws.Pattern = re
}

// TestRedact: every text of a result is redacted, by method; keys, blobs
// and other members never are; nothing matched gives the same bytes.
func TestRedact(t *testing.T) {
	const k = "AKIAIOSFODNN7EXAMPLE"
	tests := map[string]struct {
		method, in, want string
		count            int
	}{
		"tool_text": {"tools/call", `{"content":[{"type":"text","text":"a ` + k + ` b"}]}`,
			`{"content":[{"text":"a [aws] b","type":"text"}]}`, 1},
		"tool_embedded_resource": {"tools/call", `{"content":[{"type":"resource","resource":{"uri":"` + k + `","text":"` + k + `"}}]}`,
			`{"content":[{"resource":{"text":"[aws]","uri":"` + k + `"},"type":"resource"}]}`, 1},
		"tool_structured_values_not_keys": {"tools/call", `{"content":[],"structuredContent":{"` + k + `":["` + k + `",{"x":"` + k + `"}],"n":1.50}}`,
			`{"content":[],"structuredContent":{"` + k + `":["[aws]",{"x":"[aws]"}],"n":1.50}}`, 2},
		"tool_blob_untouched": {"tools/call", `{"content":[{"type":"image","data":"` + k + `"}]}`,
			`{"content":[{"type":"image","data":"` + k + `"}]}`, 0},
		"resource_text": {"resources/read", `{"contents":[{"uri":"f","text":"` + k + k + `"},{"uri":"g","blob":"` + k + `"}]}`,
			`{"contents":[{"text":"[aws][aws]","uri":"f"},{"blob":"` + k + `","uri":"g"}]}`, 2},
		"prompt_messages": {"prompts/get", `{"messages":[{"role":"user","content":{"type":"text","text":"` + k + `"}}],"description":"` + k + `"}`,
			`{"description":"` + k + `","messages":[{"content":{"text":"[aws]","type":"text"},"role":"user"}]}`, 1},
		"html_not_escaped": {"tools/call", `{"content":[{"type":"text","text":"<a>&` + k + `"}]}`,
			`{"content":[{"text":"<a>&[aws]","type":"text"}]}`, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, counts, err := Redact(tc.method, []byte(tc.in), []Redaction{aws})
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want || counts["aws"] != tc.count {
				t.Errorf("Redact = %s %v\nwant %s %d", out, counts, tc.want, tc.count)
			}
		})
	}
	if _, _, err := Redact("tools/call", []byte(`[1]`), []Redaction{aws}); err == nil {
		t.Error("a result that is not an object: no error")
	}
}

// TestParseVerdict: the rule's values, and the ones that fail closed.
func TestParseVerdict(t *testing.T) {
	tests := map[string]struct {
		rule     string // JSON; "" is undefined
		withheld bool
		redact   int
		err      string
	}{
		"undefined":        {rule: ""},
		"empty_object":     {rule: `{}`},
		"withhold":         {rule: `{"withhold":"no"}`, withheld: true},
		"redact":           {rule: `{"redact":[{"pattern":"a+","with":"b","name":"n"},{"pattern":"c"}]}`, redact: 2},
		"empty_withhold":   {rule: `{"withhold":""}`, err: "non-empty"},
		"not_object":       {rule: `true`, err: "want an object"},
		"unknown_member":   {rule: `{"allow":true}`, err: "unknown member"},
		"bad_pattern":      {rule: `{"redact":[{"pattern":"(a"}]}`, err: "not valid RE2"},
		"backreference":    {rule: `{"redact":[{"pattern":"(a)\\1"}]}`, err: "not valid RE2"},
		"with_not_string":  {rule: `{"redact":[{"pattern":"a","with":1}]}`, err: "with must be a string"},
		"redact_not_array": {rule: `{"redact":"a"}`, err: "must be an array"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var v any
			if tc.rule != "" {
				if err := json.Unmarshal([]byte(tc.rule), &v); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ParseVerdict(v, NewPatterns())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got.Withheld != tc.withheld || len(got.Redact) != tc.redact {
				t.Errorf("got %+v %v", got, err)
			}
		})
	}
}

// TestPrecompile: a bad pattern in data or a module literal is found.
func TestPrecompile(t *testing.T) {
	p := NewPatterns()
	if err := p.Precompile(map[string]any{"lib": []any{map[string]any{"pattern": "x+", "name": "x"}}}); err != nil || p.Len() != 1 {
		t.Fatalf("good pattern: %v, %d held", err, p.Len())
	}
	if err := p.Precompile([]any{map[string]any{"pattern": "(", "with": "y"}}); err == nil {
		t.Fatal("bad pattern: no error")
	}
}
