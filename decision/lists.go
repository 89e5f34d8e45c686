package decision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
)

// This file filters list answers (tools/list, prompts/list, resources/list,
// resources/templates/list) on the response path, for the transports that
// see responses (ext_proc, ExtMcp, a proxy): which requests are lists, and
// the rewrite of the JSON-RPC response that answers one, by ItemFilter's
// verdicts. Transports only frame the bytes (a JSON body, SSE events).

// listKind is what one list method answers: the result member holding the
// items and their kind.
type listKind struct {
	member string
	kind   ItemKind
}

// listMethods are the list requests whose answers are filtered. A resource
// template is judged as a resource whose URI is its uriTemplate.
var listMethods = map[string]listKind{
	"tools/list":               {"tools", ItemTool},
	"prompts/list":             {"prompts", ItemPrompt},
	"resources/list":           {"resources", ItemResource},
	"resources/templates/list": {"resourceTemplates", ItemResource},
}

// IsListMethod reports whether method is a list request whose answers are
// filtered (tools/list, prompts/list, resources/list,
// resources/templates/list).
func IsListMethod(method string) bool {
	_, ok := listMethods[method]
	return ok
}

// ListRequest is a list request read from a request body: what its answer
// must be filtered for.
type ListRequest struct {
	Method string // tools/list, prompts/list, resources/list or resources/templates/list
	// ID is the request's id as sent (raw JSON); IDValue the same as a value.
	ID      []byte
	IDValue ast.Value
	// ProtocolVersion is the revision the request speaks (the
	// MCP-Protocol-Version header, else params._meta, else the default).
	ProtocolVersion string
}

// ListFilter is what the transports on the response path (Envoy's
// ext_proc, the proxy) need to filter list answers; *ItemFilter is one.
type ListFilter interface {
	ListRequestOf(r *Request) *ListRequest
	FilterResponse(ctx context.Context, r *Request, lr *ListRequest, msg []byte) ([]byte, ListOutcome)
	FilterReplayed(ctx context.Context, r *Request, msg []byte) ([]byte, ListOutcome)
}

// DefaultMaxListAnswerBytes bounds what a transport holds of a list
// answer: a JSON body collected from chunks, or one SSE event not yet
// complete.
const DefaultMaxListAnswerBytes = 8 << 20

// ListRequestOf reads the body of r and returns the list request it is, or
// nil when it is anything else: another method, a notification, a batch,
// or a body the parser refuses (the ext_authz path refuses those).
func (f *ItemFilter) ListRequestOf(r *Request) *ListRequest {
	if len(r.Body) == 0 {
		return nil
	}
	body, err := mcp.ParseWith(r.Body, mcp.Options{SkipParams: true})
	if err != nil || body.Batch || len(body.Messages) != 1 {
		return nil
	}
	m := &body.Messages[0]
	if m.Kind != mcp.KindRequest {
		return nil
	}
	if _, ok := listMethods[m.Method]; !ok {
		return nil
	}
	v := r.Headers["mcp-protocol-version"]
	if v == "" {
		v = m.ProtocolVersion
	}
	if v == "" {
		v = f.e.opts.MCP.DefaultProtocolVersion
	}
	return &ListRequest{Method: m.Method, ID: bytes.Clone(m.ID), IDValue: m.IDValue, ProtocolVersion: v}
}

// ListOutcome says what FilterResponse did with one message.
type ListOutcome struct {
	// Answer: the message is the JSON-RPC response to the list request.
	Answer bool
	// Malformed: the message could not be read strictly (mcp.Parse); the
	// returned bytes are then a JSON-RPC error answering the list request,
	// never the message.
	Malformed error
	// Items and Hidden count the list's items and those removed.
	Items, Hidden int
	// Emptied: the caller could not be verified, or no policy is loaded,
	// so every item was removed.
	Emptied error
	// Errors are the items whose evaluation failed (hidden).
	Errors []error
	// Revision is the policy revision that decided.
	Revision string
	// PinMismatches are the pinned tools whose listed definition does not
	// match their pin (hidden, whoever the caller; pins.go).
	PinMismatches []PinMismatch
}

// CodeListUnfilterable is the JSON-RPC code of the error that replaces a
// list answer mcpauthz could not read: an internal error, since the server's
// answer exists but cannot be shown unfiltered.
const CodeListUnfilterable = mcp.CodeInternalError

