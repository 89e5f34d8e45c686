package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEvalRequestForms: eval reads a request as the file form or as a
// plain JSON-RPC message (decided as POST /mcp's body), from a file or,
// with --request -, from standard input; a file it cannot read says what
// it wants.
func TestEvalRequestForms(t *testing.T) {
	bundle, write := evalFixture(t)
	const list = `{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}`
	const fileForm = `{"http": {"headers": {"content-type": "application/json"}}, "claims": {"sub": "alice"}, "body": ` + list + `}`
	tests := map[string]struct {
		args       []string
		stdin      string
		wantCode   int
		wantStderr []string
	}{
		"plain_message_file":  {args: []string{"--request", write("list.json", list)}, wantStderr: []string{"method is tools/list"}},
		"plain_message_stdin": {args: []string{"--request", "-"}, stdin: list, wantStderr: []string{"method is tools/list"}},
		"plain_batch_stdin":   {args: []string{"--request", "-"}, stdin: "[" + list + "]", wantStderr: []string{"method is tools/list"}},
		"file_form_stdin":     {args: []string{"--request", "-"}, stdin: fileForm, wantStderr: []string{"method is tools/list"}},
		"unknown_field_says_the_forms": {
			args: []string{"--request", write("typo.json", `{"htp": {}, "body": `+list+`}`)}, wantCode: 1,
			wantStderr: []string{`unknown field "htp"`, `a request file is {"http": {...}, "body": <JSON-RPC message>`, `or a plain JSON-RPC message with "jsonrpc": "2.0"`},
		},
		"empty_stdin": {args: []string{"--request", "-"}, wantCode: 1, wantStderr: []string{"request file standard input: EOF"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"eval", "--bundle", bundle, "-f", "raw"}, tc.args...)
			code := runWithInput(context.Background(), args, strings.NewReader(tc.stdin), &out, &errb)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errb.String())
			}
			assertHolds(t, "stderr", errb.String(), tc.wantStderr)
		})
	}
}
