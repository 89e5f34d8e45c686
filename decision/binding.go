package decision

import (
	"context"
	"errors"

	"github.com/mcpauthz/mcpauthz/decision/dpop"
	"github.com/mcpauthz/mcpauthz/decision/oauth"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// This file is the sender_binding step: a token bound to a key (DPoP,
// RFC 9449) or a client certificate (RFC 8705) is usable only by who
// holds them. The step runs on valid tokens only: an invalid or missing
// one is the policy's to judge, and its challenge says why.

// ProofChecker checks DPoP proofs; *dpop.Checker is one.
type ProofChecker interface {
	// Check returns nil, a *dpop.Error (the proof is refused) or a
	// *dpop.StoreError (its jti could not be recorded).
	Check(ctx context.Context, r *dpop.Request) error
	// Algorithms are the accepted proof algorithms, space-separated.
	Algorithms() string
}

// senderBindingStep holds a valid token to what its cnf claim binds it
// to: a DPoP-bound token (cnf.jkt) needs the DPoP scheme and a valid proof
// of that key; a certificate-bound one (cnf["x5t#S256"]) the client
// certificate with that thumbprint; a token bound to neither is refused
// when only DPoP-bound tokens are accepted (tokens.dpop.required). So a
// policy that reads input.token.binding reads what was checked.
func (e *Engine) senderBindingStep(p *prepared) bool {
	if !p.tok.Valid {
		return true
	}
	b := token.BindingOf(p.tok)
	raw, scheme, _, _ := token.AccessToken(p.r.Headers["authorization"])
	switch {
	case b.Malformed:
		e.refuseBinding(p, "the token's cnf claim cannot be read, so what it is bound to is unknown")
		return false
	case b.JKT != "":
		if scheme != token.SchemeDPoP {
			// RFC 9449 §7.2: a bound token sent as a bearer token is
			// refused, or a stolen one would work without its key.
			e.refuseBinding(p, "the token is DPoP-bound: send it with the DPoP scheme and a DPoP proof, not as a Bearer token")
			return false
		}
		if e.opts.DPoP == nil {
			e.refuseBinding(p, "the token is DPoP-bound and DPoP proofs are not checked here")
			return false
		}
		err := e.opts.DPoP.Check(p.ctx, &dpop.Request{Proof: p.r.Headers["dpop"], Method: p.r.Method,
			URI: requestURI(p.r), AccessToken: raw, JKT: b.JKT})
		var pe *dpop.Error
		switch {
		case errors.As(err, &pe) && pe.Nonce != "":
			// RFC 9449 §8: the client signs a new proof with this nonce.
			p.d.refuse(denial{kind: refuseDPoPNonce, reason: pe.Error(),
				challenge: e.dpopChallenge(CodeUseDPoPNonce, pe.Reason)})
			p.d.ResponseHeaders = append(p.d.ResponseHeaders, Header{Name: "dpop-nonce", Value: pe.Nonce})
			return false
		case errors.As(err, &pe):
			p.d.refuse(denial{kind: refuseDPoPProof, reason: pe.Error(),
				challenge: e.dpopChallenge("invalid_dpop_proof", pe.Reason)})
			return false
		case err != nil:
			e.refuseState(p, "recording the DPoP proof's jti", err)
			return false
		}
	case scheme == token.SchemeDPoP:
		// RFC 9449 §7.1: the DPoP scheme is for DPoP-bound tokens only.
		e.refuseBinding(p, "the token is not DPoP-bound: send it with the Bearer scheme")
		return false
	case b.X5T == "" && e.opts.DPoPRequired:
		e.refuseBinding(p, "only DPoP-bound tokens are accepted here")
		return false
	}
	if b.X5T != "" {
		got, err := dpop.CertificateThumbprint(p.r.SourceCertificate)
		switch {
		case p.r.SourceCertificate == "":
			e.refuseCertificate(p, "the token is bound to a client certificate and the request came with none")
			return false
		case err != nil:
			e.refuseCertificate(p, "the token is bound to a client certificate: "+err.Error())
			return false
		case got != b.X5T:
			e.refuseCertificate(p, "the token is bound to another client certificate (cnf x5t#S256)")
			return false
		}
	}
	return true
}

// refuseBinding refuses a valid token sent in a way its binding does not
// allow: 401 invalid_token with the DPoP challenge.
func (e *Engine) refuseBinding(p *prepared, reason string) {
	p.d.refuse(denial{kind: refuseTokenBinding, reason: "authentication required: " + reason,
		challenge: e.dpopChallenge("invalid_token", reason)})
}

// refuseCertificate refuses a certificate-bound token without its
// certificate: 401 invalid_token with the Bearer challenge (RFC 8705 §3).
func (e *Engine) refuseCertificate(p *prepared, reason string) {
	p.d.refuse(denial{kind: refuseTokenBinding, reason: "authentication required: " + reason,
		challenge: oauth.Challenge401(e.opts.MetadataURL, true, reason)})
}

// dpopChallenge is the WWW-Authenticate value of a DPoP refusal: the DPoP
// challenge, then the Bearer one while bearer tokens are accepted, both
// naming the resource metadata. One value holds both (RFC 9110 §11.6.1):
// Envoy overwrites a header it is given twice.
func (e *Engine) dpopChallenge(code, description string) string {
	algs := dpop.DefaultAlgorithmsString
	if e.opts.DPoP != nil {
		algs = e.opts.DPoP.Algorithms()
	}
	c := oauth.ChallengeDPoP(e.opts.MetadataURL, algs, code, description)
	if e.opts.DPoPRequired {
		return c
	}
	return c + ", " + oauth.Challenge401(e.opts.MetadataURL, false, "")
}

// requestURI is the URI of r as its client sent it, for a DPoP proof's
// htu: "" when the transport does not know the scheme.
func requestURI(r *Request) string {
	if r.Scheme == "" || r.Host == "" {
		return ""
	}
	path, _ := splitPath(r.Path)
	return r.Scheme + "://" + r.Host + path
}

// proofHeaderStep keeps the DPoP proof of an allowed request from the
// upstream, as the Authorization header is: it was meant for mcpauthz.
func (e *Engine) proofHeaderStep(p *prepared) bool {
	if _, ok := p.r.Headers["dpop"]; ok {
		p.d.RemoveHeaders = append(p.d.RemoveHeaders[:len(p.d.RemoveHeaders):len(p.d.RemoveHeaders)], "dpop")
	}
	return true
}
