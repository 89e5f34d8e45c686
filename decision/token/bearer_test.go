package token

import (
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	tests := map[string]struct {
		header      string
		wantRaw     string
		wantPresent bool
		wantOK      bool
	}{
		"empty":                {header: "", wantPresent: false},
		"blank":                {header: "   ", wantPresent: false},
		"bearer":               {header: "Bearer abc.def.ghi", wantRaw: "abc.def.ghi", wantPresent: true, wantOK: true},
		"scheme_lowercase":     {header: "bearer abc", wantRaw: "abc", wantPresent: true, wantOK: true},
		"scheme_uppercase":     {header: "BEARER abc", wantRaw: "abc", wantPresent: true, wantOK: true},
		"several_spaces":       {header: "Bearer   abc", wantRaw: "abc", wantPresent: true, wantOK: true},
		"token68_padding":      {header: "Bearer a+b/c~d==", wantRaw: "a+b/c~d==", wantPresent: true, wantOK: true},
		"basic_scheme":         {header: "Basic dXNlcjpwYXNz", wantPresent: true},
		"scheme_only":          {header: "Bearer", wantPresent: true},
		"scheme_and_space":     {header: "Bearer ", wantPresent: true},
		"two_tokens":           {header: "Bearer abc def", wantPresent: true},
		"trailing_space":       {header: "Bearer abc ", wantPresent: true},
		"comma":                {header: "Bearer abc,def", wantPresent: true},
		"padding_in_middle":    {header: "Bearer ab=c", wantPresent: true},
		"only_padding":         {header: "Bearer ==", wantPresent: true},
		"tab_separator":        {header: "Bearer\tabc", wantPresent: true},
		"bearer_prefix_scheme": {header: "Bearerx abc", wantPresent: true},
		"non_ascii":            {header: "Bearer abcé", wantPresent: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			raw, present, ok := BearerToken(tc.header)
			if raw != tc.wantRaw || present != tc.wantPresent || ok != tc.wantOK {
				t.Errorf("BearerToken(%q) = %q, %v, %v; want %q, %v, %v",
					tc.header, raw, present, ok, tc.wantRaw, tc.wantPresent, tc.wantOK)
			}
		})
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"", "Bearer abc", "bearer a.b.c", "Basic x", "Bearer a b", "Bearer ==", "Bearer  x="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		raw, present, ok := BearerToken(header)
		if ok && (!present || raw == "" || !isToken68(raw) || !strings.HasSuffix(header, raw)) {
			t.Errorf("BearerToken(%q) = %q, %v, %v: ok with a bad token", header, raw, present, ok)
		}
		if !ok && raw != "" {
			t.Errorf("BearerToken(%q) returned %q though not ok", header, raw)
		}
		if !present && strings.TrimSpace(header) != "" {
			t.Errorf("BearerToken(%q): a non-blank header is present", header)
		}
	})
}

// BenchmarkBearerToken reads a bearer header of the size of an RS256 JWT.
func BenchmarkBearerToken(b *testing.B) {
	h := "Bearer " + strings.Repeat("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.", 22)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := BearerToken(h); !ok {
			b.Fatal("not a bearer token")
		}
	}
}
