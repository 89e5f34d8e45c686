package decision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

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

// ListRequest is what the answer to one HTTP request must be filtered
// for: the list requests its body holds (one, or those of a batch), or,
// for a GET, none known (Replay): a GET that resumes a stream
// (Last-Event-ID) gets the server's stored events again, answers to
// earlier list requests included, whatever body it carries.
type ListRequest struct {
	// Calls are the list requests of the body, in order.
	Calls []ListCall
	// Batch: the body was a JSON array; an error answering it is one too.
	Batch bool
	// Replay: a GET's stream. Every response whose result holds a list
	// member is filtered as the answer to that list.
	Replay bool
	// ProtocolVersion is the revision the request speaks (the
	// MCP-Protocol-Version header, else params._meta of its first list
	// request, else the default).
	ProtocolVersion string
}

// ListCall is one list request of a body.
type ListCall struct {
	Method string // tools/list, prompts/list, resources/list or resources/templates/list
	// ID is the request's id as sent (raw JSON).
	ID []byte
	// key is the id as the server will echo it.
	key idKey
}

// idKey is a JSON-RPC id as a server echoes it: a string by its value, a
// number by the IEEE-754 double JavaScript (and most JSON readers) reads
// from its literal, so 7, 7.0, 7e0 and 7.00000000000000000001 are one
// id. A string never equals a number. An id no server can echo as it came
// (null, or a number past the double range, which JavaScript reads as
// Infinity and writes back as null) matches nothing.
type idKey struct {
	str   string
	num   float64
	isStr bool
	valid bool
}

// idKeyOf reads a raw id (as the strict parser accepted it).
func idKeyOf(raw []byte) idKey {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return idKey{}
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return idKey{}
		}
		return idKey{str: s, isStr: true, valid: true}
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return idKey{}
	}
	return idKey{num: f, valid: true}
}

// matches reports whether two ids are the same id to the server.
func (k idKey) matches(o idKey) bool {
	if !k.valid || !o.valid || k.isStr != o.isStr {
		return false
	}
	if k.isStr {
		return k.str == o.str
	}
	return k.num == o.num
}

// ListFilter is what the transports on the response path (Envoy's
// ext_proc, the proxy) need to filter list answers; *ItemFilter is one.
type ListFilter interface {
	ListRequestOf(r *Request) *ListRequest
	FilterResponse(ctx context.Context, r *Request, lr *ListRequest, msg []byte) ([]byte, ListOutcome)
}

// DefaultMaxListAnswerBytes bounds what a transport holds of a list
// answer: a JSON body collected from chunks, or one SSE event not yet
// complete.
const DefaultMaxListAnswerBytes = 8 << 20

// ListRequestOf returns what the answer to r must be filtered for, or nil
// when nothing: a GET is always a replayed stream (whatever body it
// carries: the server answers a GET with its stored events, never by the
// body); any other request is filtered when its body (one message or a
// batch) holds a list request. A body the parser refuses is nil (every
// path refuses those before the server sees them).
func (f *ItemFilter) ListRequestOf(r *Request) *ListRequest {
	version := r.Headers["mcp-protocol-version"]
	if r.Method == "GET" {
		if version == "" {
			version = f.e.opts.MCP.DefaultProtocolVersion
		}
		return &ListRequest{Replay: true, ProtocolVersion: version}
	}
	if len(r.Body) == 0 {
		return nil
	}
	body, err := mcp.ParseWith(r.Body, mcp.Options{SkipParams: true})
	if err != nil {
		return nil
	}
	var lr *ListRequest
	for i := range body.Messages {
		m := &body.Messages[i]
		if m.Kind != mcp.KindRequest {
			continue
		}
		if _, ok := listMethods[m.Method]; !ok {
			continue
		}
		if lr == nil {
			lr = &ListRequest{Batch: body.Batch, ProtocolVersion: version}
			if lr.ProtocolVersion == "" {
				lr.ProtocolVersion = m.ProtocolVersion
			}
		}
		lr.Calls = append(lr.Calls, ListCall{Method: m.Method, ID: bytes.Clone(m.ID), key: idKeyOf(m.ID)})
	}
	if lr != nil && lr.ProtocolVersion == "" {
		lr.ProtocolVersion = f.e.opts.MCP.DefaultProtocolVersion
	}
	return lr
}

