package decisionapi

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/apiauth"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/mcpauthz/v1"
)

// requestError is a request the adapter cannot turn into a decision.Request.
type requestError struct {
	code codes.Code
	msg  string
}

func (e *requestError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &requestError{code: codes.InvalidArgument, msg: fmt.Sprintf(format, args...)}
}

var errUntrustedClaims = &requestError{
	code: codes.PermissionDenied,
	msg:  "credentials.claims are accepted only from trusted callers; send credentials.bearer_token",
}

// TrustVerifiedClientCert trusts callers that presented a client
// certificate the server verified (mTLS, listen.tls.client_ca_file).
func TrustVerifiedClientCert(ctx context.Context) bool { return apiauth.VerifiedClientCert(ctx) }

// RequestFromProto builds the engine's request from a DecideRequest.
// trusted says whether the caller may pass already verified claims.
func RequestFromProto(req *pb.DecideRequest, trusted bool) (*decision.Request, error) {
	r, err := baseRequest(req.GetHttp(), req.GetCredentials(), trusted)
	if err != nil {
		return nil, err
	}
	r.Context = req.GetContextExtensions()
	if src := req.GetSource(); src != nil {
		r.SourceAddress, r.SourcePrincipal = src.GetAddress(), src.GetPrincipal()
	}
	if h := req.GetHint(); h != nil && h.GetMethod() != "" {
		r.Hint = &decision.Hint{Method: h.GetMethod(), Name: h.GetName()}
		switch id := h.GetId().GetKind().(type) {
		case *structpb.Value_StringValue:
			r.Hint.ID = id.StringValue
		case *structpb.Value_NumberValue:
			r.Hint.ID = id.NumberValue
		}
	}
	msg := req.GetMessage()
	if msg == nil {
		if r.Method == "" {
			return nil, invalid("http.method is required when no message is given (GET or DELETE)")
		}
		return r, nil
	}
	if r.Method == "" {
		r.Method = "POST"
	}
	switch k := msg.GetKind().(type) {
	case *pb.Message_Raw:
		r.Body = k.Raw
	case *pb.Message_Call:
		if r.Body, err = renderCall(k.Call); err != nil {
			return nil, err
		}
	default:
		return nil, invalid("message needs raw or call")
	}
	// Truncation is read as on the ext_authz path: the flag, Envoy's
	// partial-body header, or a content-length longer than the body.
	r.Truncated = msg.GetTruncated() || strings.EqualFold(r.Headers["x-envoy-auth-partial-body"], "true")
	if cl, ok := r.Headers["content-length"]; ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64); err == nil && n > int64(len(r.Body)) {
			r.Truncated = true
		}
	}
	return r, nil
}

// callerRequest builds the request of a list caller (no message).
func callerRequest(c *pb.Caller, trusted bool) (*decision.Request, error) {
	r, err := baseRequest(c.GetHttp(), c.GetCredentials(), trusted)
	if err != nil {
		return nil, err
	}
	if r.Method == "" {
		r.Method = "POST"
	}
	r.Context = c.GetContextExtensions()
	return r, nil
}

// baseRequest fills the HTTP part and the credentials.
func baseRequest(h *pb.HttpContext, cred *pb.Credentials, trusted bool) (*decision.Request, error) {
	r := &decision.Request{
		Method:  strings.ToUpper(h.GetMethod()),
		Path:    h.GetPath(),
		Host:    h.GetHost(),
		Headers: make(map[string]string, len(h.GetHeaders())+1),
	}
	for k, v := range h.GetHeaders() {
		lk := strings.ToLower(k)
		if _, dup := r.Headers[lk]; dup {
			// A map has no order: which of the two would win changes
			// from call to call.
			return nil, invalid("http.headers names %q twice, in names that differ only in case: send each header once", lk)
		}
		r.Headers[lk] = v
	}
	switch c := cred.GetCredential().(type) {
	case nil:
		// No credentials: the authorization header, if any, is verified.
	case *pb.Credentials_BearerToken:
		if c.BearerToken == "" {
			return nil, invalid("credentials.bearer_token is empty")
		}
		if _, ok := r.Headers["authorization"]; ok {
			return nil, invalid("credentials.bearer_token and an authorization header: send the token once")
		}
		r.Headers["authorization"] = "Bearer " + c.BearerToken
	case *pb.Credentials_Claims:
		if !trusted {
			return nil, errUntrustedClaims
		}
		claims, err := structMap("credentials.claims", c.Claims)
		if err != nil {
			return nil, err
		}
		if claims == nil {
			claims = map[string]any{}
		}
		r.Credential = token.Claimed(claims)
	}
	return r, nil
}

