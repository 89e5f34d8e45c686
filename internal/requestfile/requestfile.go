// Package requestfile reads one request written as JSON, the offline form
// of a request that `mcpauthz eval --request FILE` and the examples' tests
// use.
package requestfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// File is one request written as JSON, for trying a policy offline
// (`mcpauthz eval --request FILE`) and for sample-based tests:
//
//	{"http": {"method", "path", "host", "headers"}, "body": <JSON-RPC message>
//	 or "raw_body": "<text>", "claims": {...already verified token...},
//	 "context": {...context extensions...}, "source": {"address", "principal"}}
type File struct {
	HTTP struct {
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Host    string            `json:"host"`
		Headers map[string]string `json:"headers"`
	} `json:"http"`
	// Body is the JSON-RPC message (or batch) as JSON; RawBody is the body
	// as text, for malformed bodies. They are exclusive.
	Body    json.RawMessage   `json:"body"`
	RawBody *string           `json:"raw_body"`
	Claims  map[string]any    `json:"claims"`
	Context map[string]string `json:"context"`
	Source  struct {
		Address   string `json:"address"`
		Principal string `json:"principal"`
	} `json:"source"`
}

// Read reads and converts a File; path "-" reads standard input.
func Read(path string) (*decision.Request, error) {
	if path == "-" {
		return ReadFrom(os.Stdin, "standard input")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading request: %w", err)
	}
	defer f.Close()
	return ReadFrom(f, path)
}

// ReadFrom reads and converts a File from r; name says where it came from
// in errors. Unknown fields are errors, so a misspelt key is not silently
// ignored.
//
// A plain JSON-RPC message (an object with a "jsonrpc" member, or a batch)
// is read as the body of POST /mcp, with the content-type and accept
// headers an MCP client sends and no credential (eval's --bearer adds
// one): what a policy author copies from a client's log.
func ReadFrom(r io.Reader, name string) (*decision.Request, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading request from %s: %w", name, err)
	}
	if isMessage(b) {
		var rf File
		rf.Body = bytes.TrimSpace(b)
		rf.HTTP.Headers = map[string]string{"content-type": "application/json", "accept": "application/json, text/event-stream"}
		return rf.Request(), nil
	}
	var rf File
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&rf); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			return nil, fmt.Errorf("request file %s: %w: a request file is {\"http\": {...}, \"body\": <JSON-RPC message>, \"claims\": {...}, \"context\": {...}} (or raw_body, source), or a plain JSON-RPC message with \"jsonrpc\": \"2.0\"", name, err)
		}
		return nil, fmt.Errorf("request file %s: %w", name, err)
	}
	if rf.Body != nil && rf.RawBody != nil {
		return nil, fmt.Errorf("request file %s: body and raw_body are exclusive", name)
	}
	return rf.Request(), nil
}

// isMessage reports whether b is a JSON-RPC message or batch rather than
// the file form: a JSON array, or an object with a top-level "jsonrpc"
// member. The file form has no such member, so no text is both.
func isMessage(b []byte) bool {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		return true
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return false
	}
	_, ok := top["jsonrpc"]
	return ok
}

// Request converts the file form into an engine request. Header names are
// lowercased as Envoy sends them; method and path default to POST /mcp.
func (rf *File) Request() *decision.Request {
	r := &decision.Request{
		Method:          rf.HTTP.Method,
		Path:            rf.HTTP.Path,
		Host:            rf.HTTP.Host,
		Headers:         make(map[string]string, len(rf.HTTP.Headers)),
		Context:         rf.Context,
		SourceAddress:   rf.Source.Address,
		SourcePrincipal: rf.Source.Principal,
	}
	if rf.Claims != nil {
		r.Credential = token.Claimed(rf.Claims)
	}
	for k, v := range rf.HTTP.Headers {
		r.Headers[strings.ToLower(k)] = v
	}
	if r.Method == "" {
		r.Method = "POST"
	}
	if r.Path == "" {
		r.Path = "/mcp"
	}
	switch {
	case rf.RawBody != nil:
		r.Body = []byte(*rf.RawBody)
	case len(rf.Body) > 0:
		r.Body = rf.Body
	}
	return r
}
