// Package requestfile reads one request written as JSON, the offline form
// of a request that `mcpauthz eval --request FILE` and the examples' tests
// use.
package requestfile

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// Read reads and converts a File. Unknown fields are
// errors, so a misspelt key is not silently ignored.
func Read(path string) (*decision.Request, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading request: %w", err)
	}
	var rf File
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&rf); err != nil {
		return nil, fmt.Errorf("request file %s: %w", path, err)
	}
	if rf.Body != nil && rf.RawBody != nil {
		return nil, fmt.Errorf("request file %s: body and raw_body are exclusive", path)
	}
	return rf.Request(), nil
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
