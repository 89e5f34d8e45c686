package toolpin

import (
	"strings"
	"testing"
)

// TestCanonicalRFC8785 holds the examples of RFC 8785 and the cases where
// a careless canonicalizer differs: number spelling, escapes, member order.
func TestCanonicalRFC8785(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"rfc_3_2_2": {`{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
			"string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		"rfc_3_2_3_sorting": {`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One",
			"\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			`{"\r":"Carriage Return","1":"One","` + "\u0080" + `":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","😀":"Emoji: Grinning Face","` + "\ufb33" + `":"Hebrew Letter Dalet With Dagesh"}`},
		"numbers_edges":  {`[0, -0, 1e21, 1e-7, 1e-6, 123456789012345678901, 5e-324, 1.7976931348623157e308, -1.5, 100, 1.0, 1e0]`, `[0,0,1e+21,1e-7,0.000001,123456789012345680000,5e-324,1.7976931348623157e+308,-1.5,100,1,1]`},
		"no_html_escape": {`"<a href='x'>&amp;</a>\u2028"`, "\"<a href='x'>&amp;</a>\u2028\""},
		"controls":       {`"\u0000\u001f\b\f\t\u007f"`, `"\u0000\u001f\b\f\t` + "\x7f" + `"`},
		"whitespace":     {" { \"b\" : [ 1 , 2 ] ,\n\t\"a\" : { } } ", `{"a":{},"b":[1,2]}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Canonical(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			direct, err := canonicalJSON([]byte(tc.in))
			if err != nil || string(direct) != tc.want {
				t.Errorf("written straight: %s (%v)\nwant %s", direct, err, tc.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := map[string]struct{ in, msg string }{
		"duplicate":       {`{"a":1,"a":2}`, `two members named "a"`},
		"duplicate_esc":   {`{"a":1,"\u0061":2}`, `two members named "a"`},
		"trailing":        {`{} {}`, "data after"},
		"invalid_utf8":    {"\"\xff\"", "UTF-8"},
		"truncated":       {`{"a":`, "reading JSON"},
		"too_deep":        {strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1), "nested deeper"},
		"huge_number":     {`1e400`, ""},
		"not_json":        {`nope`, "reading JSON"},
		"trailing_comma":  {`[1,]`, "reading JSON"},
		"bare_close":      {`]`, "reading JSON"},
		"object_key_type": {`{1:2}`, "reading JSON"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, err := Parse([]byte(tc.in))
			if err == nil {
				// A number out of range parses, and has no canonical form.
				if _, err = Canonical(nil, v); err == nil {
					t.Fatalf("%s: accepted", tc.in)
				}
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q lacks %q", err, tc.msg)
			}
		})
	}
}

// canonicalJSON is the canonical form of data written straight from it,
// as DigestJSON writes a tool's members.
func canonicalJSON(data []byte) ([]byte, error) {
	sc, err := newScanner(data)
	if err != nil {
		return nil, err
	}
	out, err := sc.canonical(nil, 0)
	if err != nil {
		return nil, err
	}
	return out, sc.end()
}

// FuzzCanonical: the two ways in agree on any bytes. The canonical form
// written straight from the input is that of the value Parse reads (both
// fail, or both give the same bytes), the canonical form is a fixed point,
// and DigestJSON is Digest of what Parse reads.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{
		`{"name":"t","description":"d","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true},"title":"x"}`,
		`{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001, -0, 1e400]}`,
		`{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}`,
		`{"name":"a","name":"b"}`, `{"name":"a","x":{"k":1,"k":2}}`, `"\ud800"`, `"\ud83d\ude00\u0000\/"`, `[1,[2,[3]],{}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		direct, errDirect := canonicalJSON(data)
		v, errParse := Parse(data)
		var viaTree []byte
		errTree := errParse
		if errParse == nil {
			viaTree, errTree = Canonical(nil, v)
		}
		if (errDirect == nil) != (errTree == nil) {
			t.Fatalf("%q: direct error %v, tree error %v", data, errDirect, errTree)
		}
		if errDirect == nil {
			if string(direct) != string(viaTree) {
				t.Fatalf("%q: direct %s, tree %s", data, direct, viaTree)
			}
			again, err := canonicalJSON(direct)
			if err != nil || string(again) != string(direct) {
				t.Fatalf("canonical form %s is not a fixed point: %s (%v)", direct, again, err)
			}
		}
		d1, err1 := DigestJSON(data)
		obj, isObj := v.(map[string]any)
		if errParse != nil || !isObj {
			if err1 == nil {
				t.Fatalf("%q: DigestJSON accepted what Parse reads as no object (%v)", data, errParse)
			}
			return
		}
		d2, err2 := Digest(obj)
		if (err1 == nil) != (err2 == nil) || d1 != d2 {
			t.Fatalf("%q: DigestJSON %s (%v), Digest %s (%v)", data, d1, err1, d2, err2)
		}
	})
}
