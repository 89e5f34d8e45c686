package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestReadJSON(t *testing.T) {
	tests := map[string]struct {
		in   string
		code int // 0: accepted
		want string
	}{
		"object":                {`{"subject":{"type":"user","id":"alice"},"n":[1,2.5,-0,1e2]}`, 0, ""},
		"scalar":                {` "x" `, 0, ""},
		"mcp_names_not_special": {`{"Method":1,"ID":2}`, 0, ""},
		"duplicate":             {`{"context":{"path":"/etc/passwd","path":"/data/x"}}`, CodeInvalidRequest, `two members named "path"`},
		"case_folded_duplicate": {`{"resource":{"id":"delete_all","ID":"echo"}}`, CodeInvalidRequest, `two members named "id"`},
		"nul_in_name":           {`{"token\u0000":"a"}`, CodeInvalidRequest, "control character"},
		"folds_to_ascii":        {`{"\u212aind":"a"}`, CodeInvalidRequest, "case-folds to ASCII"},
		"invalid_utf8":          {"{\"path\":\"/data/\xff\"}", CodeParseError, "invalid UTF-8"},
		"lone_surrogate":        {`{"sub":"\ud800"}`, CodeParseError, "lone surrogate"},
		"number_rule":           {`{"a":99.99999999999999999999}`, CodeInvalidRequest, "read it as 100"},
		"trailing_data":         {`{} {}`, CodeParseError, "after top-level value"},
		"empty":                 {``, CodeParseError, "unexpected end"},
		"not_json":              {`{"a":}`, CodeParseError, "beginning of value"},
		"too_deep":              {strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), CodeParseError, "nested too deeply"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, err := ReadJSON([]byte(tc.in))
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("ReadJSON: %v", err)
				}
				checkRefValue(t, "value", v, decodeRef(t, []byte(tc.in)))
				return
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if perr.Code != tc.code || !strings.Contains(perr.Message, tc.want) {
				t.Fatalf("error %d %q, want %d containing %q", perr.Code, perr.Message, tc.code, tc.want)
			}
		})
	}
}

// FuzzReadJSON: what ReadJSON accepts is JSON and UTF-8, and reads as
// encoding/json reads it; what it refuses as ambiguous is JSON.
func FuzzReadJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"A":2}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}", `[1e400]`,
		`{"subject":{"type":"user","id":"alice","properties":{"token":"a","token":"b"}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ReadJSON(data)
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			if perr.Code != CodeParseError && !json.Valid(data) {
				t.Fatalf("code %d for input encoding/json rejects: %s", perr.Code, perr.Message)
			}
			return
		}
		if !json.Valid(data) || !utf8.Valid(data) {
			t.Fatalf("accepted input that is not JSON or not UTF-8")
		}
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var ref any
		if err := d.Decode(&ref); err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			if _, ok := v.(ast.Null); !ok {
				t.Fatalf("value %v, encoding/json null", v)
			}
			return
		}
		checkRefValue(t, "value", v, ref)
	})
}
