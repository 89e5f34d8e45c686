package querystr

import (
	"strings"
	"testing"
)

func TestEach(t *testing.T) {
	tests := map[string]struct {
		q    string
		want []string // Name, with ";" before it when Semicolon
	}{
		"empty":         {q: "", want: nil},
		"ampersands":    {q: "a=1&b=2", want: []string{"a", "b"}},
		"semicolon":     {q: "x=1;access_token=T", want: []string{"x", ";access_token"}},
		"escaped_name":  {q: "access%5Ftoken=T&%61=1", want: []string{"access_token", "a"}},
		"plus":          {q: "a+b=1", want: []string{"a b"}},
		"bad_escape":    {q: "a%zz=1", want: []string{"a%zz"}},
		"empty_pieces":  {q: "&&a;;b&", want: []string{"a", ";b"}},
		"value_has_sep": {q: "a=%26b", want: []string{"a"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			Each(tc.q, func(p Param) bool {
				n := p.Name
				if p.Semicolon {
					n = ";" + n
				}
				got = append(got, n)
				return true
			})
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("Each(%q) = %q, want %q", tc.q, got, tc.want)
			}
		})
	}
}

// FuzzEach: the parameters are the query's non-empty pieces between
// separators, in order, each at its offsets, none holding a separator.
func FuzzEach(f *testing.F) {
	for _, q := range []string{"x=1;access_token=T", "access%5Ftoken=T", "%61ccess_token=T", "&&;;a", "a=%zz+b"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		var pieces []string
		Each(q, func(p Param) bool {
			if q[p.Start:p.End] != p.Raw || strings.ContainsAny(p.Raw, "&;") || p.Raw == "" {
				t.Fatalf("%q: param %+v", q, p)
			}
			if p.Semicolon != (p.Start > 0 && q[p.Start-1] == ';') {
				t.Fatalf("%q: param %+v: Semicolon wrong", q, p)
			}
			pieces = append(pieces, p.Raw)
			return true
		})
		want := strings.FieldsFunc(q, func(r rune) bool { return r == '&' || r == ';' })
		if strings.Join(pieces, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("%q: pieces %q, want %q", q, pieces, want)
		}
	})
}
