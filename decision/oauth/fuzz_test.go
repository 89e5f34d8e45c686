package oauth

import (
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// FuzzChallenge401 checks that any description yields a header value without
// control characters that the MCP Go SDK parses back to the description with
// control characters dropped.
func FuzzChallenge401(f *testing.F) {
	for _, s := range []string{"", "token expired", `a "quoted" \ value`, "x\r\nSet-Cookie: y", `ends with \`, "a, b=c", "\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, description string) {
		h := Challenge401(testMeta, true, description)
		for i := 0; i < len(h); i++ {
			if c := h[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("header value has control character %q: %q", c, h)
			}
		}
		cs, err := oauthex.ParseWWWAuthenticate([]string{h})
		if err != nil {
			t.Fatalf("SDK cannot parse %q: %v", h, err)
		}
		if len(cs) != 1 {
			t.Fatalf("SDK found %d challenges in %q", len(cs), h)
		}
		var b strings.Builder
		for i := 0; i < len(description); i++ {
			if c := description[i]; c >= 0x20 && c != 0x7f {
				b.WriteByte(c)
			}
		}
		want := b.String()
		if got := cs[0].Params["error_description"]; got != want {
			t.Fatalf("description round trip: got %q, want %q (header %q)", got, want, h)
		}
		if cs[0].Params["resource_metadata"] != testMeta || cs[0].Params["error"] != "invalid_token" {
			t.Fatalf("params %v", cs[0].Params)
		}
	})
}
