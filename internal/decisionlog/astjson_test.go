package decisionlog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// encodeBoth writes v the writer's way (appendJSON, then encoding/json's
// Encoder over the raw message, as run does) and the general way
// (ast.JSON, erased, then the Encoder).
func encodeBoth(t testing.TB, v ast.Value) (direct, general string, ok bool) {
	t.Helper()
	raw, ok := appendJSON(nil, v)
	if !ok {
		return "", "", false
	}
	var a, b bytes.Buffer
	if err := json.NewEncoder(&a).Encode(json.RawMessage(raw)); err != nil {
		t.Fatalf("encoding %s directly: %v (raw %q)", v, err, raw)
	}
	g, err := ast.JSON(v)
	if err != nil {
		t.Fatalf("ast.JSON(%s): %v", v, err)
	}
	if err := json.NewEncoder(&b).Encode(eraseValue(g)); err != nil {
		t.Fatalf("encoding %s: %v", v, err)
	}
	return a.String(), b.String(), true
}

// TestAppendJSONMatchesEncodingJSON: an input written straight from the
// policy's values reads byte for byte as it did through ast.JSON and
// encoding/json (decision log consumers and the golden events see no
// change); what appendJSON does not write, it says so.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	obj := ast.NewObject(
		ast.Item(ast.StringTerm("zeta"), ast.IntNumberTerm(1)),
		ast.Item(ast.StringTerm("alpha"), ast.ArrayTerm(ast.BooleanTerm(true), ast.NullTerm(), ast.NumberTerm("1.5e3"))),
		ast.Item(ast.StringTerm("Beta"), ast.ObjectTerm(ast.Item(ast.StringTerm("é"), ast.StringTerm("x")))),
	)
	tests := map[string]ast.Value{
		"object_out_of_order": obj,
		"quotes_backslash":    ast.String(`say "hi" \ bye`),
		"controls":            ast.String("a\x00b\x01c\bd\fe\nf\rg\th\x1f\x7f"),
		"html":                ast.String("<script>&amp;</script>"),
		"line_separators":     ast.String("a\u2028b\u2029c"),
		"invalid_utf8":        ast.String("a\xffb\xc3"),
		"non_ascii":           ast.String("naïve 日本 🙂"),
		"numbers":             ast.NewArray(ast.NumberTerm("0"), ast.NumberTerm("-0"), ast.NumberTerm("12345678901234567890"), ast.NumberTerm("3.14")),
		"empty":               ast.NewObject(),
		"empty_array":         ast.NewArray(),
		"key_escapes":         ast.NewObject(ast.Item(ast.StringTerm("a\"b\n<"), ast.StringTerm("v"))),
	}
	for name, v := range tests {
		t.Run(name, func(t *testing.T) {
			direct, general, ok := encodeBoth(t, v)
			if !ok {
				t.Fatalf("appendJSON refused %s", v)
			}
			if direct != general {
				t.Fatalf("direct  %s\ngeneral %s", direct, general)
			}
		})
	}
	for name, v := range map[string]ast.Value{
		"set":           ast.NewSet(ast.StringTerm("a")),
		"number_key":    ast.NewObject(ast.Item(ast.IntNumberTerm(1), ast.StringTerm("v"))),
		"nested_set":    ast.NewArray(ast.SetTerm(ast.StringTerm("a"))),
		"reference":     ast.MustParseRef("data.x"),
		"set_in_object": ast.NewObject(ast.Item(ast.StringTerm("s"), ast.SetTerm())),
	} {
		t.Run("refused_"+name, func(t *testing.T) {
			if _, ok := appendJSON(nil, v); ok {
				t.Fatalf("appendJSON wrote %s, want it refused", v)
			}
		})
	}
}

// FuzzAppendJSON: any JSON document, read into policy values, is written
// by appendJSON exactly as ast.JSON and encoding/json write it.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[true,null,"x"]}`, `"\u2028<>&\u0000"`, `{"input":{"mcp":{"tool":{"name":"read_file","arguments":{"path":"/data/\u00e9"}}}}}`, `[1.0,1e3,-0,12345678901234567890]`, `"\ud800"`,
		`{"eyJa.eyJb.c":"eyJa.eyJb.c","x":"mcpk_AAAA","u":"http://u:p@h/?sig=1"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		v, err := ast.ValueFromReader(strings.NewReader(doc))
		if err != nil {
			return
		}
		direct, general, ok := encodeBoth(t, v)
		if !ok {
			return
		}
		if direct != general {
			t.Fatalf("document %q\ndirect  %s\ngeneral %s", doc, direct, general)
		}
	})
}
