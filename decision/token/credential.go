package token

// CredentialKind says where the credential of a request comes from.
type CredentialKind uint8

const (
	// FromHeader, the zero value, verifies the Bearer credential of the
	// request's Authorization header with the Verifier's chain of sources.
	FromHeader CredentialKind = iota
	// NoCredential treats the request as carrying none, whatever its
	// headers say: for deployments where only a verification done before
	// us (Envoy's jwt_authn) is trusted, and that verification found none.
	NoCredential
	// VerifiedClaims is a token payload a trusted party has verified
	// (Envoy's jwt_authn metadata, a trusted Decision API caller, the eval
	// command's request file). Its exp and nbf are still checked (see
	// FromClaims); the Authorization header is not read.
	VerifiedClaims
	// VerifiedResult is a Result that is used as is.
	VerifiedResult
)

// Credential is the one credential a request presents, as its transport
// found it. The zero value means "the Authorization header". Transports
// fill it and the engine resolves it to a Result: one value instead of
// several fields whose precedence every transport had to know.
type Credential struct {
	Kind CredentialKind
	// Claims is the payload of a VerifiedClaims credential. The Result
	// keeps the map: it must not be changed afterwards.
	Claims map[string]any
	// Result is the Result of a VerifiedResult credential.
	Result *Result
}

// Claimed returns the VerifiedClaims credential of claims, or NoCredential
// when claims is nil (the trusted party verified no token).
func Claimed(claims map[string]any) Credential {
	if claims == nil {
		return Credential{Kind: NoCredential}
	}
	return Credential{Kind: VerifiedClaims, Claims: claims}
}