// ListOutcome says what FilterResponse did with one message.
type ListOutcome struct {
	// Answer: the message holds a response that was filtered as a list
	// answer (matched to a list request, or by its shape).
	Answer bool
	// Answered are the indexes in ListRequest.Calls of the list requests
	// the message answered (or answered with an error).
	Answered []int
	// Malformed: the message could not be read strictly (mcp.Parse); the
	// returned bytes are then JSON-RPC errors answering the list requests
	// (nil on a replayed stream), never the message.
	Malformed error
	// Items and Hidden count the list's items and those removed.
	Items, Hidden int
	// Emptied: the caller could not be verified, or no policy is loaded,
	// or the answer matched no list request of the caller, so every item
	// was removed.
	Emptied error
	// Errors are the items whose evaluation failed: the answer was
	// replaced by a JSON-RPC error (Unjudged).
	Errors []error
	// Unjudged: an item's visibility could not be evaluated, so the list
	// was answered with a JSON-RPC error rather than shown short.
	Unjudged bool
	// Revision is the policy revision that decided.
	Revision string
	// PinMismatches are the pinned tools whose listed definition does not
	// match their pin (hidden, whoever the caller; pins.go).
	PinMismatches []PinMismatch
}

// add merges the outcome of one response of a batch.
func (o *ListOutcome) add(res ListOutcome) {
	o.Answer = o.Answer || res.Answer
	o.Items += res.Items
	o.Hidden += res.Hidden
	if o.Emptied == nil {
		o.Emptied = res.Emptied
	}
	o.Errors = append(o.Errors, res.Errors...)
	o.Unjudged = o.Unjudged || res.Unjudged
	if res.Revision != "" {
		o.Revision = res.Revision
	}
	o.PinMismatches = append(o.PinMismatches, res.PinMismatches...)
}

// CodeListUnfilterable is the JSON-RPC code of the error that replaces a
// list answer mcpauthz could not read: an internal error, since the server's
// answer exists but cannot be shown unfiltered.
const CodeListUnfilterable = mcp.CodeInternalError

// ErrListUnjudged is the message of the error that replaces a list answer
// whose items could not all be judged (an evaluation failed or was cut
// short): the caller is told to ask again rather than shown a short list.
const ErrListUnjudged = "the list answer could not be filtered: the visibility of its items could not be evaluated; try again"

