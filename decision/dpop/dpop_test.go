package dpop_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision/dpop"
	"github.com/mcpauthz/mcpauthz/decision/dpop/dpoptest"
	"github.com/mcpauthz/mcpauthz/decision/state"
)

const (
	testURI   = "https://mcp.example.com/mcp"
	testToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
)

var testNow = time.Unix(1_800_000_000, 0)

func newChecker(t testing.TB, opts dpop.Options) *dpop.Checker {
	t.Helper()
	if opts.Replay == nil {
		opts.Replay = state.NewMemory(1000, func() time.Time { return testNow })
	}
	opts.Now = func() time.Time { return testNow }
	c, err := dpop.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newClient(t testing.TB, alg string) *dpoptest.Client {
	t.Helper()
	c, err := dpoptest.New(alg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// claims returns c's claims for a POST to testURI at testNow, changed by edit.
func claims(c *dpoptest.Client, edit func(m map[string]any)) []byte {
	var m map[string]any
	_ = json.Unmarshal(c.Claims("POST", testURI, testToken, testNow), &m)
	if edit != nil {
		edit(m)
	}
	b, _ := json.Marshal(m)
	return b
}

func header(c *dpoptest.Client, edit func(m map[string]any)) []byte {
	var m map[string]any
	_ = json.Unmarshal(c.Header(), &m)
	if edit != nil {
		edit(m)
	}
	b, _ := json.Marshal(m)
	return b
}

// TestCheck is every check of RFC 9449 §4.3, each with its answer: nil
// or the invalid_dpop_proof reason.
func TestCheck(t *testing.T) {
	es := newClient(t, "ES256")
	other := newClient(t, "ES256")
	ed := newClient(t, "EdDSA")
	rs := newClient(t, "RS256")
	ps := newClient(t, "PS256")
	b64 := base64.RawURLEncoding.EncodeToString
	type row struct {
		proof  string
		req    dpop.Request // Proof and defaults filled in
		opts   dpop.Options
		reason string // "" when the proof is accepted
	}
	good := func(c *dpoptest.Client) string { return c.SignJSON(c.Header(), claims(c, nil)) }
	tests := map[string]row{
		"es256_accepted":   {proof: good(es)},
		"eddsa_accepted":   {proof: good(ed)},
		"rs256_accepted":   {proof: good(rs)},
		"ps256_accepted":   {proof: good(ps)},
		"no_proof":         {proof: "", reason: "has no DPoP proof"},
		"two_proofs":       {proof: good(es) + "," + good(es), reason: "more than one DPoP proof"},
		"too_large":        {proof: strings.Repeat("a", dpop.MaxProofBytes+1), reason: "larger than"},
		"not_compact":      {proof: "abc.def", reason: "not a JWS in compact"},
		"four_segments":    {proof: good(es) + ".x", reason: "not a JWS in compact"},
		"header_not_b64":   {proof: "!!." + b64(claims(es, nil)) + ".c2ln", reason: "not base64url"},
		"header_padded":    {proof: base64.URLEncoding.EncodeToString(padded(es.Header())) + "." + b64(claims(es, nil)) + ".c2ln", reason: "not base64url"},
		"header_not_json":  {proof: b64([]byte("{")) + "." + b64(claims(es, nil)) + ".c2ln", reason: "the proof's header"},
		"header_array":     {proof: es.SignJSON([]byte(`[1]`), claims(es, nil)), reason: "not a JSON object"},
		"typ_missing":      {proof: es.SignJSON(header(es, func(m map[string]any) { delete(m, "typ") }), claims(es, nil)), reason: "typ is not dpop+jwt"},
		"typ_jwt":          {proof: es.SignJSON(header(es, func(m map[string]any) { m["typ"] = "JWT" }), claims(es, nil)), reason: "typ is not dpop+jwt"},
		"typ_duplicated":   {proof: es.SignJSON([]byte(`{"typ":"JWT","typ":"dpop+jwt","alg":"ES256","jwk":`+string(es.JWK)+`}`), claims(es, nil)), reason: "the proof's header"},
		"typ_case_folded":  {proof: es.SignJSON([]byte(`{"TYP":"JWT","typ":"dpop+jwt","alg":"ES256","jwk":`+string(es.JWK)+`}`), claims(es, nil)), reason: "the proof's header"},
		"alg_none":         {proof: es.SignJSON(header(es, func(m map[string]any) { m["alg"] = "none" }), claims(es, nil)), reason: "alg is not one of"},
		"alg_hs256":        {proof: es.SignJSON(header(es, func(m map[string]any) { m["alg"] = "HS256" }), claims(es, nil)), reason: "alg is not one of"},
		"alg_not_allowed":  {proof: good(rs), opts: dpop.Options{Algorithms: []string{"ES256"}}, reason: "alg is not one of ES256"},
		"alg_wrong_key":    {proof: es.SignJSON(header(es, func(m map[string]any) { m["alg"] = "RS256" }), claims(es, nil)), reason: "signature does not verify"},
		"crit":             {proof: es.SignJSON(header(es, func(m map[string]any) { m["crit"] = []string{"x"}; m["x"] = 1 }), claims(es, nil)), reason: "crit header"},
		"no_jwk":           {proof: es.SignJSON(header(es, func(m map[string]any) { delete(m, "jwk") }), claims(es, nil)), reason: "has no jwk"},
		"jwk_not_object":   {proof: es.SignJSON(header(es, func(m map[string]any) { m["jwk"] = "key" }), claims(es, nil)), reason: "not a JSON object"},
		"jwk_private_ec":   {proof: es.SignJSON(header(es, func(m map[string]any) { m["jwk"] = json.RawMessage(es.PrivateJWK()) }), claims(es, nil)), reason: "private or symmetric key (d)"},
		"jwk_private_rsa":  {proof: rs.SignJSON(header(rs, func(m map[string]any) { m["jwk"] = json.RawMessage(rs.PrivateJWK()) }), claims(rs, nil)), reason: "private or symmetric key"},
		"jwk_symmetric":    {proof: es.SignJSON(header(es, func(m map[string]any) { m["jwk"] = map[string]string{"kty": "oct", "k": "c2VjcmV0"} }), claims(es, nil)), reason: "private or symmetric key (k)"},
		"jwk_other_key":    {proof: es.SignJSON(header(es, func(m map[string]any) { m["jwk"] = json.RawMessage(other.JWK) }), claims(es, nil)), reason: "signature does not verify"},
		"bad_signature":    {proof: good(es)[:len(good(es))-4] + "AAAA", reason: "signature does not verify"},
		"no_jti":           {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { delete(m, "jti") })), reason: "no jti claim"},
		"empty_jti":        {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["jti"] = "" })), reason: "no jti claim"},
		"long_jti":         {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["jti"] = strings.Repeat("j", 257) })), reason: "longer than 256"},
		"no_htm":           {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { delete(m, "htm") })), reason: "no htm claim"},
		"no_htu":           {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { delete(m, "htu") })), reason: "no htu claim"},
		"htu_number":       {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["htu"] = 1 })), reason: "no htu claim"},
		"no_iat":           {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { delete(m, "iat") })), reason: "no iat claim"},
		"iat_string":       {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["iat"] = "1800000000" })), reason: "no iat claim"},
		"iat_fraction":     {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["iat"] = 1800000000.5 })), reason: "no iat claim"},
		"claim_duplicated": {proof: es.SignJSON(es.Header(), []byte(strings.Replace(string(claims(es, nil)), `"htm":"POST"`, `"htm":"GET","htm":"POST"`, 1))), reason: "the proof's claims"},
		"claim_case_folded": {proof: es.SignJSON(es.Header(), []byte(strings.Replace(string(claims(es, nil)), `"htm":"POST"`, `"HTM":"GET","htm":"POST"`, 1))),
			reason: "the proof's claims"},
		"htm_other":          {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["htm"] = "GET" })), reason: "htm is not the request's method"},
		"htm_lower_case":     {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["htm"] = "post" })), reason: "htm is not"},
		"htu_other_path":     {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["htu"] = "https://mcp.example.com/other" })), reason: "htu is not"},
		"htu_other_host":     {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["htu"] = "https://evil.example.com/mcp" })), reason: "htu is not"},
		"htu_http_for_https": {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["htu"] = "http://mcp.example.com/mcp" })), reason: "htu is not"},
		"htu_normalised": {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["htu"] = "HTTPS://MCP.Example.COM:443/%6dcp?x=1#f" })),
			req: dpop.Request{URI: "https://mcp.example.com/mcp?session=2"}},
		"htu_query_ignored": {proof: good(es), req: dpop.Request{URI: "https://mcp.example.com/mcp?a=b"}},
		"htu_configured": {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["htu"] = "https://public.example.com/mcp" })),
			req: dpop.Request{URI: "http://10.0.0.7:8080/mcp"}, opts: dpop.Options{HTU: "https://public.example.com/mcp"}},
		"htu_configured_internal_refused": {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["htu"] = "http://10.0.0.7:8080/mcp" })),
			req: dpop.Request{URI: "http://10.0.0.7:8080/mcp"}, opts: dpop.Options{HTU: "https://public.example.com/mcp"}, reason: "htu is not"},
		"request_uri_unknown": {proof: good(es), req: dpop.Request{URI: "/mcp"}, reason: "cannot be known"},
		"iat_at_skew_edge":    {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["iat"] = testNow.Add(dpop.DefaultSkew).Unix() }))},
		"iat_past_skew":       {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["iat"] = testNow.Add(dpop.DefaultSkew + time.Second).Unix() })), reason: "in the future"},
		"iat_at_max_age_edge": {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["iat"] = testNow.Add(-dpop.DefaultMaxAge - dpop.DefaultSkew).Unix() }))},
		"iat_too_old": {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) {
			m["iat"] = testNow.Add(-dpop.DefaultMaxAge - dpop.DefaultSkew - time.Second).Unix()
		})), reason: "too old"},
		"iat_max_age_configured": {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["iat"] = testNow.Add(-time.Minute).Unix() })),
			opts: dpop.Options{MaxAge: 20 * time.Second, Skew: 10 * time.Second}, reason: "too old"},
		"no_ath":       {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { delete(m, "ath") })), reason: "no ath claim"},
		"ath_number":   {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["ath"] = 1 })), reason: "ath is not a string"},
		"ath_other":    {proof: good(es), req: dpop.Request{AccessToken: "another-token"}, reason: "ath is not the hash"},
		"jkt_other":    {proof: good(other), req: dpop.Request{JKT: es.JKT}, reason: "not the key the access token is bound to"},
		"jkt_missing":  {proof: good(es), req: dpop.Request{JKT: "-"}, reason: "not the key the access token is bound to"},
		"nonce_string": {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["nonce"] = "n" }))},
		"nonce_number": {proof: es.SignJSON(es.Header(), claims(es, func(m map[string]any) { m["nonce"] = 1 })), reason: "nonce is not a string"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := newChecker(t, tc.opts)
			r := tc.req
			r.Proof = tc.proof
			r.Method = "POST"
			if r.URI == "" {
				r.URI = testURI
			}
			if r.AccessToken == "" {
				r.AccessToken = testToken
			}
			switch r.JKT {
			case "":
				// The token is bound to the proof's key, unless the row says.
				r.JKT = es.JKT
				if k := proofKey(tc.proof); k != "" {
					r.JKT = k
				}
			case "-":
				r.JKT = ""
			}
			err := c.Check(context.Background(), &r)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Check = %v; want the proof accepted", err)
				}
				return
			}
			var de *dpop.Error
			if !errors.As(err, &de) || !strings.Contains(de.Reason, tc.reason) {
				t.Fatalf("Check = %v; want an invalid_dpop_proof saying %q", err, tc.reason)
			}
			if strings.Contains(de.Reason, tc.proof) && tc.proof != "" {
				t.Fatalf("the reason quotes the proof: %q", de.Reason)
			}
		})
	}
}

