package token

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
)

func TestCheckMembers(t *testing.T) {
	errSyntax := errors.New("any JSON syntax error")
	tests := map[string]struct {
		json string
		want error // nil: accepted
	}{
		"empty_object":                   {`{}`, nil},
		"plain":                          {`{"sub":"alice","exp":1,"aud":["a","b"],"x":null,"y":true}`, nil},
		"same_name_in_sibling_objects":   {`{"a":{"x":1},"b":{"x":2},"c":[{"x":3},{"x":4}]}`, nil},
		"nested_names_differ_in_case":    {`{"ext":{"team":"a","Team":"b"}}`, errNotOneReading},
		"invalid_utf8_in_sub":            {"{\"sub\":\"alice\xff\"}", errNotOneReading},
		"lone_surrogate_in_sub":          {`{"sub":"alice\ud800"}`, errNotOneReading},
		"lone_low_surrogate_in_aud":      {`{"aud":["api","\udc00"]}`, errNotOneReading},
		"lone_surrogate_in_nested_claim": {`{"ext":{"team":"\ud800x"}}`, errNotOneReading},
		"surrogate_pair":                 {`{"name":"\ud83d\ude00"}`, nil},
		"control_character_in_name":      {`{"sub\u0000":"a"}`, errNotOneReading},
		"number_not_a_double":            {`{"n":9007199254740993}`, errNotOneReading},
		"member_name_like_a_value":       {`{"a":"b","b":"a"}`, nil},
		"huge_number":                    {`{"n":1e400}`, errNotOneReading},
		"deep_nesting":                   {`{"a":[[[{"b":[{"c":{}}]}]]]}`, nil},
		"surrounding_whitespace":         {" \n{\"a\":1}\t\n", nil},
		"top_level_duplicate":            {`{"sub":"alice","sub":"mallory"}`, errDuplicateMember},
		"top_level_duplicate_by_escape":  {`{"sub":"alice","\u0073ub":"mallory"}`, errDuplicateMember},
		"nested_duplicate":               {`{"cnf":{"jkt":"a","jkt":"b"}}`, errDuplicateMember},
		"duplicate_in_array_of_objects":  {`{"ad":[{"type":"a"},{"type":"a","type":"b"}]}`, errDuplicateMember},
		"duplicate_after_nested_value":   {`{"a":{"b":[1,{"c":2}]},"a":3}`, errDuplicateMember},
		"duplicate_deep":                 {`{"a":[[{"b":{"c":1,"c":1}}]]}`, errDuplicateMember},
		"top_level_differ_in_case":       {`{"sub":"alice","Sub":"mallory"}`, errFoldedMember},
		"top_level_all_caps":             {`{"exp":1,"EXP":2}`, errFoldedMember},
		"top_level_long_s":               {`{"sub":"alice","ſub":"mallory"}`, errFoldedMember},
		"top_level_kelvin_sign":          {`{"kid":"a","\u212aid":"b"}`, errFoldedMember},
		"top_level_greek_final_sigma":    {`{"σ":1,"ς":2}`, errFoldedMember},
		"array":                          {`[{"a":1}]`, errNotOneObject},
		"string":                         {`"a"`, errNotOneObject},
		"trailing_object":                {`{"sub":"alice"}{"sub":"mallory"}`, errNotOneObject},
		"trailing_garbage":               {`{"sub":"alice"}x`, errNotOneObject},
		"empty":                          {``, errSyntax},
		"unclosed":                       {`{"a":1`, errSyntax},
		"missing_colon":                  {`{"a" 1}`, errSyntax},
		"non_string_name":                {`{1:2}`, errSyntax},
		"trailing_comma":                 {`{"a":1,}`, errSyntax},
		"different_names_same_lowercase": {`{"ab":1,"aB":2,"Ab":3}`, errFoldedMember},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := checkMembers([]byte(tc.json))
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want == errSyntax && err == nil:
				t.Error("accepted, want a syntax error")
			case tc.want != nil && tc.want != errSyntax && !errors.Is(err, tc.want):
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// jwtTestClaimsJSON is the JSON of a valid claim set at now, with extra
// members written first, as raw JSON ("" for none).
func jwtTestClaimsJSON(t *testing.T, now time.Time, first string) string {
	t.Helper()
	b, err := json.Marshal(jwtTestClaims(now, nil))
	if err != nil {
		t.Fatal(err)
	}
	if first == "" {
		return string(b)
	}
	return "{" + first + "," + string(b[1:])
}

// TestVerifyJWTStructure signs every token with a trusted key, so what
// refuses it is its structure, never its signature.
func TestVerifyJWTStructure(t *testing.T) {
	k := jwtTestKeys()
	now := jwtTestStart
	const header = `{"alg":"RS256","kid":"rsa-1","typ":"JWT"}`
	tests := map[string]struct {
		header, claims string // claims: members put before the valid ones
		wantError      string // "": valid
	}{
		"control":                              {header: header},
		"header_duplicate_kid":                 {header: `{"alg":"RS256","kid":"nobody","kid":"rsa-1"}`, wantError: ErrMalformed},
		"header_duplicate_alg":                 {header: `{"alg":"none","kid":"rsa-1","alg":"RS256"}`, wantError: ErrMalformed},
		"header_duplicate_by_escape":           {header: `{"alg":"RS256","kid":"rsa-1","\u006bid":"rsa-1"}`, wantError: ErrMalformed},
		"header_names_differ_in_case":          {header: `{"alg":"RS256","kid":"rsa-1","Kid":"ec-1"}`, wantError: ErrMalformed},
		"header_nested_duplicate":              {header: `{"alg":"RS256","kid":"rsa-1","ext":{"a":1,"a":2}}`, wantError: ErrMalformed},
		"header_trailing_object":               {header: header + `{"kid":"ec-1"}`, wantError: ErrMalformed},
		"claims_duplicate_sub":                 {header: header, claims: `"sub":"mallory"`, wantError: ErrMalformed},
		"claims_duplicate_exp":                 {header: header, claims: `"exp":4102444800`, wantError: ErrMalformed},
		"claims_duplicate_by_escape":           {header: header, claims: `"\u0073ub":"mallory"`, wantError: ErrMalformed},
		"claims_names_differ_in_case":          {header: header, claims: `"Sub":"mallory"`, wantError: ErrMalformed},
		"claims_long_s":                        {header: header, claims: `"ſcope":"admin"`, wantError: ErrMalformed},
		"claims_nested_duplicate":              {header: header, claims: `"cnf":{"jkt":"a","jkt":"b"}`, wantError: ErrMalformed},
		"claims_duplicate_in_array_of_objects": {header: header, claims: `"ad":[{"type":"a","type":"b"}]`, wantError: ErrMalformed},
		"claims_nested_names_differ_in_case":   {header: header, claims: `"ext":{"team":"a","Team":"b"}`, wantError: ErrMalformed},
		"claims_invalid_utf8":                  {header: header, claims: "\"name\":\"alice\xff\"", wantError: ErrMalformed},
		"claims_lone_surrogate":                {header: header, claims: `"name":"alice\ud800"`, wantError: ErrMalformed},
		"claims_lone_surrogate_in_scope":       {header: header, claims: `"scp":["mcp:tools","\udfff"]`, wantError: ErrMalformed},
		"claims_surrogate_pair":                {header: header, claims: `"name":"\ud83d\ude00"`},
		"header_lone_surrogate":                {header: `{"alg":"RS256","kid":"rsa-1","x":"\ud800"}`, wantError: ErrMalformed},
		"claims_same_name_in_sibling_objects":  {header: header, claims: `"a":{"x":1},"b":{"x":1}`},
		"crit_unknown_extension":               {header: `{"alg":"RS256","kid":"rsa-1","crit":["exp"],"exp":1}`, wantError: ErrMalformed},
		"crit_b64":                             {header: `{"alg":"RS256","kid":"rsa-1","crit":["b64"],"b64":true}`, wantError: ErrMalformed},
		"crit_empty":                           {header: `{"alg":"RS256","kid":"rsa-1","crit":[]}`, wantError: ErrMalformed},
		"crit_null":                            {header: `{"alg":"RS256","kid":"rsa-1","crit":null}`, wantError: ErrMalformed},
		"crit_not_a_list":                      {header: `{"alg":"RS256","kid":"rsa-1","crit":"exp"}`, wantError: ErrMalformed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := jwtTestFileVerifier(t, &jwtTestClock{now: now}, 0)
			raw := jwtTestSignRaw(t, k.rsa, "RS256", tc.header, jwtTestClaimsJSON(t, now, tc.claims))
			// Twice: the second answer may come from the cache.
			for range 2 {
				got := v.Verify(context.Background(), raw, nil)
				if got.Valid != (tc.wantError == "") || got.Error != tc.wantError || got.Type != TypeJWT {
					t.Fatalf("got valid=%v error=%q type=%q, want error %q", got.Valid, got.Error, got.Type, tc.wantError)
				}
			}
		})
	}
}

// TestVerifyJWTClaimStrings: a subject that is not Unicode refuses the
// token (issue 28 row 11): encoding/json, and so jwt, turned it into
// U+FFFD, and the token was valid with another subject than the one signed.
func TestVerifyJWTClaimStrings(t *testing.T) {
	k := jwtTestKeys()
	now := jwtTestStart
	tests := map[string]struct {
		sub   string // the sub member's value as written in the claims
		valid bool
	}{
		"plain":                 {`"alice"`, true},
		"escaped_pair":          {`"alice\ud83d\ude00"`, true},
		"invalid_utf8":          {"\"alice\xff\"", false},
		"truncated_utf8":        {"\"alice\xe2\x82\"", false},
		"lone_high_surrogate":   {`"alice\ud800"`, false},
		"lone_low_surrogate":    {`"\udc00alice"`, false},
		"reversed_pair":         {`"alice\udc00\ud800"`, false},
		"surrogate_then_letter": {`"alice\ud800\u0041"`, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(jwtTestClaims(now, func(m map[string]any) { m["sub"] = "SUBJECT" }))
			if err != nil {
				t.Fatal(err)
			}
			claims := strings.Replace(string(b), `"SUBJECT"`, tc.sub, 1)
			raw := jwtTestSignRaw(t, k.rsa, "RS256", `{"alg":"RS256","kid":"rsa-1","typ":"JWT"}`, claims)
			v := jwtTestFileVerifier(t, &jwtTestClock{now: now}, 0)
			got := v.Verify(context.Background(), raw, nil)
			if tc.valid {
				if !got.Valid {
					t.Fatalf("refused: %q", got.Error)
				}
				return
			}
			if got.Valid || got.Error != ErrMalformed || got.Subject != "" {
				t.Fatalf("got valid=%v error=%q subject=%q, want a malformed token", got.Valid, got.Error, got.Subject)
			}
		})
	}
}