// FilterResponse filters msg, one JSON-RPC message or batch the server
// sent in answer to lr (a JSON body, or the data of one SSE event), for
// the caller of r. Each response is matched to a list request of lr by
// the id the server echoes (idKey): one that answers a list request with
// a result loses the items the caller may not see (the others stay as
// sent, in the server's order); a response that answers none but whose
// result holds a list member is filtered by that member on a replayed
// stream, and emptied otherwise. When anything was removed from an answer
// that carries cacheScope, or from the answer of a 2026-07-28 request,
// result.cacheScope becomes "private". Any other message is returned as
// it is. It never fails open: an unverifiable caller or a missing policy
// empties the list, a list whose items cannot be judged is replaced by a
// JSON-RPC error, and a message that cannot be read strictly is replaced
// by errors for lr's requests (dropped on a replayed stream).
func (f *ItemFilter) FilterResponse(ctx context.Context, r *Request, lr *ListRequest, msg []byte) ([]byte, ListOutcome) {
	body, err := mcp.ParseWith(msg, mcp.Options{SkipParams: true})
	if err != nil {
		return f.unreadable(lr, err)
	}
	if !body.Batch {
		out, res, err := f.filterMessage(ctx, r, lr, &body.Messages[0], msg)
		if err != nil {
			return f.unreadable(lr, err)
		}
		return out, res
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(msg, &elems); err != nil || len(elems) != len(body.Messages) {
		return f.unreadable(lr, fmt.Errorf("reading the batch: %v", err))
	}
	var all ListOutcome
	changed := false
	for i := range elems {
		out, res, err := f.filterMessage(ctx, r, lr, &body.Messages[i], elems[i])
		if err != nil {
			return f.unreadable(lr, err)
		}
		all.add(res)
		all.Answered = append(all.Answered, res.Answered...)
		if !bytes.Equal(out, elems[i]) {
			elems[i], changed = out, true
		}
	}
	if !changed {
		return msg, all
	}
	out, err := marshalNoEscape(elems)
	if err != nil {
		return f.unreadable(lr, err)
	}
	return out, all
}

// unreadable is what replaces a message that cannot be read strictly: a
// lenient reader might find a list in it.
func (f *ItemFilter) unreadable(lr *ListRequest, err error) ([]byte, ListOutcome) {
	res := ListOutcome{Malformed: err}
	if lr.Replay {
		return nil, res
	}
	for i := range lr.Calls {
		res.Answered = append(res.Answered, i)
	}
	return ListErrors(lr, nil, "the list answer could not be read: "+err.Error()), res
}

// filterMessage filters one message of an answer (raw is its bytes). err
// is set when a list answer in it cannot be read.
func (f *ItemFilter) filterMessage(ctx context.Context, r *Request, lr *ListRequest, m *mcp.Message, raw []byte) ([]byte, ListOutcome, error) {
	if m.Kind != mcp.KindResponse {
		return raw, ListOutcome{}, nil
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, ListOutcome{}, err
	}
	key := idKeyOf(m.ID)
	for i := range lr.Calls {
		c := &lr.Calls[i]
		if !c.key.matches(key) {
			continue
		}
		res := ListOutcome{Answer: true, Answered: []int{i}}
		result, ok := env["result"]
		if !ok {
			return raw, res, nil // an error answer lists nothing
		}
		out, fr, changed, err := f.filterResult(ctx, r, c.Method, lr.ProtocolVersion, result, false)
		fr.Answer, fr.Answered = true, res.Answered
		return f.rewrite(env, raw, m.ID, out, fr, changed, err)
	}
	// A response that answers no list request: a list in it is filtered
	// by its shape (a replayed answer) or emptied (it cannot be told
	// whose list it is).
	var members map[string]json.RawMessage
	if json.Unmarshal(env["result"], &members) != nil || members == nil {
		return raw, ListOutcome{}, nil // no result object: no list
	}
	result, all, changed := env["result"], ListOutcome{}, false
	for _, method := range replayOrder {
		v := bytes.TrimSpace(members[listMethods[method].member])
		if len(v) == 0 || v[0] != '[' {
			continue
		}
		out, res, ch, err := f.filterResult(ctx, r, method, lr.ProtocolVersion, result, !lr.Replay)
		if err != nil {
			return nil, ListOutcome{Answer: true}, err
		}
		all.Answer = true
		all.add(res)
		if ch {
			result, changed = out, true
		}
	}
	if !all.Answer {
		return raw, all, nil
	}
	return f.rewrite(env, raw, m.ID, result, all, changed, nil)
}

// rewrite puts a filtered result back in its envelope; a list whose items
// could not all be judged becomes a JSON-RPC error for its id.
func (f *ItemFilter) rewrite(env map[string]json.RawMessage, raw, id, result []byte, res ListOutcome, changed bool, err error) ([]byte, ListOutcome, error) {
	if err != nil {
		return nil, res, err
	}
	if len(res.Errors) > 0 {
		res.Unjudged = true
		return rpcErrorBody(id, CodeListUnfilterable, ErrListUnjudged, nil), res, nil
	}
	if !changed {
		return raw, res, nil
	}
	env["result"] = result
	out, err := marshalNoEscape(env)
	return out, res, err
}

// ListErrors is what replaces the answer to lr that cannot be filtered: a
// JSON-RPC error for each list request not yet answered (answered[i] set:
// skipped; nil: none answered), an array when lr was a batch; nil when
// nothing is left to answer (or lr is a replayed stream).
func ListErrors(lr *ListRequest, answered []bool, message string) []byte {
	var errs []json.RawMessage
	for i := range lr.Calls {
		if answered != nil && answered[i] {
			continue
		}
		errs = append(errs, rpcErrorBody(lr.Calls[i].ID, CodeListUnfilterable, message, nil))
	}
	switch {
	case len(errs) == 0:
		return nil
	case !lr.Batch && len(errs) == 1:
		return errs[0]
	}
	b, _ := marshalNoEscape(errs)
	return b
}

// ListError is ListErrors for every list request of lr.
func ListError(lr *ListRequest, message string) []byte {
	return ListErrors(lr, nil, message)
}

// FilterResult filters result, the raw JSON result of a list method, for
// the caller of r: see FilterResponse. changed is false when nothing was
// removed; result is then returned as it is. err is set only when result is
// not a JSON object whose list member is an array. Items whose visibility
// could not be evaluated are reported in ListOutcome.Errors (and hidden):
// the caller answers with an error rather than the list (FilterResponse
// does).
func (f *ItemFilter) FilterResult(ctx context.Context, r *Request, method, protocolVersion string, result []byte) (_ []byte, _ ListOutcome, changed bool, _ error) {
	return f.filterResult(ctx, r, method, protocolVersion, result, false)
}

// filterResult is FilterResult; empty removes every item (an answer that
// cannot be told to be the caller's).
func (f *ItemFilter) filterResult(ctx context.Context, r *Request, method, protocolVersion string, result []byte, empty bool) (_ []byte, _ ListOutcome, changed bool, _ error) {
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
	if pol != nil && !empty {
		vr = f.visibleIn(ctx, pol, r, items)
	}
	switch {
	case pol == nil:
		res.Emptied = ErrNoPolicy
	case empty:
		res.Emptied = errUnmatchedAnswer
	case vr.Token == nil || vr.Token.Present && !vr.Token.Valid:
		// A credential that was sent and rejected sees nothing; a caller
		// without one (vr.Token.Present false) is judged as such, as the
		// call would be: the visible rule sees input.token.present false.
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
		// remembered for the calls of every caller (when the answer comes
		// from a trusted source: pins.go).
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
	_, scoped := members["cacheScope"]
	if res.Hidden == 0 && (res.Emptied == nil || !scoped) {
		return result, res, false, nil
	}
	list, err := marshalNoEscape(kept)
	if err != nil {
		return nil, res, false, err
	}
	members[lk.member] = list
	if scoped || protocolVersion >= Version20260728 {
		// A shared cache must not serve one caller's list to another:
		// whatever revision the request named, an answer mcpauthz changed
		// for its caller is private.
		members["cacheScope"] = json.RawMessage(`"private"`)
	}
	out, err := marshalNoEscape(members)
	if err != nil {
		return nil, res, false, err
	}
	return out, res, true, nil
}

// errUnmatchedAnswer empties a list answer that answers no list request of
// the caller (its id matches none).
var errUnmatchedAnswer = errors.New("the answer matches no list request of this caller")

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
	switch {
	case lr == nil || lr.Replay:
		return "a replayed stream"
	case len(lr.Calls) == 1 && !lr.Batch:
		return lr.Calls[0].Method + " id " + strconv.Quote(string(lr.Calls[0].ID))
	}
	var b strings.Builder
	b.WriteString("a batch of ")
	for i, c := range lr.Calls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.Method + " id " + strconv.Quote(string(c.ID)))
	}
	return b.String()
}

// replayOrder is the order in which the list members of one result are
// filtered (a result holds one list in MCP; an odd one is filtered for
// each it holds).
var replayOrder = [...]string{"tools/list", "prompts/list", "resources/list", "resources/templates/list"}

// FilterReplayed filters msg, one message of a GET's stream, which may
// replay answers to requests the transport never saw: it is
// FilterResponse for ListRequestOf of a GET.
func (f *ItemFilter) FilterReplayed(ctx context.Context, r *Request, msg []byte) ([]byte, ListOutcome) {
	version := r.Headers["mcp-protocol-version"]
	if version == "" {
		version = f.e.opts.MCP.DefaultProtocolVersion
	}
	return f.FilterResponse(ctx, r, &ListRequest{Replay: true, ProtocolVersion: version}, msg)
}
