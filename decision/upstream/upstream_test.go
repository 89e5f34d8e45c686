package upstream

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// testAS is an httptest authorization server whose token endpoint checks
// an RFC 8693 exchange request and answers with a token naming the subject
// token it was given.
type testAS struct {
	srv    *httptest.Server
	calls  atomic.Int32
	mu     sync.Mutex
	fail   bool          // answer 400 invalid_grant
	delay  time.Duration // before answering
	answer map[string]any
	errs   []string // what the endpoint found wrong
}

func newTestAS(t *testing.T) *testAS {
	as := &testAS{}
	as.srv = httptest.NewServer(http.HandlerFunc(as.serve))
	t.Cleanup(as.srv.Close)
	return as
}

func (as *testAS) serve(w http.ResponseWriter, r *http.Request) {
	as.calls.Add(1)
	as.mu.Lock()
	fail, delay, answer := as.fail, as.delay, as.answer
	as.mu.Unlock()
	time.Sleep(delay)
	bad := func(format string) { as.mu.Lock(); as.errs = append(as.errs, format); as.mu.Unlock() }
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		bad("not a form POST")
	}
	// RFC 6749 §2.3.1: the id and secret are form-encoded inside Basic.
	id, secret, ok := r.BasicAuth()
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	if !ok || id != "mcpauthz" || secret != "s3cret:/+" {
		bad("client_secret_basic credentials wrong: " + id + " " + secret)
	}
	if err := r.ParseForm(); err != nil {
		bad("form: " + err.Error())
	}
	want := url.Values{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token_type":   {"urn:ietf:params:oauth:token-type:access_token"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"audience":             {"https://files.internal"},
		"scope":                {"files:read"},
	}
	for k, v := range want {
		if got := r.PostForm[k]; len(got) != 1 || got[0] != v[0] {
			bad(k + " = " + strings.Join(got, ","))
		}
	}
	subject := r.PostForm.Get("subject_token")
	if subject == "" {
		bad("no subject_token")
	}
	w.Header().Set("Content-Type", "application/json")
	if fail {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": "invalid_grant", "error_description": "subject token revoked"})
		return
	}
	if answer == nil {
		answer = map[string]any{
			"access_token":      "exchanged-" + subject,
			"issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
			"token_type":        "Bearer",
			"expires_in":        300,
		}
	}
	_ = json.NewEncoder(w).Encode(answer)
}

func (as *testAS) problems() []string {
	as.mu.Lock()
	defer as.mu.Unlock()
	return append([]string(nil), as.errs...)
}