func TestVerifyJWTTrailingClaims(t *testing.T) {
	// jwt decodes the claims with a streaming decoder, which stops after
	// the first object: the second, unsigned in meaning if not in bytes,
	// would be seen by a parser that keeps the last value.
	k := jwtTestKeys()
	v := jwtTestFileVerifier(t, &jwtTestClock{now: jwtTestStart}, 0)
	claims := jwtTestClaimsJSON(t, jwtTestStart, "") + `{"sub":"mallory"}`
	raw := jwtTestSignRaw(t, k.rsa, "RS256", `{"alg":"RS256","kid":"rsa-1"}`, claims)
	if got := v.Verify(context.Background(), raw, nil); got.Error != ErrMalformed {
		t.Errorf("got valid=%v error=%q, want malformed", got.Valid, got.Error)
	}
}

func TestVerifyJWTRequiredTyp(t *testing.T) {
	k := jwtTestKeys()
	now := jwtTestStart
	tests := map[string]struct {
		required  string
		typ       any // the typ header; nil: none
		wantError string
	}{
		"off_accepts_jwt":                  {required: "", typ: "JWT"},
		"off_accepts_no_typ":               {required: "", typ: nil},
		"off_accepts_anything":             {required: "", typ: "text/plain"},
		"at_jwt":                           {required: "at+jwt", typ: "at+jwt"},
		"at_jwt_upper_case":                {required: "at+jwt", typ: "AT+JWT"},
		"at_jwt_with_prefix":               {required: "at+jwt", typ: "application/at+jwt"},
		"at_jwt_with_prefix_mixed_case":    {required: "at+jwt", typ: "Application/At+JWT"},
		"required_with_prefix_typ_without": {required: "application/at+jwt", typ: "at+jwt"},
		"required_upper_case":              {required: "AT+JWT", typ: "application/at+jwt"},
		"jwt_refused":                      {required: "at+jwt", typ: "JWT", wantError: ErrMalformed},
		"no_typ_refused":                   {required: "at+jwt", typ: nil, wantError: ErrMalformed},
		"empty_typ_refused":                {required: "at+jwt", typ: "", wantError: ErrMalformed},
		"typ_not_a_string":                 {required: "at+jwt", typ: 1, wantError: ErrMalformed},
		"typ_array":                        {required: "at+jwt", typ: []any{"at+jwt"}, wantError: ErrMalformed},
		"other_top_level_type":             {required: "at+jwt", typ: "text/at+jwt", wantError: ErrMalformed},
		"prefix_alone":                     {required: "at+jwt", typ: "application/", wantError: ErrMalformed},
		"with_parameter":                   {required: "at+jwt", typ: "application/at+jwt; charset=utf-8", wantError: ErrMalformed},
		"with_space":                       {required: "at+jwt", typ: "at+jwt ", wantError: ErrMalformed},
		"id_token_style":                   {required: "at+jwt", typ: "id_token+jwt", wantError: ErrMalformed},
		"typ_with_suffix":                  {required: "at+jwt", typ: "at+jwt+x", wantError: ErrMalformed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := jwtTestVerifier(t, Options{
				Issuer:      jwtTestIssuer,
				JWKSFile:    jwtTestWriteFile(t, "jwks.json", jwtTestJWKS(t, k.rsa)),
				RequiredTyp: tc.required,
				Now:         func() time.Time { return now },
			})
			header := map[string]any{"typ": tc.typ} // nil removes jwt's "JWT"
			raw := jwtTestSignHeader(t, k.rsa, "RS256", header, jwtTestClaims(now, nil))
			got := v.Verify(context.Background(), raw, nil)
			if got.Valid != (tc.wantError == "") || got.Error != tc.wantError {
				t.Errorf("got valid=%v error=%q, want error %q", got.Valid, got.Error, tc.wantError)
			}
		})
	}
}

