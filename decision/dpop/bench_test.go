package dpop_test

import (
	"context"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision/dpop"
	"github.com/mcpauthz/mcpauthz/decision/state"
)

// BenchmarkCheck is the cost of one DPoP check per decision: parse,
// ES256 verify (which dominates), the claims and a Once on the memory
// store. Each iteration checks a fresh proof: nothing is cached, as a
// cached proof could be replayed. Proofs are signed before the timer.
func BenchmarkCheck(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			cl := newClient(b, alg)
			c := newChecker(b, dpop.Options{Replay: state.NewMemory(1<<20, func() time.Time { return testNow })})
			proofs := make([]string, b.N)
			for i := range proofs {
				proofs[i] = cl.ProofAt("POST", testURI, testToken, testNow)
			}
			r := dpop.Request{Method: "POST", URI: testURI, AccessToken: testToken, JKT: cl.JKT}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Proof = proofs[i]
				if err := c.Check(ctx, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