// testClock is a settable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func testCredentials(t *testing.T, as *testAS, clock *testClock) *Credentials {
	t.Helper()
	c, err := New(Options{
		Now: clock.Now,
		Entries: []Entry{
			{Name: "files", Context: map[string]string{"mcp_server": "files"}, Exchange: &Exchange{
				TokenURL: as.srv.URL + "/token", ClientID: "mcpauthz", ClientSecret: "s3cret:/+",
				Audience: "https://files.internal", Scope: "files:read",
			}},
			{Name: "wiki", Context: map[string]string{"mcp_server": "wiki"}, Static: &Static{Header: "x-api-key", Value: "wiki-key"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func caller(subject, raw string, ctx map[string]string, choice string) *decision.UpstreamRequest {
	return &decision.UpstreamRequest{
		Context: ctx, Choice: choice, Raw: raw,
		Token: (&token.Result{Present: true, Valid: true, Issuer: "https://idp.example.com", Subject: subject}).Finish(),
	}
}

func TestUpstream(t *testing.T) {
	files := map[string]string{"mcp_server": "files"}
	tests := map[string]struct {
		req       *decision.UpstreamRequest
		fail      bool
		want      []decision.Header
		wantErr   string
		wantCalls int32
	}{
		"exchange_by_context": {
			req:  caller("alice", "caller-token", files, ""),
			want: []decision.Header{{Name: "authorization", Value: "Bearer exchanged-caller-token"}}, wantCalls: 1,
		},
		"exchange_chosen_by_policy": {
			req:  caller("alice", "caller-token", nil, "files"),
			want: []decision.Header{{Name: "authorization", Value: "Bearer exchanged-caller-token"}}, wantCalls: 1,
		},
		"static_by_context": {
			req:  caller("alice", "caller-token", map[string]string{"mcp_server": "wiki"}, ""),
			want: []decision.Header{{Name: "x-api-key", Value: "wiki-key"}},
		},
		"policy_vetoes":    {req: caller("alice", "caller-token", files, "none")},
		"no_entry_matches": {req: caller("alice", "caller-token", map[string]string{"mcp_server": "other"}, "")},
		"unknown_choice": {
			req: caller("alice", "caller-token", files, "nope"), wantErr: `"nope", which is not configured`,
		},
		"no_token_to_exchange": {req: caller("alice", "", files, ""), wantErr: "no bearer token"},
		"exchange_refused": {
			req: caller("alice", "caller-token", files, ""), fail: true,
			wantErr: "400 invalid_grant: subject token revoked", wantCalls: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			as := newTestAS(t)
			as.fail = tc.fail
			c := testCredentials(t, as, &testClock{now: time.Now()})
			got, err := c.Upstream(context.Background(), tc.req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Errorf("headers %v, want %v", got, tc.want)
			}
			if n := as.calls.Load(); n != tc.wantCalls {
				t.Errorf("%d exchanges, want %d", n, tc.wantCalls)
			}
			if p := as.problems(); len(p) > 0 {
				t.Errorf("the token endpoint found: %v", p)
			}
		})
	}
}

// TestExchangeCache: one exchange per caller until shortly before the
// exchanged token expires; another caller, or the same subject at another
// issuer, gets its own.
func TestExchangeCache(t *testing.T) {
	as := newTestAS(t)
	clock := &testClock{now: time.Now()}
	c := testCredentials(t, as, clock)
	files := map[string]string{"mcp_server": "files"}
	ctx := context.Background()
	get := func(r *decision.UpstreamRequest) string {
		t.Helper()
		hs, err := c.Upstream(ctx, r)
		if err != nil || len(hs) != 1 {
			t.Fatalf("headers %v, error %v", hs, err)
		}
		return hs[0].Value
	}
	first := get(caller("alice", "token-1", files, ""))
	if again := get(caller("alice", "token-2", files, "")); again != first || as.calls.Load() != 1 {
		t.Errorf("the same subject got %q after %q with %d exchanges, want the cached token and 1", again, first, as.calls.Load())
	}
	get(caller("bob", "token-3", files, ""))
	other := caller("alice", "token-4", files, "")
	other.Token = (&token.Result{Present: true, Valid: true, Issuer: "https://other-idp.example.com", Subject: "alice"}).Finish()
	get(other)
	if n := as.calls.Load(); n != 3 {
		t.Errorf("%d exchanges after bob and alice of another issuer, want 3", n)
	}
	// expires_in 300: used until 30 seconds before.
	clock.Advance(269 * time.Second)
	get(caller("alice", "token-1", files, ""))
	if n := as.calls.Load(); n != 3 {
		t.Errorf("exchanged again %d times before the renewal point", n-3)
	}
	clock.Advance(2 * time.Second)
	get(caller("alice", "token-1", files, ""))
	if n := as.calls.Load(); n != 4 {
		t.Errorf("%d exchanges after the renewal point, want 4", n)
	}
}

// TestExchangeSingleFlight: concurrent requests of one caller share one
// exchange.
func TestExchangeSingleFlight(t *testing.T) {
	as := newTestAS(t)
	as.delay = 100 * time.Millisecond
	c := testCredentials(t, as, &testClock{now: time.Now()})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Upstream(context.Background(), caller("alice", "caller-token", map[string]string{"mcp_server": "files"}, "")); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := as.calls.Load(); n != 1 {
		t.Errorf("%d exchanges for 20 concurrent requests of one caller, want 1", n)
	}
}

// TestExchangeAnswers: an answer that cannot go upstream as a Bearer
// token is an error, never a header.
func TestExchangeAnswers(t *testing.T) {
	tests := map[string]struct {
		answer  map[string]any
		wantErr string
	}{
		"no_access_token":   {answer: map[string]any{"token_type": "Bearer"}, wantErr: "no usable access_token"},
		"header_injection":  {answer: map[string]any{"access_token": "a\r\nx-evil: 1", "token_type": "Bearer"}, wantErr: "no usable access_token"},
		"not_bearer":        {answer: map[string]any{"access_token": "abc", "token_type": "N_A"}, wantErr: "not Bearer"},
		"other_issued_type": {answer: map[string]any{"access_token": "abc", "token_type": "Bearer", "issued_token_type": "urn:ietf:params:oauth:token-type:id_token"}, wantErr: "issued_token_type"},
		"negative_expiry":   {answer: map[string]any{"access_token": "abc", "token_type": "Bearer", "expires_in": -5}, wantErr: "expires_in"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			as := newTestAS(t)
			as.answer = tc.answer
			c := testCredentials(t, as, &testClock{now: time.Now()})
			hs, err := c.Upstream(context.Background(), caller("alice", "caller-token", map[string]string{"mcp_server": "files"}, ""))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("headers %v, error %v; want an error containing %q", hs, err, tc.wantErr)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	x := &Exchange{TokenURL: "https://as.example.com/token", ClientID: "c"}
	tests := map[string]struct {
		entry Entry
		want  string
	}{
		"no_name":           {entry: Entry{Exchange: x}, want: "name is required"},
		"named_none":        {entry: Entry{Name: "none", Exchange: x}, want: "no credential"},
		"neither":           {entry: Entry{Name: "a"}, want: "exactly one"},
		"both":              {entry: Entry{Name: "a", Exchange: x, Static: &Static{Header: "x", Value: "v"}}, want: "exactly one"},
		"bad_header":        {entry: Entry{Name: "a", Static: &Static{Header: "X-Key", Value: "v"}}, want: "header name"},
		"value_with_crlf":   {entry: Entry{Name: "a", Static: &Static{Header: "x-key", Value: "v\r\n"}}, want: "control character"},
		"token_url_not_url": {entry: Entry{Name: "a", Exchange: &Exchange{TokenURL: "as.example.com", ClientID: "c"}}, want: "token_url"},
		"no_client_id":      {entry: Entry{Name: "a", Exchange: &Exchange{TokenURL: "https://as.example.com/token"}}, want: "client_id"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(Options{Entries: []Entry{tc.entry}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