func TestCheckRequiredTyp(t *testing.T) {
	tests := map[string]struct {
		typ    string
		wantOK bool
	}{
		"empty_means_off":   {"", true},
		"at_jwt":            {"at+jwt", true},
		"with_prefix":       {"application/at+jwt", true},
		"upper_case":        {"AT+JWT", true},
		"jwt":               {"JWT", true},
		"two_slashes":       {"application/at+jwt/x", false},
		"parameter":         {"at+jwt; charset=utf-8", false},
		"space":             {"at jwt", false},
		"leading_space":     {" at+jwt", false},
		"empty_subtype":     {"application/", false},
		"empty_type":        {"/at+jwt", false},
		"starts_with_plus":  {"+jwt", false},
		"non_ascii":         {"ät+jwt", false},
		"control_character": {"at+jwt\n", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := CheckRequiredTyp(tc.typ); (err == nil) != tc.wantOK {
				t.Errorf("CheckRequiredTyp(%q) = %v, want ok=%v", tc.typ, err, tc.wantOK)
			}
		})
	}
}

// TestVerifyJWTIgnoresKeyHeaders signs tokens with a key the Verifier does
// not trust and points every key-bearing header member at that key: jwk and
// x5c embed it, jku and x5u name a server that serves it. Only the
// configured JWKS may supply keys, so each token is refused and the
// attacker's server never hears from the Verifier.
func TestVerifyJWTIgnoresKeyHeaders(t *testing.T) {
	k := jwtTestKeys()
	now := jwtTestStart
	attacker := jwtTestKey{kid: "evil", priv: k.rsa2.priv} // not in the trusted JWKS

	// The attacker's key as a JWK and as a self-signed certificate.
	var jwk map[string]any
	jwkJSON, err := json.Marshal(jose.JSONWebKey{Key: attacker.public(), KeyID: attacker.kid, Use: "sig", Algorithm: "RS256"})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(jwkJSON, &jwk); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: jwtTestIssuer},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, attacker.public(), attacker.priv)
	if err != nil {
		t.Fatal(err)
	}
	x5c := []any{base64.StdEncoding.EncodeToString(der)}

	var evilHits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evilHits.Add(1)
		switch r.URL.Path {
		case "/jwks":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(jwtTestJWKS(t, attacker, jwtTestKey{kid: k.rsa.kid, priv: attacker.priv}))
		case "/cert":
			w.Header().Set("Content-Type", "application/pkix-cert")
			_, _ = w.Write(der)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(evil.Close)

	all := map[string]any{"jwk": jwk, "x5c": x5c, "jku": evil.URL + "/jwks", "x5u": evil.URL + "/cert"}
	tests := map[string]struct {
		header    map[string]any
		kid       string // "" for none
		wantError string
	}{
		"jwk_with_its_kid":          {header: map[string]any{"jwk": jwk}, kid: "evil", wantError: ErrUnknownKey},
		"jwk_without_kid":           {header: map[string]any{"jwk": jwk}, wantError: ErrBadSignature},
		"jwk_with_trusted_kid":      {header: map[string]any{"jwk": jwk}, kid: k.rsa.kid, wantError: ErrBadSignature},
		"x5c_with_its_kid":          {header: map[string]any{"x5c": x5c}, kid: "evil", wantError: ErrUnknownKey},
		"x5c_without_kid":           {header: map[string]any{"x5c": x5c}, wantError: ErrBadSignature},
		"jku_with_its_kid":          {header: map[string]any{"jku": evil.URL + "/jwks"}, kid: "evil", wantError: ErrUnknownKey},
		"jku_with_trusted_kid":      {header: map[string]any{"jku": evil.URL + "/jwks"}, kid: k.rsa.kid, wantError: ErrBadSignature},
		"jku_without_kid":           {header: map[string]any{"jku": evil.URL + "/jwks"}, wantError: ErrBadSignature},
		"x5u_with_its_kid":          {header: map[string]any{"x5u": evil.URL + "/cert"}, kid: "evil", wantError: ErrUnknownKey},
		"x5u_without_kid":           {header: map[string]any{"x5u": evil.URL + "/cert"}, wantError: ErrBadSignature},
		"all_four_with_its_kid":     {header: all, kid: "evil", wantError: ErrUnknownKey},
		"all_four_with_trusted_kid": {header: all, kid: k.rsa.kid, wantError: ErrBadSignature},
		"all_four_without_kid":      {header: all, wantError: ErrBadSignature},
		"all_four_with_at_jwt_typ":  {header: merge(all, map[string]any{"typ": "at+jwt"}), kid: "evil", wantError: ErrUnknownKey},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			idp := newJWTTestIdP(t, jwtTestJWKS(t, k.rsa, k.ec))
			v := jwtTestVerifier(t, Options{
				Issuer:  jwtTestIssuer,
				JWKSURL: idp.srv.URL + "/jwks",
				Now:     func() time.Time { return now },
			})
			key := jwtTestKey{kid: tc.kid, priv: attacker.priv}
			raw := jwtTestSignHeader(t, key, "RS256", tc.header, jwtTestClaims(now, nil))
			before := evilHits.Load()
			got := v.Verify(context.Background(), raw, nil)
			if got.Valid || got.Error != tc.wantError {
				t.Errorf("got valid=%v error=%q, want %q", got.Valid, got.Error, tc.wantError)
			}
			if n := evilHits.Load() - before; n != 0 {
				t.Errorf("the attacker's server got %d requests, want none", n)
			}
			if n := idp.hitCount("/jwks"); n == 0 {
				t.Error("the configured JWKS was never fetched")
			}

			// Control: trusting the attacker's key, the same token is
			// valid, so the refusal above came from the key choice alone.
			trusting := jwtTestVerifier(t, Options{
				Issuer:   jwtTestIssuer,
				JWKSFile: jwtTestWriteFile(t, "evil.json", jwtTestJWKS(t, key)),
				Now:      func() time.Time { return now },
			})
			if got := trusting.Verify(context.Background(), raw, nil); !got.Valid {
				t.Errorf("control: a Verifier trusting the attacker's key refused the token: %s", got.Error)
			}
		})
	}
}

