package decision

import (
	"context"
	"strconv"
	"strings"

	"github.com/mcpauthz/mcpauthz/decision/session"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// SessionBinder remembers which owner a session id is bound to. The engine
// looks the owner up before the policy and binds the session once the
// policy allowed the request (steps.go); session.Binder keeps the table in
// memory, and a shared store can implement the same two calls.
type SessionBinder interface {
	// Owner returns the owner bound to sessionID, or "" when it has none.
	Owner(ctx context.Context, sessionID string) (string, error)
	// Bind makes owner the owner of sessionID unless it has one; it returns
	// the owner that holds it after the call. ErrSessionsFull when the
	// session is new and the table is full.
	Bind(ctx context.Context, sessionID, owner string) (string, error)
}

// ErrSessionsFull is the error a SessionBinder returns for a new session
// when its table is full: the request is refused (code sessions_full) and
// no bound session is forgotten to make room.
var ErrSessionsFull = session.ErrSessionsFull

// SessionOwner is the owner a session bound by a request with this token
// gets: the issuer and the subject, so that two issuers' users with the
// same subject are different owners. The encoding is
// "<byte length of the issuer in decimal>:<issuer>:<subject>" (say
// "21:https://a.example/iss:alice", or "0::alice" for a credential with no
// issuer), which no two (issuer, subject) pairs share. The issuer is the
// configured issuer that verified the token (token.Result.Issuer), else its
// iss claim, else "" (API keys, a JWT entry without an issuer whose tokens
// carry no iss). It is "" for a token that is not valid or has no subject:
// such a request binds nothing.
func SessionOwner(tok *token.Result) string {
	if tok == nil || !tok.Valid || tok.Subject == "" {
		return ""
	}
	iss := tok.Issuer
	if iss == "" {
		iss, _ = tok.Claims["iss"].(string)
	}
	var n [20]byte
	return string(strconv.AppendInt(n[:0], int64(len(iss)), 10)) + ":" + iss + ":" + tok.Subject
}

// ownerSubject returns the subject of an owner SessionOwner encoded, and
// false for a value that is not such an encoding.
func ownerSubject(owner string) (string, bool) {
	digits, rest, ok := strings.Cut(owner, ":")
	if !ok {
		return "", false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || strconv.Itoa(n) != digits || len(rest) < n+1 || rest[n] != ':' {
		return "", false
	}
	return rest[n+1:], true
}
