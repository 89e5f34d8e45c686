package requestfile

import (
	"bytes"
	"strings"
	"testing"
)

// TestReadFrom: the two forms eval reads, and what an unreadable one says.
func TestReadFrom(t *testing.T) {
	tests := map[string]struct {
		text     string
		wantBody string // "" with wantErr
		wantErr  string
	}{
		"plain_message": {text: ` {"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n", wantBody: `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
		"plain_batch":   {text: `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, wantBody: `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`},
		"file_form":     {text: `{"body": {"jsonrpc":"2.0","id":1,"method":"ping"}}`, wantBody: `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
		"unknown_field": {text: `{"bdy": {}}`, wantErr: `a request file is {"http": {...}, "body": <JSON-RPC message>`},
		"not_json":      {text: `jsonrpc`, wantErr: "request file t.json: invalid character"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := ReadFrom(strings.NewReader(tc.text), "t.json")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want it to hold %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Body) != tc.wantBody || r.Method != "POST" || r.Path != "/mcp" {
				t.Errorf("request %s %s body %s, want POST /mcp body %s", r.Method, r.Path, r.Body, tc.wantBody)
			}
		})
	}
}

// FuzzReadFrom: any text is read as one form or refused, never both and
// never a panic; a text read as a plain message is its body as it is.
func FuzzReadFrom(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`[{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
		`{"http":{"headers":{"a":"b"}},"body":{"jsonrpc":"2.0"},"claims":{"sub":"x"}}`,
		`{"raw_body":"x","body":{}}`,
		`{"jsonrpc":1,"jsonrpc":2}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		r, err := ReadFrom(strings.NewReader(text), "fuzz")
		if err != nil {
			return
		}
		if isMessage([]byte(text)) && !bytes.Equal(r.Body, bytes.TrimSpace([]byte(text))) {
			t.Fatalf("a plain message's body %q is not the text %q", r.Body, text)
		}
	})
}
