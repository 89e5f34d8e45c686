package state

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// failing is a store whose every operation fails.
type failing struct{ *Memory }

var errDown = errors.New("down")

func (failing) Once(context.Context, string, time.Duration) (bool, error) { return false, errDown }
func (failing) Get(context.Context, string) (string, bool, error)         { return "", false, errDown }

func TestObservedCountsAndLimitsLogs(t *testing.T) {
	var buf bytes.Buffer
	counts := map[string]int{}
	o := Observe(failing{NewMemory(0, nil)}, func(op string) { counts[op]++ }, slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	o.now = func() time.Time { return now }
	ctx := context.Background()
	for range 10 {
		if _, err := o.Once(ctx, "once:a", time.Minute); !errors.Is(err, errDown) {
			t.Fatalf("Once error %v, want the store's", err)
		}
	}
	_, _, _ = o.Get(ctx, "session:a")
	now = now.Add(LogEvery)
	_, _, _ = o.Get(ctx, "session:a")
	if counts[OpOnce] != 10 || counts[OpGet] != 2 {
		t.Errorf("counted %v, want once 10, get 2", counts)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2 (one per %v):\n%s", len(lines), LogEvery, buf.String())
	}
	if !strings.Contains(lines[1], "failures_not_logged=10") {
		t.Errorf("second line does not count the 10 failures it stood for: %s", lines[1])
	}
}
