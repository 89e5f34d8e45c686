package extmcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/internal/jsonenc"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/agentgateway/dev/ext_mcp"
)

// RequestFrom builds the engine's request from a CheckRequest, keyed by the
// metadata_context key of the caller's authorization header value.
//
// The MCP message is rebuilt as the JSON-RPC request agentgateway read: the
// method and the params bytes exactly as received (never decoded and
// encoded again), in an envelope the engine parses with the same strict
// parser as every body (decision/mcp). Params that are not exactly one JSON
// value could reach out of the envelope, and are refused before it is
// built; what is one value but ambiguous (duplicate names, bad UTF-8, too
// deep) the parser refuses. The HTTP method is POST, the only one that
// carries a message; path and host come from the :path and :authority
// pseudo-headers when agentgateway forwards them.
//
// A request that cannot be read is marked Unreadable, which the engine
// denies.
func RequestFrom(in *pb.McpRequest, metadataKey string) *decision.Request {
	r := &decision.Request{Method: "POST", Headers: headerMap(in.GetHeaders())}
	r.Path, r.Host = r.Headers[":path"], r.Headers[":authority"]
	r.Context = serverContext(in.GetServiceNames())
	if !validUTF8(in.GetMethod()) {
		r.Unreadable = "the method is not UTF-8"
		return r
	}
	if in.GetMethod() == "" {
		r.Unreadable = "the method is empty"
		return r
	}
	auth, ok, err := metadataString(in.GetMetadataContext(), metadataKey)
	switch {
	case err != nil:
		r.Unreadable = err.Error()
		return r
	case ok:
		if h, has := r.Headers["authorization"]; !has {
			r.Headers["authorization"] = auth
		} else if h != auth {
			// Two sources that disagree: neither is chosen.
			r.Unreadable = fmt.Sprintf("the authorization header and metadata_context %q disagree", metadataKey)
			return r
		}
	}
	body, err := envelope(in.GetMethod(), in.McpRequest)
	if err != nil {
		r.Unreadable = err.Error()
		return r
	}
	r.Body = body
	return r
}

// envelopeID is the id of the rebuilt request: ExtMcp carries none, and
// the answer's id is never sent back (only its error is).
const envelopeID = "0"

// envelope writes {"jsonrpc":"2.0","id":0,"method":<method>,"params":<params>}
// (no params member when params is nil), with params copied byte for byte.
func envelope(method string, params []byte) ([]byte, error) {
	if params != nil && !json.Valid(params) {
		return nil, errors.New("mcp_request is not one JSON value")
	}
	b := make([]byte, 0, len(`{"jsonrpc":"2.0","id":`+envelopeID+`,"method":,"params":}`)+len(method)+2+len(params))
	b = append(b, `{"jsonrpc":"2.0","id":`+envelopeID+`,"method":`...)
	b = jsonenc.AppendString(b, method)
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}'), nil
}

// strictResult refuses a result that two readers could read differently,
// by the parser every body goes through: in the response envelope
// {"jsonrpc":"2.0","id":0,"result":<result>}, after checking that result is
// exactly one JSON value.
func strictResult(result []byte) error {
	if !json.Valid(result) {
		return errors.New("mcp_response is not one JSON value")
	}
	b := make([]byte, 0, len(`{"jsonrpc":"2.0","id":`+envelopeID+`,"result":}`)+len(result))
	b = append(b, `{"jsonrpc":"2.0","id":`+envelopeID+`,"result":`...)
	b = append(append(b, result...), '}')
	_, err := mcp.ParseWith(b, mcp.Options{SkipParams: true})
	return err
}

// headerMap reads agentgateway's headers: keys lowercased (pseudo-headers
// kept), a repeated header's values joined with ",", as HTTP combines
// them and the other transports do.
func headerMap(hs []*pb.McpHeader) map[string]string {
	out := make(map[string]string, len(hs)+1)
	for _, h := range hs {
		k, v := strings.ToLower(h.GetKey()), string(h.GetValue())
		if prev, ok := out[k]; ok {
			v = prev + "," + v
		}
		out[k] = v
	}
	return out
}

// serverContext is input.context for service_names (see ContextServerKey);
// nil when there are none.
func serverContext(names []string) map[string]string {
	if len(names) == 0 {
		return nil
	}
	return map[string]string{ContextServerKey: strings.Join(names, ",")}
}

// metadataString reads the string at key in metadata_context. ok is false
// when the key is absent (agentgateway leaves out a key whose expression
// failed, a missing header say) or null; any other kind of value is an
// error: the configuration is not what mcpauthz expects, and guessing
// could pick the wrong caller.
func metadataString(md *structpb.Struct, key string) (v string, ok bool, err error) {
	val, has := md.GetFields()[key]
	if !has {
		return "", false, nil
	}
	switch k := val.GetKind().(type) {
	case *structpb.Value_StringValue:
		if !validUTF8(k.StringValue) {
			return "", false, fmt.Errorf("metadata_context %q is not UTF-8", key)
		}
		return k.StringValue, true, nil
	case *structpb.Value_NullValue, nil:
		return "", false, nil
	}
	return "", false, fmt.Errorf("metadata_context %q is not a string", key)
}

// callerOf builds the request a list result is filtered for: the caller's
// authorization header value and the client's MCP revision, both from
// metadata_context. why is set when metadata_context cannot be read.
func callerOf(md *structpb.Struct, key string) (r *decision.Request, version, why string) {
	auth, ok, err := metadataString(md, key)
	if err != nil {
		return nil, "", err.Error()
	}
	r = &decision.Request{Method: "POST", Headers: map[string]string{}}
	if ok {
		r.Headers["authorization"] = auth
	}
	version, _, err = metadataString(md, ProtocolVersionKey)
	if err != nil {
		return nil, "", err.Error()
	}
	return r, version, ""
}