// FilterResponse filters msg, one JSON-RPC message the server sent on the
// stream of lr, for the caller of r: when it answers lr with a result, the
// items the caller may not see are removed (the others stay as sent, in the
// server's order) and, when anything was removed from the answer of a
// 2026-07-28 request, result.cacheScope becomes "private". Any other
// message is returned as it is. It never fails open: an unverifiable
// caller or a missing policy empties the list, and a message that cannot
// be read strictly is replaced by a JSON-RPC error for lr.
func (f *ItemFilter) FilterResponse(ctx context.Context, r *Request, lr *ListRequest, msg []byte) ([]byte, ListOutcome) {
	body, err := mcp.ParseWith(msg, mcp.Options{SkipParams: true})
	if err != nil {
		return ListError(lr, "the list answer could not be read: "+err.Error()), ListOutcome{Malformed: err}
	}
	if body.Batch || len(body.Messages) != 1 {
		// A batch of responses is not an answer MCP sends to one request;
		// read strictly, it still might hold it.
		for i := range body.Messages {
			if sameIDValue(body.Messages[i].IDValue, lr.IDValue) {
				err := errors.New("the list answer came in a batch")
				return ListError(lr, err.Error()), ListOutcome{Malformed: err}
			}
		}
		return msg, ListOutcome{}
	}
	m := &body.Messages[0]
	if m.Kind != mcp.KindResponse || !sameIDValue(m.IDValue, lr.IDValue) {
		return msg, ListOutcome{}
	}
	out, res, err := f.filterEnvelope(ctx, r, lr, msg)
	if err != nil {
		return ListError(lr, "the list answer could not be read: "+err.Error()), ListOutcome{Answer: true, Malformed: err}
	}
	res.Answer = true
	return out, res
}

// ListError is the JSON-RPC error that replaces a list answer that cannot
// be filtered.
func ListError(lr *ListRequest, message string) []byte {
	return rpcErrorBody(lr.ID, CodeListUnfilterable, message, nil)
}

// sameIDValue reports whether two ids (ast.String or ast.Number) are equal.
func sameIDValue(a, b ast.Value) bool {
	if a == nil || b == nil {
		return false
	}
	return a.Compare(b) == 0
}

// filterEnvelope filters the result of a response already read strictly.
func (f *ItemFilter) filterEnvelope(ctx context.Context, r *Request, lr *ListRequest, msg []byte) ([]byte, ListOutcome, error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(msg, &env); err != nil {
		return nil, ListOutcome{}, err
	}
	raw, ok := env["result"]
	if !ok {
		return msg, ListOutcome{}, nil // an error answer lists nothing
	}
	result, res, changed, err := f.FilterResult(ctx, r, lr.Method, lr.ProtocolVersion, raw)
	if err != nil || !changed {
		return msg, res, err
	}
	env["result"] = result
	out, err := marshalNoEscape(env)
	return out, res, err
}

// FilterResult filters result, the raw JSON result of a list method, for
// the caller of r: see FilterResponse. changed is false when nothing was
// removed; result is then returned as it is. err is set only when result is
// not a JSON object whose list member is an array.
func (f *ItemFilter) FilterResult(ctx context.Context, r *Request, method, protocolVersion string, result []byte) (_ []byte, _ ListOutcome, changed bool, _ error) {
	lk, ok := listMethods[method]
	if !ok {
		return result, ListOutcome{}, false, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(result, &members); err != nil {
		return nil, ListOutcome{}, false, fmt.Errorf("result: %w", err)
	}
	if members == nil {
		return nil, ListOutcome{}, false, errors.New("result is null")
	}
	var raws []json.RawMessage
	if lr, ok := members[lk.member]; ok {
		if err := json.Unmarshal(lr, &raws); err != nil {
			return nil, ListOutcome{}, false, fmt.Errorf("result.%s: %w", lk.member, err)
		}
	}
	items := make([]Item, len(raws))
	readable := make([]bool, len(raws))
	for i, raw := range raws {
		items[i], readable[i] = readItem(lk.kind, raw)
	}
	res := ListOutcome{Items: len(raws)}
	keep := make([]bool, len(raws))
	var vr *VisibleResult
	pol := f.e.opts.Snapshots.Current()
	if pol != nil {
		vr = f.visibleIn(ctx, pol, r, items)
	}
	switch {
	case pol == nil:
		res.Emptied = ErrNoPolicy
	case vr.Token == nil || !vr.Token.Valid:
		reason := "no valid credential"
		if vr.Token != nil && vr.Token.Error != "" {
			reason = "credential rejected: " + vr.Token.Error
		}
		res.Emptied, res.Revision = errors.New(reason), vr.Revision
	default:
		res.Revision = vr.Revision
		for i, v := range vr.Items {
			keep[i] = v.Visible && readable[i]
			if v.Err != nil {
				res.Errors = append(res.Errors, v.Err)
			}
		}
	}
	if pol != nil {
		// Pins are judged whoever the caller: what the server lists is
		// remembered for the calls of every caller.
		var pinned []bool
		if pinned, res.PinMismatches = f.checkListedPins(ctx, pol, r, items, raws, readable); pinned != nil {
			for i := range keep {
				keep[i] = keep[i] && !pinned[i]
			}
		}
	}
	kept := make([]json.RawMessage, 0, len(raws))
	for i, raw := range raws {
		if keep[i] {
			kept = append(kept, raw)
		}
	}
	res.Hidden = len(raws) - len(kept)
	if res.Hidden == 0 {
		return result, res, false, nil
	}
	list, err := marshalNoEscape(kept)
	if err != nil {
		return nil, res, false, err
	}
	members[lk.member] = list
	if protocolVersion >= Version20260728 {
		// A shared cache must not serve one caller's list to another.
		members["cacheScope"] = json.RawMessage(`"private"`)
	}
	out, err := marshalNoEscape(members)
	if err != nil {
		return nil, res, false, err
	}
	return out, res, true, nil
}

// readItem reads one list entry as the visible rule sees it. An entry that
// is not an object, or whose name or URI is not a string, is not readable
// (and is hidden).
func readItem(kind ItemKind, raw json.RawMessage) (Item, bool) {
	it := Item{Kind: kind}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return it, false
	}
	str := func(k string) (string, bool) {
		v, ok := fields[k]
		if !ok {
			return "", true
		}
		var s string
		return s, json.Unmarshal(v, &s) == nil
	}
	obj := func(k string) (map[string]any, bool) {
		v, ok := fields[k]
		if !ok || string(v) == "null" {
			return nil, true
		}
		var m map[string]any
		return m, json.Unmarshal(v, &m) == nil
	}
	var ok [5]bool
	it.Name, ok[0] = str("name")
	it.Description, ok[1] = str("description")
	it.Annotations, ok[2] = obj("annotations")
	uriKey := "uri"
	if _, tmpl := fields["uriTemplate"]; tmpl && kind == ItemResource {
		uriKey = "uriTemplate"
	}
	if kind == ItemResource {
		it.URI, ok[3] = str(uriKey)
	} else {
		ok[3] = true
	}
	ok[4] = true
	if kind == ItemTool {
		it.InputSchema, ok[4] = obj("inputSchema")
	}
	for _, b := range ok {
		if !b {
			return it, false
		}
	}
	if kind == ItemResource && it.URI == "" || kind != ItemResource && it.Name == "" {
		return it, false
	}
	return it, true
}

