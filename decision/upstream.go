package decision

import (
	"context"

	"github.com/mcpauthz/mcpauthz/decision/token"
)

// UpstreamCredentials gives an allowed request the credential it carries
// to the MCP server (decision/upstream is one: RFC 8693 token exchange and
// static headers). The client's own token never goes upstream: the engine
// removes the authorization header unless a credential replaces it.
type UpstreamCredentials interface {
	// Upstream returns the headers to set on the upstream request, none
	// when no credential applies. An error denies the request with 503.
	Upstream(ctx context.Context, r *UpstreamRequest) ([]Header, error)
}

// UpstreamRequest is what an UpstreamCredentials sees of an allowed request.
type UpstreamRequest struct {
	// Context is the request's context extensions (e.g. mcp_server).
	Context map[string]string
	// Choice is the policy's decision.upstream_credential: "" when it
	// named none, an entry's name, or "none" for no credential.
	Choice string
	// Token is the caller's credential as verified; Raw is the bearer
	// token of its authorization header when that credential is valid
	// ("" otherwise): the subject token of an exchange.
	Token *token.Result
	Raw   string
}

// upstreamCredential sets the upstream credential of an allowed decision,
// or turns it into a 503 denial when the credential cannot be had.
func (e *Engine) upstreamCredential(ctx context.Context, r *Request, d *Decision) {
	// Only a token that was verified (by us, or by Envoy before us) is
	// handed on as the subject of an exchange.
	var raw string
	if d.Token != nil && d.Token.Valid && r.Credential.Kind != token.NoCredential {
		if b, _, ok := token.BearerToken(r.Headers["authorization"]); ok {
			raw = b
		}
	}
	hs, err := e.opts.Upstream.Upstream(ctx, &UpstreamRequest{Context: r.Context, Choice: d.UpstreamCredential, Token: d.Token, Raw: raw})
	if err != nil {
		e.refuseUpstream(d, err.Error())
		return
	}
	for _, h := range hs {
		d.UpstreamHeaders = setHeader(d.UpstreamHeaders, h)
		if h.Name == "authorization" {
			// Set, not removed: Envoy would apply both.
			d.RemoveHeaders = without(d.RemoveHeaders, h.Name)
		}
	}
}

// refuseUpstream denies an allowed decision whose upstream credential could
// not be had, dropping what the allow would have sent.
func (e *Engine) refuseUpstream(d *Decision, why string) {
	e.log.Warn("no upstream credential; denying", "decision_id", d.ID, "error", why)
	d.revoke(denial{kind: refuseUpstreamCredential, reason: "upstream credential unavailable: " + why})
}

// setHeader returns hs with h replacing any header of the same name.
func setHeader(hs []Header, h Header) []Header {
	out := make([]Header, 0, len(hs)+1)
	for _, x := range hs {
		if x.Name != h.Name {
			out = append(out, x)
		}
	}
	return append(out, h)
}

// without returns names without name, as a new slice (names may be
// shared), or nil when nothing is left.
func without(names []string, name string) []string {
	var out []string
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

// upstreamChoice reads the decision.upstream_credential of the allowed
// messages of a body. Batch elements that choose differently get "none":
// one request carries one credential, and none is the one that grants
// nothing by mistake.
func upstreamChoice(outs []outcome) string {
	choice := ""
	for i := range outs {
		c := outs[i].res.upstream
		if i > 0 && c != choice {
			return "none"
		}
		choice = c
	}
	return choice
}
