package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcpauthz/mcpauthz/decision/session"
)

// sessionKind is the key kind of a session's owner.
const sessionKind = "session:"

// Sessions binds MCP session ids to their owner in a Store, for the engine
// (it is a decision.SessionBinder): over Redis, a session bound on one replica is
// bound on all of them, and of two replicas binding one new session at
// once exactly one owner wins. A binding is forgotten after the TTL
// without a request from its owner.
type Sessions struct {
	store Store
	ttl   time.Duration
}

// NewSessions returns session binding over store, forgetting a session
// idle for ttl.
func NewSessions(store Store, ttl time.Duration) *Sessions {
	return &Sessions{store: store, ttl: ttl}
}

// Owner returns the owner bound to sessionID, "" when it has none.
func (s *Sessions) Owner(ctx context.Context, sessionID string) (string, error) {
	v, _, err := s.store.Get(ctx, sessionKind+sessionID)
	return v, err
}

// Bind makes owner the owner of sessionID unless it has one, and returns
// the owner that holds it after the call; the owner's own Bind keeps the
// session alive for another TTL. The memory store's ErrFull (a new
// session, and no room) is session.ErrSessionsFull, which the engine
// refuses as sessions_full; any other error is the store's.
func (s *Sessions) Bind(ctx context.Context, sessionID, owner string) (string, error) {
	held, err := s.store.Claim(ctx, sessionKind+sessionID, owner, s.ttl)
	if errors.Is(err, ErrFull) {
		return "", fmt.Errorf("%w (%w)", session.ErrSessionsFull, err)
	}
	return held, err
}
