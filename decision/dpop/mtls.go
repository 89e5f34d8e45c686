package dpop

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/url"
)

// CertificateThumbprint returns the x5t#S256 of a client certificate
// (RFC 8705 §3.1: base64url SHA-256 of its DER) given as Envoy gives it in
// attributes.source.certificate: the PEM, URL-encoded. Only the first
// certificate counts (the client's own, not its chain); anything that is
// not one parsable certificate is an error.
func CertificateThumbprint(escapedPEM string) (string, error) {
	// PathUnescape, not QueryUnescape: a '+' of the base64 is a '+'.
	text, err := url.PathUnescape(escapedPEM)
	if err != nil {
		return "", errors.New("the client certificate is not URL-encoded PEM")
	}
	block, _ := pem.Decode([]byte(text))
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("the client certificate is not a PEM certificate")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return "", errors.New("the client certificate cannot be parsed")
	}
	return Thumbprint(block.Bytes), nil
}