// padded returns b with spaces after it so that its base64 has padding.
func padded(b []byte) []byte {
	for len(b)%3 == 0 {
		b = append(b, ' ')
	}
	return b
}

// proofKey is the thumbprint of the key a proof's header carries, "" when
// it cannot be read.
func proofKey(proof string) string {
	c, _ := dpop.New(dpop.Options{Replay: state.NewMemory(1, nil)})
	p, err := c.Parse(proof)
	if err != nil {
		return ""
	}
	return p.Thumbprint
}

// TestReplay: a proof is accepted once within its window, whatever the
// order; a failing store refuses it as a StoreError, never accepts it.
func TestReplay(t *testing.T) {
	es := newClient(t, "ES256")
	c := newChecker(t, dpop.Options{})
	proof := es.ProofAt("POST", testURI, testToken, testNow)
	r := dpop.Request{Proof: proof, Method: "POST", URI: testURI, AccessToken: testToken, JKT: es.JKT}
	if err := c.Check(context.Background(), &r); err != nil {
		t.Fatalf("first use: %v", err)
	}
	var de *dpop.Error
	if err := c.Check(context.Background(), &r); !errors.As(err, &de) || !strings.Contains(de.Reason, "used before") {
		t.Fatalf("second use = %v; want refused as used before", err)
	}
	// A proof refused for another reason does not use up its jti.
	fresh := es.ProofAt("POST", testURI, testToken, testNow)
	bad := r
	bad.Proof, bad.Method = fresh, "GET"
	if err := c.Check(context.Background(), &bad); err == nil {
		t.Fatal("a GET with a POST proof was accepted")
	}
	r.Proof = fresh
	if err := c.Check(context.Background(), &r); err != nil {
		t.Fatalf("the proof refused for its method was used up: %v", err)
	}

	failing := newChecker(t, dpop.Options{Replay: failingStore{}})
	r.Proof = es.ProofAt("POST", testURI, testToken, testNow)
	var se *dpop.StoreError
	if err := failing.Check(context.Background(), &r); !errors.As(err, &se) {
		t.Fatalf("Check with a failing store = %v; want a StoreError", err)
	}
}

