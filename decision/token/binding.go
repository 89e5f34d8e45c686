package token

import "github.com/open-policy-agent/opa/v1/ast"

// Binding is what a token's cnf claim (RFC 7800) binds it to: the key of
// DPoP proofs (RFC 9449 §6, cnf.jkt) or a client certificate (RFC 8705
// §3.1, cnf["x5t#S256"]). A token bound to either is usable only with
// that key or certificate.
type Binding struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the DPoP key; "" when none.
	JKT string
	// X5T is the base64url SHA-256 thumbprint of the certificate; "" when
	// none.
	X5T string
	// Malformed: cnf, jkt or x5t#S256 is there but not what RFC 7800,
	// RFC 9449 and RFC 8705 say (an object, non-empty strings). Such a
	// token is refused: what it is bound to cannot be known.
	Malformed bool
}

// BindingOf reads r's cnf claim (a JWT's, or the introspection
// response's).
func BindingOf(r *Result) Binding {
	raw, ok := r.Claims["cnf"]
	if !ok {
		return Binding{}
	}
	cnf, ok := raw.(map[string]any)
	if !ok {
		return Binding{Malformed: true}
	}
	var b Binding
	for name, to := range map[string]*string{"jkt": &b.JKT, "x5t#S256": &b.X5T} {
		v, ok := cnf[name]
		if !ok {
			continue
		}
		if s, _ := v.(string); s != "" {
			*to = s
		} else {
			b.Malformed = true
		}
	}
	return b
}

// bindingTerm is input.token.binding: {"kind": "dpop", "jkt": …} or
// {"kind": "mtls", "x5t#S256": …}; nil when the token is bound to
// nothing (or its cnf cannot be read, which the engine refuses). A token
// bound both ways shows its DPoP binding; the engine checks both.
func bindingTerm(r *Result) *ast.Term {
	b := BindingOf(r)
	switch {
	case b.Malformed:
		return nil
	case b.JKT != "":
		return ast.ObjectTerm(ast.Item(ast.InternedTerm("kind"), ast.StringTerm("dpop")), ast.Item(ast.InternedTerm("jkt"), ast.StringTerm(b.JKT)))
	case b.X5T != "":
		return ast.ObjectTerm(ast.Item(ast.InternedTerm("kind"), ast.StringTerm("mtls")), ast.Item(ast.StringTerm("x5t#S256"), ast.StringTerm(b.X5T)))
	}
	return nil
}
