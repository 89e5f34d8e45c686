package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/internal/benchgrowth"
)

// The growth benchmarks of the token path (see decision/growth_bench_test.go
// for the convention: the last name element is "name=size"; the largest
// sizes are left out under -short).

// BenchmarkGrowthAPIKeys is one API key verified against an index of N
// keys (verify, per request, over 64 of the keys in turn), and the index
// built from the api_keys document of N keys (index, once per policy
// snapshot), with the live heap the index keeps per key.
func BenchmarkGrowthAPIKeys(b *testing.B) {
	for _, n := range benchgrowth.Sizes(1000, 10, 1000, 100000) {
		keys := make([]string, n)
		doc := make(map[string]any, n)
		for i := range keys {
			var hash string
			var entry map[string]any
			keys[i], hash, entry = apiKeyTestGenerate(b, fmt.Sprintf("user-%d", i), []string{"tools:read"}, "team", time.Time{})
			doc[hash] = entry
		}
		b.Run(fmt.Sprintf("verify/keys=%d", n), func(b *testing.B) {
			idx, err := ParseAPIKeys(doc)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if r := idx.Verify(keys[(i*7919)%n%64], apiKeyTestNow); !r.Valid {
					b.Fatal(r.Error)
				}
				i++
			}
		})
		b.Run(fmt.Sprintf("index/keys=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var idx *APIKeys
			for b.Loop() {
				var err error
				if idx, err = ParseAPIKeys(doc); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(retained(func() any { i, _ := ParseAPIKeys(doc); return i }))/float64(n), "live_B/key")
			_ = idx
		})
	}
}

// retained is the live heap that the value build returns keeps, measured
// after collections before and after building it.
func retained(build func() any) uint64 {
	live := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := live()
	v := build()
	after := live()
	runtime.KeepAlive(v)
	if after < before {
		return 0
	}
	return after - before
}

// BenchmarkGrowthTokenCache is the verification of a JWT with N distinct
// tokens in the cache. hit: the N tokens in turn, all cached (the cache
// sized 4N, at least the default, so that they stay in its young
// generation); miss: a token never seen, with the cache full of N others
// (an ES256 signature check, the insert and the evictions it causes).
// The cache is filled directly with entries of the one verified Result
// under N distinct token texts, as verifying N real tokens would, without
// signing and verifying N tokens first.
func BenchmarkGrowthTokenCache(b *testing.B) {
	k := jwtTestKeys()
	jwks := jwtTestWriteFile(b, "jwks.json", jwtTestJWKS(b, k.ec))
	ctx := context.Background()
	for _, mode := range []string{"hit", "miss"} {
		for _, n := range benchgrowth.Sizes(10000, 1, 100, 10000, 100000) {
			b.Run(fmt.Sprintf("%s/tokens=%d", mode, n), func(b *testing.B) {
				size := n
				if mode == "hit" {
					size = max(4*n, defaultCacheSize)
				}
				v := jwtTestVerifier(b, Options{Issuer: jwtTestIssuer, JWKSFile: jwks, CacheSize: size})
				raws := fillTokenCache(b, v, n)
				b.ReportAllocs()
				if mode == "hit" {
					i := 0
					for b.Loop() {
						if r := v.Verify(ctx, raws[i%n], nil); !r.Valid {
							b.Fatalf("not valid: %s", r.Error)
						}
						i++
					}
					return
				}
				now := time.Now()
				fresh := make([]string, b.N)
				for i := range fresh {
					fresh[i] = jwtTestSign(b, k.ec, "ES256", jwtTestClaims(now, func(c map[string]any) { c["jti"] = fmt.Sprintf("fresh-%d", i) }))
				}
				b.ResetTimer()
				for i := range b.N {
					if r := v.Verify(ctx, fresh[i], nil); !r.Valid {
						b.Fatalf("not valid: %s", r.Error)
					}
				}
			})
		}
	}
}

// fillTokenCache verifies one real ES256 token, then caches its outcome
// under n-1 more token texts (the same header and signature, a payload
// with another jti) and returns the n texts.
func fillTokenCache(b *testing.B, v *Verifier, n int) []string {
	b.Helper()
	raw := jwtTestSign(b, jwtTestKeys().ec, "ES256", jwtTestClaims(time.Now(), func(c map[string]any) { c["jti"] = "cached-0" }))
	if r := v.Verify(context.Background(), raw, nil); !r.Valid {
		b.Fatalf("not valid: %s", r.Error)
	}
	e, ok := v.cache.good.Get(tokenHash(raw))
	if !ok {
		b.Fatal("the verified token was not cached")
	}
	head, rest, _ := strings.Cut(raw, ".")
	_, sig, _ := strings.Cut(rest, ".")
	claims := jwtTestClaims(time.Now(), nil)
	raws := []string{raw}
	for i := 1; i < n; i++ {
		claims["jti"] = fmt.Sprintf("cached-%d", i)
		p, err := json.Marshal(claims)
		if err != nil {
			b.Fatal(err)
		}
		t := head + "." + base64.RawURLEncoding.EncodeToString(p) + "." + sig
		v.cache.putGood(tokenHash(t), e.res, e.until, e.keys, e.src)
		raws = append(raws, t)
	}
	return raws
}
