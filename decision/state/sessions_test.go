package state_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/session"
	"github.com/mcpauthz/mcpauthz/decision/state"
)

var _ decision.SessionBinder = (*state.Sessions)(nil)

// TestSessionsFull: a store with no room refuses a new session with the
// error the engine turns into sessions_full, and keeps bound ones.
func TestSessionsFull(t *testing.T) {
	s := state.NewSessions(state.NewMemory(16, nil), time.Hour) // one key per shard
	ctx := context.Background()
	bound := map[string]bool{}
	full := 0
	for i := range 200 {
		id := fmt.Sprintf("s%d", i)
		_, err := s.Bind(ctx, id, "owner-"+id)
		switch {
		case errors.Is(err, session.ErrSessionsFull):
			full++
		case err != nil:
			t.Fatal(err)
		default:
			bound[id] = true
		}
	}
	if full == 0 {
		t.Fatal("a full store bound every new session")
	}
	for id := range bound {
		if got := must(s.Owner(ctx, id)); got != "owner-"+id {
			t.Errorf("%s: owner %q after the store filled, want owner-%s", id, got, id)
		}
	}
}