type failingStore struct{}

func (failingStore) Once(context.Context, string, time.Duration) (bool, error) {
	return false, errors.New("redis: connection refused")
}

// TestNew refuses symmetric algorithms and unusable htu values.
func TestNew(t *testing.T) {
	tests := map[string]struct {
		opts dpop.Options
		want string
	}{
		"hs256":      {opts: dpop.Options{Algorithms: []string{"HS256"}}, want: "not an asymmetric"},
		"none":       {opts: dpop.Options{Algorithms: []string{"none"}}, want: "not an asymmetric"},
		"htu_path":   {opts: dpop.Options{HTU: "/mcp"}, want: "htu"},
		"htu_ftp":    {opts: dpop.Options{HTU: "ftp://x/mcp"}, want: "htu"},
		"no_replay":  {opts: dpop.Options{}, want: "Replay is required"},
		"defaults":   {opts: dpop.Options{Replay: failingStore{}}},
		"es256_only": {opts: dpop.Options{Algorithms: []string{"ES256"}, Replay: failingStore{}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.opts.Replay == nil && tc.want != "Replay is required" {
				tc.opts.Replay = failingStore{}
			}
			c, err := dpop.New(tc.opts)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if name == "defaults" && c.Algorithms() != "ES256 PS256 EdDSA RS256" {
					t.Fatalf("Algorithms = %q", c.Algorithms())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestNormalizeURI(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"plain":             {"https://a.example/mcp", "https://a.example/mcp"},
		"case":              {"HTTPS://A.Example/MCP", "https://a.example/MCP"},
		"default_https":     {"https://a.example:443/mcp", "https://a.example/mcp"},
		"default_http":      {"http://a.example:80/mcp", "http://a.example/mcp"},
		"other_port":        {"https://a.example:8443/mcp", "https://a.example:8443/mcp"},
		"port_443_on_http":  {"http://a.example:443/mcp", "http://a.example:443/mcp"},
		"empty_port":        {"https://a.example:/mcp", "https://a.example/mcp"},
		"empty_path":        {"https://a.example", "https://a.example/"},
		"query_fragment":    {"https://a.example/mcp?x=1#y", "https://a.example/mcp"},
		"unreserved_pct":    {"https://a.example/%6d%63%70%7E", "https://a.example/mcp~"},
		"reserved_pct":      {"https://a.example/a%2fb", "https://a.example/a%2Fb"},
		"raw_space":         {"https://a.example/a b", "https://a.example/a%20b"},
		"raw_utf8":          {"https://a.example/é", "https://a.example/%C3%A9"},
		"ipv6":              {"https://[::1]:443/mcp", "https://[::1]/mcp"},
		"ipv6_no_port":      {"https://[::1]/mcp", "https://[::1]/mcp"},
		"dot_segments_kept": {"https://a.example/a/../mcp", "https://a.example/a/../mcp"},
		"bad_pct":           {"https://a.example/%zz", ""},
		"short_pct":         {"https://a.example/%2", ""},
		"userinfo":          {"https://u@a.example/mcp", ""},
		"no_host":           {"https:///mcp", ""},
		"relative":          {"/mcp", ""},
		"ws":                {"wss://a.example/mcp", ""},
		"port_letters":      {"https://a.example:44x/mcp", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := dpop.NormalizeURI(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("NormalizeURI(%q) = %q; want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizeURI(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}
