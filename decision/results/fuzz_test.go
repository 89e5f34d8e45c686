package results

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzRedact: whatever result a server sends, Redact either refuses it or
// returns valid JSON in valid UTF-8 whose texts hold no match any more,
// with the same shape (keys, numbers, blobs) as the result it was given;
// nothing matched gives the very same bytes.
func FuzzRedact(f *testing.F) {
	seeds := []string{
		`{"content":[{"type":"text","text":"AKIAIOSFODNN7EXAMPLE"}]}`,
		`{"content":[{"type":"resource","resource":{"uri":"x","text":"AKIAIOSFODNN7EXAMPLE","blob":"AKIAIOSFODNN7EXAMPLE"}}],"structuredContent":{"AKIAIOSFODNN7EXAMPLE":["AKIAIOSFODNN7EXAMPLE",1e400,-0.0]}}`,
		`{"contents":[{"uri":"f","text":"\ud800 AKIAIOSFODNN7EXAMPLE \u0000"}]}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"<AKIAIOSFODNN7EXAMPLE>&"}]}]}`,
		`{"content":"not blocks"}`,
		`[]`,
		"{\"content\":[{\"text\":\"\xff\xfe AKIAIOSFODNN7EXAMPLE\"}]}",
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	re, err := NewPatterns().Compile(`AKIA[0-9A-Z]{16}`)
	if err != nil {
		f.Fatal(err)
	}
	rs := []Redaction{{Pattern: re, With: "[k]", Name: "aws"}}
	methods := []string{"tools/call", "resources/read", "prompts/get"}
	f.Fuzz(func(t *testing.T, m uint8, in []byte) {
		method := methods[int(m)%len(methods)]
		out, counts, err := Redact(method, in, rs)
		if err != nil {
			return
		}
		if counts == nil {
			if string(out) != string(in) {
				t.Fatalf("nothing redacted, yet the result changed: %q -> %q", in, out)
			}
			return
		}
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("not valid JSON in UTF-8: %q", out)
		}
		again, more, err := Redact(method, out, rs)
		if err != nil || more != nil || string(again) != string(out) {
			t.Fatalf("a match left behind: %q -> %q (%v, %v)", out, again, more, err)
		}
		if shape(t, in) != shape(t, out) {
			t.Fatalf("the shape changed: %q -> %q", in, out)
		}
	})
}

// shape is v's structure with every string value blanked: keys, numbers
// and nesting stay.
func shape(t *testing.T, b []byte) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	out, _ := json.Marshal(blank(v))
	return string(out)
}

func blank(v any) any {
	switch x := v.(type) {
	case string:
		return ""
	case []any:
		for i := range x {
			x[i] = blank(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = blank(x[k])
		}
	}
	return v
}
