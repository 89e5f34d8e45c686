package decision_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
)

// listTokens: alice is verified; anything else sent as a bearer token is
// rejected (a bad signature).
var listTokens = decisiontest.Tokens{"alice": {"sub": "alice"}}

// listAnswer is the server's answer with id (raw JSON) to a tools/list:
// debug is hidden by the hidden-tools policy, search shown.
func listAnswer(id string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"result":{"tools":[{"name":"debug"},{"name":"search"}]}}`
}

// TestFilterResponseMatching: every list answer in what the server sends
// back is filtered for the caller, whatever its shape: one message or a
// batch, matched to its request by the id the server echoes (a number by
// its value as JavaScript reads it, a string exactly, never a string for a
// number), and one that matches no list request of the caller is emptied;
// on a GET's stream (whatever body the GET carried) every list answer is
// filtered by its shape. Issue 27 rows 1-3, issue 28 row 10.
func TestFilterResponseMatching(t *testing.T) {
	f := decision.NewItemFilter(decisiontest.NewEngine(t, "testdata/hidden", func(o *decision.Options) { o.Tokens = listTokens }))
	const (
		shown   = `"tools":[{"name":"search"}]`
		emptied = `"tools":[]`
	)
	tests := map[string]struct {
		method, body, answer string
		want                 []string // each in the answer; "debug" never is
		answered             int      // list requests the answer answered
		malformed            bool     // the answer is refused by the strict parser
	}{
		"one":                 {body: `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`, answer: listAnswer("7"), want: []string{shown}, answered: 1},
		"id_7_0_answered_7":   {body: `{"jsonrpc":"2.0","id":7.0,"method":"tools/list"}`, answer: listAnswer("7"), want: []string{shown}, answered: 1},
		"id_7e0_answered_7":   {body: `{"jsonrpc":"2.0","id":7e0,"method":"tools/list"}`, answer: listAnswer("7"), want: []string{shown}, answered: 1},
		"id_70e-1_answered_7": {body: `{"jsonrpc":"2.0","id":70e-1,"method":"tools/list"}`, answer: listAnswer("7.0"), want: []string{shown}, answered: 1},
		"id_neg_zero":         {body: `{"jsonrpc":"2.0","id":-0,"method":"tools/list"}`, answer: listAnswer("0"), want: []string{shown}, answered: 1},
		"string_id_escaped":   {body: `{"jsonrpc":"2.0","id":"\u0061","method":"tools/list"}`, answer: listAnswer(`"a"`), want: []string{shown}, answered: 1},
		"string_for_number":   {body: `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`, answer: listAnswer(`"7"`), want: []string{emptied}},
		"number_for_string":   {body: `{"jsonrpc":"2.0","id":"7","method":"tools/list"}`, answer: listAnswer("7"), want: []string{emptied}},
		"other_id":            {body: `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`, answer: listAnswer("8"), want: []string{emptied}},
		"null_id":             {body: `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`, answer: listAnswer("null"), want: []string{`"error":{"code":-32603`}, answered: 1, malformed: true},
		"batch_request": {body: `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":21,"method":"tools/list"}]`,
			answer: `[{"jsonrpc":"2.0","id":1,"result":{}},` + listAnswer("21") + `]`, want: []string{`[{"jsonrpc":"2.0","id":1,"result":{}},{"id":21,`, shown}, answered: 1},
		"batch_answer_one_request": {body: `{"jsonrpc":"2.0","id":21,"method":"tools/list"}`,
			answer: `[` + listAnswer("21") + `]`, want: []string{shown}, answered: 1},
		"batch_two_lists": {body: `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`,
			answer: `[` + listAnswer("2") + `,` + listAnswer("1") + `]`, want: []string{`{"id":2,"jsonrpc":"2.0","result":{` + shown + `}},{"id":1,`}, answered: 2},
		"get_replay":           {method: "GET", answer: listAnswer(`"x"`), want: []string{shown}},
		"get_with_list_body":   {method: "GET", body: `{"jsonrpc":"2.0","id":999,"method":"tools/list"}`, answer: listAnswer("7"), want: []string{shown}},
		"get_with_batch_body":  {method: "GET", body: `[{"jsonrpc":"2.0","id":7,"method":"tools/list"}]`, answer: `[` + listAnswer("7") + `]`, want: []string{shown}},
		"error_answer_as_sent": {body: `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`, answer: `{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"m"}}`, want: []string{`"message":"m"`}, answered: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "POST"
			}
			r := &decision.Request{Method: method, Path: "/mcp", Headers: map[string]string{"authorization": "Bearer alice"}, Body: []byte(tc.body)}
			lr := f.ListRequestOf(r)
			if lr == nil {
				t.Fatal("the answer is not filtered at all")
			}
			got, res := f.FilterResponse(context.Background(), r, lr, []byte(tc.answer))
			if strings.Contains(string(got), "debug") || (res.Malformed != nil) != tc.malformed {
				t.Fatalf("got %s (malformed %v): debug must never be shown", got, res.Malformed)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(got), w) {
					t.Errorf("got %s, want %s in it", got, w)
				}
			}
			if len(res.Answered) != tc.answered {
				t.Errorf("answered %v, want %d list requests", res.Answered, tc.answered)
			}
		})
	}
}

