package decision_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// fakeUpstream answers with fixed headers or an error, and records what
// it was asked.
type fakeUpstream struct {
	headers []decision.Header
	err     error
	mu      sync.Mutex
	asked   []decision.UpstreamRequest
}

func (f *fakeUpstream) Upstream(_ context.Context, r *decision.UpstreamRequest) ([]decision.Header, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, *r)
	return f.headers, f.err
}

// TestUpstreamCredential: an allowed request carries the credential the
// upstream step gives it, set and no longer removed; a failure denies with
// 503; a denied request is never given one.
func TestUpstreamCredential(t *testing.T) {
	exchanged := []decision.Header{{Name: "authorization", Value: "Bearer exchanged"}}
	tests := map[string]struct {
		fake        *fakeUpstream
		claims      map[string]any
		context     map[string]string
		wantAllow   bool
		wantStatus  int
		wantCode    string
		wantHeaders []decision.Header
		wantRemoved []string
		wantChoice  string
		wantAsked   int
	}{
		"exchanged_token_set": {
			fake: &fakeUpstream{headers: exchanged}, claims: claims("alice", ""),
			wantAllow: true, wantCode: decision.CodeAllowed, wantHeaders: exchanged, wantRemoved: []string{}, wantAsked: 1,
		},
		"policy_choice_passed": {
			fake: &fakeUpstream{headers: exchanged}, claims: claims("alice", ""), context: map[string]string{"choice": "files"},
			wantAllow: true, wantCode: decision.CodeAllowed, wantHeaders: exchanged, wantRemoved: []string{}, wantChoice: "files", wantAsked: 1,
		},
		"no_credential_keeps_client_token_out": {
			fake: &fakeUpstream{}, claims: claims("alice", ""),
			wantAllow: true, wantCode: decision.CodeAllowed, wantRemoved: []string{"authorization"}, wantAsked: 1,
		},
		"static_header_beside_removal": {
			fake: &fakeUpstream{headers: []decision.Header{{Name: "x-api-key", Value: "k"}}}, claims: claims("alice", ""),
			wantAllow: true, wantCode: decision.CodeAllowed, wantHeaders: []decision.Header{{Name: "x-api-key", Value: "k"}},
			wantRemoved: []string{"authorization"}, wantAsked: 1,
		},
		"exchange_failure_503": {
			fake: &fakeUpstream{err: errors.New("token endpoint down")}, claims: claims("alice", ""),
			wantStatus: 503, wantCode: decision.CodeUpstreamUnavailable, wantAsked: 1,
		},
		"denied_request_not_exchanged": {
			fake: &fakeUpstream{headers: exchanged}, wantStatus: 401, wantCode: decision.CodeUnauthenticated,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := decisiontest.NewEngine(t, "testdata/upstream", func(o *decision.Options) { o.Upstream = tc.fake })
			r := &decision.Request{Method: "GET", Path: "/mcp", Context: tc.context,
				Headers: map[string]string{"accept": "text/event-stream", "authorization": "Bearer caller-token"}}
			if tc.claims != nil {
				r.Credential = token.Claimed(tc.claims)
			} else {
				r.Credential = token.Credential{Kind: token.NoCredential}
			}
			d := e.Decide(context.Background(), r)
			if d.Allow != tc.wantAllow || d.Code != tc.wantCode || (!d.Allow && d.Status != tc.wantStatus) {
				t.Fatalf("allow=%v code=%s status=%d (%s); want allow=%v code=%s status=%d",
					d.Allow, d.Code, d.Status, d.Reason, tc.wantAllow, tc.wantCode, tc.wantStatus)
			}
			upstream := d.UpstreamHeaders
			if d.Allow {
				if n := len(upstream); n == 0 || upstream[n-1] != (decision.Header{Name: decision.DecisionIDHeader, Value: d.ID}) {
					t.Fatalf("upstream headers %v do not end with the decision id %s", upstream, d.ID)
				}
				upstream = upstream[:len(upstream)-1]
			}
			if len(upstream) == 0 {
				upstream = nil
			}
			if !slices.Equal(upstream, tc.wantHeaders) {
				t.Errorf("upstream headers %v, want %v", d.UpstreamHeaders, tc.wantHeaders)
			}
			if d.Allow && !slices.Equal(d.RemoveHeaders, tc.wantRemoved) {
				t.Errorf("removed headers %v, want %v", d.RemoveHeaders, tc.wantRemoved)
			}
			if !d.Allow && (len(d.UpstreamHeaders) > 0 || len(d.RemoveHeaders) > 0) {
				t.Errorf("a denial carries upstream headers %v and removals %v", d.UpstreamHeaders, d.RemoveHeaders)
			}
			if len(tc.fake.asked) != tc.wantAsked {
				t.Fatalf("asked %d times, want %d", len(tc.fake.asked), tc.wantAsked)
			}
			if tc.wantAsked > 0 {
				got := tc.fake.asked[0]
				if got.Choice != tc.wantChoice || got.Raw != "caller-token" || got.Token == nil || got.Token.Subject != "alice" {
					t.Errorf("asked choice=%q raw=%q token=%+v; want choice %q, the caller's token and subject alice", got.Choice, got.Raw, got.Token, tc.wantChoice)
				}
			}
		})
	}
}

// TestUpstreamChoiceOfBody: the messages of a body choose one credential;
// a batch whose elements choose differently gets none, and a choice that
// is not a string fails the evaluation.
func TestUpstreamChoiceOfBody(t *testing.T) {
	tests := map[string]struct {
		body       string
		choice     string
		wantAllow  bool
		wantChoice string
	}{
		"one_message":     {body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, choice: "by_method", wantAllow: true, wantChoice: "ping"},
		"batch_agrees":    {body: `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]`, choice: "by_method", wantAllow: true, wantChoice: "ping"},
		"batch_disagrees": {body: `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`, choice: "by_method", wantAllow: true, wantChoice: "none"},
		"not_a_string":    {body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, choice: "number"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fake := &fakeUpstream{}
			e := decisiontest.NewEngine(t, "testdata/upstream", func(o *decision.Options) { o.Upstream = fake })
			r := post(tc.body, claims("alice", ""))
			r.Context = map[string]string{"choice": tc.choice}
			d := e.Decide(context.Background(), r)
			if d.Allow != tc.wantAllow {
				t.Fatalf("allow=%v (%s %s), want %v", d.Allow, d.Code, d.Reason, tc.wantAllow)
			}
			if !tc.wantAllow {
				if d.Code != decision.CodeEvalError || len(fake.asked) != 0 {
					t.Errorf("code %s, asked %d times; want eval_error and no credential", d.Code, len(fake.asked))
				}
				return
			}
			if len(fake.asked) != 1 || fake.asked[0].Choice != tc.wantChoice {
				t.Errorf("asked %+v, want one request choosing %q", fake.asked, tc.wantChoice)
			}
		})
	}
}
