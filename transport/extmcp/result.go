package extmcp

import (
	"encoding/json"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/internal/dynmeta"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/agentgateway/dev/ext_mcp"
)

// ResultFrom renders a decision as a CheckRequest result.
//
// Allowed: Pass, with the upstream headers to set (the decision id, the
// policy's headers, an upstream credential) and to remove (the client's
// authorization: MCP forbids passing it on; a header that is set is not
// also removed, since agentgateway removes after it sets), and metadata
// (decision_id, method, tool, subject, revision, code) that agentgateway's
// CEL reads as extMcp.<key>. A decision's response headers and query
// parameters to remove have no place in ExtMcp and are dropped.
//
// Denied: an AuthorizationError whose mcp_error is the JSON-RPC error
// mcpauthz answers the same request with on the HTTP path (see rpcErrorOf)
// and whose reason is that error's message: the words the client would
// read, never the decision's internal reason (which names the visible
// rule for a hidden tool, say).
func ResultFrom(d *decision.Decision) *pb.McpRequestResult {
	if d.Allow {
		return &pb.McpRequestResult{
			Result:         &pb.McpRequestResult_Pass{Pass: &pb.Pass{}},
			HeaderMutation: headerMutation(d),
			Metadata:       metadata(d),
		}
	}
	e := rpcErrorOf(d)
	return &pb.McpRequestResult{Result: &pb.McpRequestResult_Error{Error: &pb.AuthorizationError{
		Code: errorCode(e.Code, d.Status), Reason: e.Message, McpError: e.raw,
	}}}
}

// headerMutation is the upstream header changes of an allowed decision;
// the headers to set are allocated together.
func headerMutation(d *decision.Decision) *pb.HeaderMutation {
	hm := &pb.HeaderMutation{Set: make([]*pb.McpHeader, len(d.UpstreamHeaders))}
	set := make([]pb.McpHeader, len(d.UpstreamHeaders))
	for i, h := range d.UpstreamHeaders {
		set[i].Key, set[i].Value = h.Name, []byte(h.Value)
		hm.Set[i] = &set[i]
	}
outer:
	for _, name := range d.RemoveHeaders {
		for _, h := range d.UpstreamHeaders {
			if strings.EqualFold(h.Name, name) {
				continue outer
			}
		}
		hm.Remove = append(hm.Remove, name)
	}
	return hm
}

// metadata is the decision's metadata (internal/dynmeta: decision id,
// method, tool, subject, revision, code), for agentgateway's CEL (and its
// logs) to join the decision log.
func metadata(d *decision.Decision) *structpb.Struct {
	return new(dynmeta.Block).Fill(d, 0)
}

// jsonRPCError is a JSON-RPC error object; raw is its encoding.
type jsonRPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
	raw     []byte
}

// rpcError encodes a JSON-RPC error object.
func rpcError(code int, message string, data []byte) []byte {
	b, _ := json.Marshal(jsonRPCError{Code: code, Message: message, Data: data})
	return b
}

// httpOnly is the data of the error standing for a denial that mcpauthz
// answers with an HTTP status alone (401 and 403 challenges, 503 before a
// policy is loaded): the status and the challenge, so that a client can
// still find the authorization server (RFC 9728 resource_metadata).
type httpOnly struct {
	Status          int    `json:"status"`
	WWWAuthenticate string `json:"www_authenticate,omitempty"`
	DecisionID      string `json:"decision_id,omitempty"`
}

// rpcErrorOf is the JSON-RPC error mcpauthz answers a denied request with
// (denials are the cold path: encoding/json is fine):
//   - a JSON-RPC error body: its error object, as it is (-32602 "Unknown
//     tool" for a hidden tool, a parse error, the policy's jsonrpc_error);
//   - a tools/call tool error result (isError, the reason as text), which
//     ExtMcp cannot answer a request with: the policy-denial error
//     (decision.CodeJSONRPCDenied) with that text;
//   - no body (401, 403, 503): the policy-denial error, or an internal
//     error for a 5xx, with the reason, and the status and challenge as
//     data.
func rpcErrorOf(d *decision.Decision) jsonRPCError {
	var body struct {
		Error  json.RawMessage `json:"error"`
		Result *struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
	}
	if len(d.Body) > 0 && json.Unmarshal(d.Body, &body) == nil {
		var e jsonRPCError
		if len(body.Error) > 0 && json.Unmarshal(body.Error, &e) == nil {
			e.raw = body.Error
			return e
		}
		if body.Result != nil && len(body.Result.Content) > 0 {
			e := jsonRPCError{Code: decision.CodeJSONRPCDenied, Message: body.Result.Content[0].Text}
			e.raw = rpcError(e.Code, e.Message, nil)
			return e
		}
	}
	e := jsonRPCError{Code: decision.CodeJSONRPCDenied, Message: d.Reason}
	if d.Status >= 500 {
		e.Code = mcp.CodeInternalError
	}
	data := httpOnly{Status: d.Status, DecisionID: d.ID}
	for _, h := range d.ResponseHeaders {
		if strings.EqualFold(h.Name, "www-authenticate") {
			data.WWWAuthenticate = h.Value
		}
	}
	e.Data, _ = json.Marshal(data)
	e.raw = rpcError(e.Code, e.Message, e.Data)
	return e
}

// errorCode is the AuthorizationError code agentgateway turns into the
// error's JSON-RPC code when it does not use mcp_error: INVALID (-32600)
// for a request mcpauthz refuses as malformed or naming what does not
// exist, UNKNOWN (-32603) for mcpauthz's own failures, PERMISSION_DENIED
// (-32001) otherwise.
func errorCode(rpc, status int) pb.AuthorizationError_Code {
	switch rpc {
	case mcp.CodeParseError, mcp.CodeInvalidRequest, mcp.CodeInvalidParams,
		decision.CodeHeaderMismatch, decision.CodeUnsupportedVersion:
		return pb.AuthorizationError_INVALID
	}
	if status >= 500 {
		return pb.AuthorizationError_UNKNOWN
	}
	return pb.AuthorizationError_PERMISSION_DENIED
}
