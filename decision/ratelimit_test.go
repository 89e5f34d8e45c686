package decision_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
)

// TestRateLimit: an allowed decision carries the policy's rate_limit,
// sorted by name; a malformed one fails the evaluation (denied with
// eval_error, never allowed without its limit); a denial carries none.
func TestRateLimit(t *testing.T) {
	const (
		callQuery = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query","arguments":{}}}`
		callDrop  = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"drop","arguments":{}}}`
	)
	x256 := strings.Repeat("x", 256)
	var most []decision.RateLimitEntry
	for _, k := range []string{"k1", "k10", "k11", "k12", "k13", "k14", "k15", "k16", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"} {
		most = append(most, decision.RateLimitEntry{Name: k, Value: "v"})
	}
	tests := map[string]struct {
		shape     string
		body      string
		wantAllow bool
		want      []decision.RateLimitEntry
		wantErr   string // in the decision's Errors when the evaluation failed
	}{
		"none":          {body: callQuery, wantAllow: true},
		"per_tool":      {shape: "per_tool", body: callQuery, wantAllow: true, want: []decision.RateLimitEntry{{"subject", "alice"}, {"tool", "query"}}},
		"per_method":    {shape: "per_method", body: callQuery, wantAllow: true, want: []decision.RateLimitEntry{{"method", "tools/call"}, {"subject", "alice"}}},
		"empty_object":  {shape: "empty", body: callQuery, wantAllow: true},
		"longest_value": {shape: "longest_value", body: callQuery, wantAllow: true, want: []decision.RateLimitEntry{{"subject", x256}}},
		"most_entries":  {shape: "most", body: callQuery, wantAllow: true, want: most},
		"batch_first_message_wins": {shape: "per_tool", body: "[" + callQuery + "," + callDrop + "]", wantAllow: true,
			want: []decision.RateLimitEntry{{"subject", "alice"}, {"tool", "query"}}},
		"denial_carries_none":  {shape: "deny", body: callQuery},
		"not_a_string":         {shape: "number", body: callQuery, wantErr: "decision.rate_limit: subject is number, want a string"},
		"not_an_object":        {shape: "array", body: callQuery, wantErr: "decision.rate_limit: not an object"},
		"dotted_name":          {shape: "dotted_name", body: callQuery, wantErr: `decision.rate_limit: name "sub.ject"`},
		"empty_value":          {shape: "empty_value", body: callQuery, wantErr: "decision.rate_limit: subject: empty value"},
		"control_character":    {shape: "control_character", body: callQuery, wantErr: "decision.rate_limit: subject: value has a control character"},
		"value_too_long":       {shape: "long_value", body: callQuery, wantErr: "decision.rate_limit: subject: value of 257 bytes"},
		"too_many_entries":     {shape: "too_many", body: callQuery, wantErr: "decision.rate_limit: 17 entries"},
		"batch_one_bad_denies": {shape: "number", body: "[" + callQuery + "," + callDrop + "]", wantErr: "decision.rate_limit: subject is number"},
	}
	e := decisiontest.NewEngine(t, "testdata/ratelimit", nil)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := post(tc.body, claims("alice", ""))
			if tc.shape != "" {
				r.Context = map[string]string{"shape": tc.shape}
			}
			d := e.Decide(context.Background(), r)
			if d.Allow != tc.wantAllow {
				t.Fatalf("allow=%v (%s: %s %v), want %v", d.Allow, d.Code, d.Reason, d.Errors, tc.wantAllow)
			}
			if !slices.Equal(d.RateLimit, tc.want) {
				t.Errorf("rate_limit %v, want %v", d.RateLimit, tc.want)
			}
			if tc.wantErr == "" {
				if len(d.Errors) > 0 {
					t.Errorf("errors %v, want none", d.Errors)
				}
				return
			}
			if d.Code != decision.CodeEvalError || len(d.Errors) == 0 || !strings.Contains(d.Errors[0], tc.wantErr) {
				t.Errorf("code %s, errors %v; want eval_error with %q", d.Code, d.Errors, tc.wantErr)
			}
		})
	}
}
