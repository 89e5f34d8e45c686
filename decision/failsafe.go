package decision

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"unicode/utf8"
)

// recoverDecision turns a panic while deciding into a denial, so that a
// caller always gets a well-formed answer: an ext_authz error would leave
// the outcome to Envoy's failure_mode_allow.
func (e *Engine) recoverDecision(p any, d *Decision) *Decision {
	id := ""
	if d != nil {
		id = d.ID
	}
	if id == "" {
		id = e.newID()
	}
	e.log.Error("panic while deciding; denying", "decision_id", id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	out := &Decision{ID: id, Errors: []string{fmt.Sprintf("panic: %v", p)}}
	if d != nil {
		out.Revision, out.Token = d.Revision, d.Token
	}
	out.refuse(denial{kind: refuseInternalError, reason: "internal error"})
	return out
}

// Failed is the denial of a request whose transport failed after reading
// it (a panic in an adapter): a 500 internal_error decision, logged with
// why and the stack, and told to the observer like any other decision, so
// that it is counted. Adapters call it instead of returning an error.
func (e *Engine) Failed(ctx context.Context, r *Request, why any) *Decision {
	d := e.recoverDecision(why, nil)
	d.stamp()
	if e.opts.Observer != nil {
		e.observe(ctx, r, d, nil, 0)
	}
	return d
}

// unreadable is the denial of a request its transport could not read.
func (e *Engine) unreadable(r *Request, d *Decision) {
	d.refuse(denial{kind: refuseUnreadable, reason: "the request could not be read: " + r.Unreadable})
}

// makeValidUTF8 replaces invalid UTF-8 in every string of d that leaves
// the process: CheckResponse fields are protobuf strings, which Envoy
// refuses to decode when they are not UTF-8, and would then apply its
// failure mode. Policy values are UTF-8 already, but a policy may build a
// reason or a header from raw header bytes, which Envoy does not check.
func (d *Decision) makeValidUTF8() {
	fix := func(s *string) {
		if !utf8.ValidString(*s) {
			*s = strings.ToValidUTF8(*s, "\uFFFD")
		}
	}
	fix(&d.Reason)
	fix(&d.Code)
	fix(&d.Revision)
	fix(&d.Method)
	fix(&d.Tool)
	fix(&d.Subject)
	for i := range d.Scopes {
		fix(&d.Scopes[i])
	}
	for _, hs := range [][]Header{d.ResponseHeaders, d.UpstreamHeaders} {
		for i := range hs {
			fix(&hs[i].Name)
			fix(&hs[i].Value)
		}
	}
	for i := range d.RemoveHeaders {
		fix(&d.RemoveHeaders[i])
	}
	for i := range d.RemoveQueryParams {
		fix(&d.RemoveQueryParams[i])
	}
	if !utf8.Valid(d.Body) {
		d.Body = []byte(strings.ToValidUTF8(string(d.Body), "\uFFFD"))
	}
}
