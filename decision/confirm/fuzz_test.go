package confirm

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// FuzzOpen feeds the opener hostile requestStates: it never panics, and it
// opens only the exact text a ring sealed, for the binding it was sealed
// for. Seeds under testdata/fuzz/FuzzOpen hold states sealed under the
// fuzz ring's key (valid at testNow), cut, padded and re-keyed.
func FuzzOpen(f *testing.F) {
	now := testNow
	ring := testRing(f, &now, Key{ID: "k1", Secret: secretOld})
	want := Binding{Owner: alice, Method: "tools/call", Digest: mustDigest(f, params)}
	f.Add("")
	f.Add("AQJrMQ")
	f.Fuzz(func(t *testing.T, sealed string) {
		s, err := ring.Open(sealed, want)
		if err != nil {
			return
		}
		raw, derr := base64.RawURLEncoding.DecodeString(sealed)
		if derr != nil || base64.RawURLEncoding.EncodeToString(raw) != sealed {
			t.Fatalf("Open accepted %q, which is not canonical base64url", sealed)
		}
		if s.Owner != want.Owner || s.Method != want.Method || !bytes.Equal(s.Digest, want.Digest) || s.Expires <= now.Unix() {
			t.Fatalf("Open accepted a state not bound to the request: %+v", s)
		}
	})
}