// rpcCall is the JSON-RPC rendering of a Call.
type rpcCall struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

func renderCall(c *pb.Call) ([]byte, error) {
	if c.GetMethod() == "" {
		return nil, invalid("message.call.method is required")
	}
	out := rpcCall{JSONRPC: "2.0", Method: c.GetMethod()}
	if !c.GetNotification() {
		out.ID = json.RawMessage("1")
		if id := c.GetId(); id != nil {
			var err error
			if out.ID, err = renderID(id); err != nil {
				return nil, err
			}
		}
	}
	if p := c.GetParams(); p != nil {
		b, err := protojson.Marshal(p)
		if err != nil {
			return nil, invalid("message.call.params: %v", err)
		}
		out.Params = b
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("rendering call: %w", err)
	}
	return b, nil
}

func renderID(v *structpb.Value) (json.RawMessage, error) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		b, _ := json.Marshal(k.StringValue)
		return b, nil
	case *structpb.Value_NumberValue:
		n := k.NumberValue
		if n != math.Trunc(n) || math.IsInf(n, 0) || math.Abs(n) > 1<<53 {
			return nil, invalid("message.call.id must be a string or an integer")
		}
		return json.RawMessage(strconv.FormatInt(int64(n), 10)), nil
	}
	return nil, invalid("message.call.id must be a string or an integer")
}

// structMap returns s as a map after reading it as JSON with the rules of
// every MCP body (mcp.ReadJSON; docs/security.md, "One reading of every
// message"), so a Struct reaches the policy only when JSON readers agree on
// it. Protobuf already refuses invalid UTF-8 and has no duplicate keys; what
// is left are keys equal under case folding ("sub" and "SUB": a Go struct
// reads either as its field), control characters in keys, and numbers
// that are not finite. field names the field in the error.
func structMap(field string, s *structpb.Struct) (map[string]any, error) {
	if s == nil {
		return nil, nil
	}
	b, err := protojson.Marshal(s)
	if err != nil {
		return nil, invalid("%s: %v", field, err)
	}
	if _, err := mcp.ReadJSON(b); err != nil {
		return nil, invalid("%s: %v", field, err)
	}
	return s.AsMap(), nil
}

// DecisionToProto renders a decision as the API returns it.
func DecisionToProto(d *decision.Decision) *pb.Decision {
	out := &pb.Decision{
		Allow:      d.Allow,
		Code:       d.Code,
		Reason:     d.Reason,
		Scopes:     d.Scopes,
		DecisionId: d.ID,
		Revision:   d.Revision,
		Messages:   int32(min(d.Messages, math.MaxInt32)),
	}
	if d.Allow {
		out.UpstreamHeaders = headers(d.UpstreamHeaders)
		out.RemoveUpstreamHeaders = d.RemoveHeaders
		out.ResponseHeaders = headers(d.ResponseHeaders)
	} else {
		out.DeniedResponse = &pb.HttpResponse{Status: int32(d.Status), Headers: headers(d.ResponseHeaders), Body: d.Body}
		if utf8.Valid(d.Body) {
			out.DeniedResponse.BodyText = string(d.Body)
		}
	}
	if t := d.Token; t != nil {
		out.Token = &pb.TokenInfo{Present: t.Present, Valid: t.Valid, Error: t.Error, Subject: t.Subject, Scopes: t.Scopes}
	}
	return out
}

func headers(hs []decision.Header) []*pb.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]*pb.Header, len(hs))
	for i, h := range hs {
		out[i] = &pb.Header{Name: h.Name, Value: h.Value}
	}
	return out
}