// marshalNoEscape encodes v without HTML escaping (raw members stay as the
// server wrote them, compacted) and without the trailing newline.
func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

// String names the list request, for logs.
func (lr *ListRequest) String() string {
	if lr == nil {
		return "a replayed stream" // FilterReplayed: no list request seen
	}
	return lr.Method + " id " + strconv.Quote(string(lr.ID))
}

// replayOrder is the order in which FilterReplayed filters the members of
// one result (a result holds one list in MCP; an odd one is filtered for
// each it holds).
var replayOrder = [...]string{"tools/list", "prompts/list", "resources/list", "resources/templates/list"}

// FilterReplayed filters msg, one message of a stream that may replay
// answers to requests the transport never saw: a GET that resumes a stream
// (Last-Event-ID) gets the server's stored events again, list answers
// included. A response whose result holds a list member (tools, prompts,
// resources, resourceTemplates) as an array is filtered for the caller of
// r as the answer to that list, as FilterResponse would have; any other
// message is returned as it is. A message that cannot be read strictly,
// or a batch holding a response, is dropped (nil): a lenient reader might
// find a list in it.
func (f *ItemFilter) FilterReplayed(ctx context.Context, r *Request, msg []byte) ([]byte, ListOutcome) {
	body, err := mcp.ParseWith(msg, mcp.Options{SkipParams: true})
	if err != nil {
		return nil, ListOutcome{Malformed: err}
	}
	for i := range body.Messages {
		if body.Messages[i].Kind == mcp.KindResponse && body.Batch {
			return nil, ListOutcome{Malformed: errors.New("a batch holding a response on a replayed stream")}
		}
	}
	if body.Batch || body.Messages[0].Kind != mcp.KindResponse {
		return msg, ListOutcome{}
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(msg, &env); err != nil {
		return nil, ListOutcome{Malformed: err}
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(env["result"], &members) != nil {
		return msg, ListOutcome{} // no result object: no list
	}
	version := r.Headers["mcp-protocol-version"]
	if version == "" {
		version = f.e.opts.MCP.DefaultProtocolVersion
	}
	result, out, changed := env["result"], ListOutcome{}, false
	for _, method := range replayOrder {
		raw := bytes.TrimSpace(members[listMethods[method].member])
		if len(raw) == 0 || raw[0] != '[' {
			continue
		}
		filtered, res, ch, err := f.FilterResult(ctx, r, method, version, result)
		if err != nil {
			return nil, ListOutcome{Answer: true, Malformed: err}
		}
		out.Answer, out.Items, out.Hidden = true, out.Items+res.Items, out.Hidden+res.Hidden
		out.Emptied, out.Revision, out.Errors = res.Emptied, res.Revision, append(out.Errors, res.Errors...)
		out.PinMismatches = append(out.PinMismatches, res.PinMismatches...)
		result, changed = filtered, changed || ch
	}
	if !changed {
		return msg, out
	}
	env["result"] = result
	b, err := marshalNoEscape(env)
	if err != nil {
		return nil, ListOutcome{Answer: true, Malformed: err}
	}
	return b, out
}
