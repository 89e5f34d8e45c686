package mcp

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestParseMeta: params._meta is read while parsing, with SkipParams or
// without, into the revision, client and capabilities of MCP 2026-07-28.
func TestParseMeta(t *testing.T) {
	const body = `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{` +
		`"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
		`"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"},` +
		`"io.modelcontextprotocol/clientCapabilities":{"sampling":{}},"x":[1]}}}`
	for name, skip := range map[string]bool{"params_built": false, "skip_params": true} {
		t.Run(name, func(t *testing.T) {
			b, err := ParseWith([]byte(body), Options{SkipParams: skip})
			if err != nil {
				t.Fatal(err)
			}
			m := b.Messages[0]
			if m.ProtocolVersion != "2026-07-28" || m.Meta == nil || m.Meta.Len() != 4 {
				t.Errorf("version %q, meta %v", m.ProtocolVersion, m.Meta)
			}
			if m.ClientInfo == nil || m.ClientInfo.Get(ast.StringTerm("name")).Value.Compare(ast.String("c")) != 0 {
				t.Errorf("client %v", m.ClientInfo)
			}
			if m.ClientCapabilities == nil || m.ClientCapabilities.Get(ast.StringTerm("sampling")) == nil {
				t.Errorf("capabilities %v", m.ClientCapabilities)
			}
			if skip != (m.Params == nil) {
				t.Errorf("params %v with SkipParams %v", m.Params, skip)
			}
		})
	}
}

func TestParseMetaInvalid(t *testing.T) {
	tests := map[string]struct {
		body string
		code int
		msg  string
	}{
		"meta_not_object": {`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":[]}}`, CodeInvalidParams,
			"invalid params: params._meta must be an object"},
		"version_not_string": {`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":20260728}}}`, CodeInvalidParams,
			`invalid params: params._meta["io.modelcontextprotocol/protocolVersion"] must be a non-empty string`},
		"client_not_object": {`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/clientInfo":"c"}}}`, CodeInvalidParams,
			`invalid params: params._meta["io.modelcontextprotocol/clientInfo"] must be an object`},
		"version_twice": {`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/protocolVersion":"2025-11-25"}}}`, CodeInvalidRequest,
			`invalid request: an object has two members named "io.modelcontextprotocol/protocolversion" (compared under Unicode case folding)`},
		"version_case_folded_twice": {`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/ProtocolVersion":"2025-11-25"}}}`, CodeInvalidRequest,
			`invalid request: an object has two members named "io.modelcontextprotocol/protocolversion" (compared under Unicode case folding)`},
		"meta_case_variant": {`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_Meta":{}}}`, CodeInvalidRequest,
			`invalid request: member name "_Meta" is a case variant of "_meta"`},
	}
	for name, tc := range tests {
		for _, skip := range []bool{false, true} {
			_, err := ParseWith([]byte(tc.body), Options{SkipParams: skip})
			e, ok := err.(*Error)
			if !ok || e.Code != tc.code || e.Message != tc.msg {
				t.Errorf("%s (skip %v): %v, want %d %s", name, skip, err, tc.code, tc.msg)
			}
		}
	}
}
