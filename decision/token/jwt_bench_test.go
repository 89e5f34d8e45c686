package token

import (
	"context"
	"strings"
	"testing"
	"time"
)

// jwtBenchVerifier trusts the RSA test key from a JWKS file, on the real
// clock.
func jwtBenchVerifier(b *testing.B) *Verifier {
	k := jwtTestKeys()
	return jwtTestVerifier(b, Options{
		Issuer:   jwtTestIssuer,
		JWKSFile: jwtTestWriteFile(b, "jwks.json", jwtTestJWKS(b, k.rsa)),
	})
}

// BenchmarkVerifyCold verifies a token never seen before on every
// iteration: parse, RS256 (2048-bit) signature, claims, Result, cache
// insert. Tokens are signed before the timer starts; signing costs far
// more than verifying, so run it with a fixed count (-benchtime=2000x).
func BenchmarkVerifyCold(b *testing.B) {
	k := jwtTestKeys()
	v := jwtBenchVerifier(b)
	now := time.Now()
	raws := make([]string, b.N)
	for i := range raws {
		raws[i] = jwtTestSign(b, k.rsa, "RS256", jwtTestClaims(now, func(c map[string]any) { c["jti"] = i }))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := v.Verify(ctx, raws[i], nil); !r.Valid {
			b.Fatalf("not valid: %s", r.Error)
		}
	}
}

// BenchmarkVerifyCached verifies the same token again and again: after the
// first call, a SHA-256, an LRU lookup and a time comparison.
func BenchmarkVerifyCached(b *testing.B) {
	k := jwtTestKeys()
	v := jwtBenchVerifier(b)
	raw := jwtTestSign(b, k.rsa, "RS256", jwtTestClaims(time.Now(), nil))
	ctx := context.Background()
	if r := v.Verify(ctx, raw, nil); !r.Valid {
		b.Fatalf("not valid: %s", r.Error)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := v.Verify(ctx, raw, nil); !r.Valid {
			b.Fatalf("not valid: %s", r.Error)
		}
	}
}

// BenchmarkVerifyCachedParallel is BenchmarkVerifyCached from as many
// goroutines as there are cores, over 64 cached tokens: the cache's
// lookups must not serialise concurrent requests.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	k := jwtTestKeys()
	v := jwtBenchVerifier(b)
	ctx := context.Background()
	raws := make([]string, 64)
	for i := range raws {
		raws[i] = jwtTestSign(b, k.rsa, "RS256", jwtTestClaims(time.Now(), func(c map[string]any) { c["jti"] = i }))
		if r := v.Verify(ctx, raws[i], nil); !r.Valid {
			b.Fatalf("not valid: %s", r.Error)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if r := v.Verify(ctx, raws[i%len(raws)], nil); !r.Valid {
				b.Errorf("not valid: %s", r.Error)
				return
			}
			i++
		}
	})
}

// FuzzVerify feeds arbitrary credentials to the verifier: nothing may
// panic, every Result is finished, and nothing forged is ever valid.
func FuzzVerify(f *testing.F) {
	k := jwtTestKeys()
	good := jwtTestSign(f, k.rsa, "RS256", jwtTestClaims(jwtTestStart, nil))
	parts := strings.Split(good, ".")
	for _, s := range []string{"", "abc", "a.b.c", "a..c", parts[0] + "." + parts[1] + ".", parts[0] + ".e30." + parts[2], "mcpk_x", good + "x"} {
		f.Add(s)
	}
	clock := &jwtTestClock{now: jwtTestStart}
	v := jwtTestFileVerifier(f, clock, 0)
	f.Fuzz(func(t *testing.T, raw string) {
		r := v.Verify(context.Background(), raw, nil)
		if r == nil || r.Value == nil {
			t.Fatalf("Verify(%q) returned an unfinished Result", raw)
		}
		if r.Valid && raw != good {
			t.Fatalf("Verify(%q) is valid", raw)
		}
		if !r.Valid && r.Error == "" {
			t.Fatalf("Verify(%q) is invalid without a reason", raw)
		}
	})
}