// TestFilterResponseCallers: a caller without a credential is judged as
// such (the visible rule sees input.token.present false), as its calls
// are; a credential that was sent and rejected sees nothing. Issue 20
// item 4.
func TestFilterResponseCallers(t *testing.T) {
	f := decision.NewItemFilter(decisiontest.NewEngine(t, "testdata/hidden", func(o *decision.Options) { o.Tokens = listTokens }))
	for name, tc := range map[string]struct {
		auth    string
		want    string
		emptied bool
	}{
		"verified":      {auth: "Bearer alice", want: `"tools":[{"name":"search"}]`},
		"no_credential": {want: `"tools":[{"name":"search"}]`},
		"rejected":      {auth: "Bearer forged", want: `"tools":[]`, emptied: true},
	} {
		t.Run(name, func(t *testing.T) {
			r := &decision.Request{Method: "POST", Path: "/mcp", Headers: map[string]string{}, Body: []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`)}
			if tc.auth != "" {
				r.Headers["authorization"] = tc.auth
			}
			got, res := f.FilterResponse(context.Background(), r, f.ListRequestOf(r), []byte(listAnswer("7")))
			if !strings.Contains(string(got), tc.want) || (res.Emptied != nil) != tc.emptied {
				t.Fatalf("got %s (emptied: %v), want %s", got, res.Emptied, tc.want)
			}
		})
	}
}

// TestFilterResponseCacheScope: whenever an item was removed from an
// answer that carries cacheScope, or the answer was emptied, it says
// "private", whatever revision the request named. Issue 20 item 5.
func TestFilterResponseCacheScope(t *testing.T) {
	f := decision.NewItemFilter(decisiontest.NewEngine(t, "testdata/hidden", func(o *decision.Options) { o.Tokens = listTokens }))
	for name, tc := range map[string]struct {
		auth, version, answer string
		private               bool
	}{
		"filtered_2025": {auth: "Bearer alice", version: "2025-06-18", private: true,
			answer: `{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"debug"},{"name":"search"}],"cacheScope":"public","ttlMs":300000}}`},
		"emptied_no_items": {auth: "Bearer forged", version: "2025-06-18", private: true,
			answer: `{"jsonrpc":"2.0","id":7,"result":{"tools":[],"cacheScope":"public","ttlMs":300000}}`},
		"emptied": {auth: "Bearer forged", version: "2026-07-28", private: true,
			answer: `{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"search"}],"cacheScope":"public","ttlMs":300000}}`},
		"nothing_removed": {auth: "Bearer alice", version: "2026-07-28",
			answer: `{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"search"}],"cacheScope":"public","ttlMs":300000}}`},
	} {
		t.Run(name, func(t *testing.T) {
			r := &decision.Request{Method: "POST", Path: "/mcp", Body: []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`),
				Headers: map[string]string{"authorization": tc.auth, "mcp-protocol-version": tc.version}}
			got, _ := f.FilterResponse(context.Background(), r, f.ListRequestOf(r), []byte(tc.answer))
			if p := strings.Contains(string(got), `"cacheScope":"private"`); p != tc.private || strings.Contains(string(got), "debug") {
				t.Fatalf("got %s, want cacheScope private: %v", got, tc.private)
			}
		})
	}
}