// merge returns the members of a and b in a new map, b's winning.
func merge(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for n, v := range a {
		out[n] = v
	}
	for n, v := range b {
		out[n] = v
	}
	return out
}

// TestVerifyJWTStructureCheckOffCachedPath checks that a cached token is
// answered without the structural checks: they cost a decode per segment,
// which the cache exists to avoid.
func TestVerifyJWTStructureCheckOffCachedPath(t *testing.T) {
	k := jwtTestKeys()
	v := jwtTestFileVerifier(t, &jwtTestClock{now: jwtTestStart}, 0)
	raw := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(jwtTestStart, nil))
	ctx := context.Background()
	if r := v.Verify(ctx, raw, nil); !r.Valid {
		t.Fatalf("not valid: %s", r.Error)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if r := v.Verify(ctx, raw, nil); !r.Valid {
			t.Fatalf("not valid: %s", r.Error)
		}
	})
	if allocs != 0 {
		t.Errorf("a cache hit allocates %v times, want 0", allocs)
	}
}

// FuzzCheckMembers: whatever checkMembers accepts is one valid JSON object;
// an object re-encoded from a Go map (so without duplicates) is accepted
// exactly when no two of its top-level names are strings.EqualFold, which
// checks foldName against the standard library's own folding.
func FuzzCheckMembers(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"sub":"a","Sub":"b"}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"x":1},{"x":1}]}`,
		`{"ſ":1,"s":2}`, `{"\u212a":1,"k":2}`, `{"a":1}{"b":2}`, `[1]`, `{"n":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, decodeErr := jwtTestDecodeObject(data)
		if checkMembers(data) == nil && decodeErr != nil {
			t.Fatalf("accepted %q, which is not one JSON object: %v", data, decodeErr)
		}
		if decodeErr != nil {
			return
		}
		again, err := json.Marshal(m)
		if err != nil {
			return
		}
		folds := false
		names := make([]string, 0, len(m))
		for n := range m {
			for _, o := range names {
				folds = folds || strings.EqualFold(n, o)
			}
			names = append(names, n)
		}
		err = checkMembers(again)
		switch {
		case folds && !errors.Is(err, errFoldedMember):
			t.Fatalf("%s: error %v, want %v", again, err, errFoldedMember)
		case !folds && err != nil && !errors.Is(err, errNotOneReading):
			t.Fatalf("%s: refused: %v", again, err)
		case errors.Is(err, errNotOneReading):
			if _, strict := mcp.ReadJSON(again); strict == nil {
				t.Fatalf("%s: refused as %v, which mcp.ReadJSON accepts", again, err)
			}
		}
	})
}

// jwtTestDecodeObject decodes data as jwt decodes claims (numbers as
// json.Number), refusing anything but exactly one object.
func jwtTestDecodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return m, nil
}

// BenchmarkCheckSegments is the structural check's cost per cache miss on a
// typical access token (for scale: BenchmarkVerifyCold).
func BenchmarkCheckSegments(b *testing.B) {
	k := jwtTestKeys()
	v := jwtBenchVerifier(b)
	raw := jwtTestSignHeader(b, k.rsa, "RS256", map[string]any{"typ": "at+jwt"}, jwtTestClaims(time.Now(), nil))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.checkSegments(raw); err != nil {
			b.Fatal(err)
		}
	}
}
