package shadow_test

import (
	"context"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/internal/shadow"
)

// BenchmarkDecideShadow is the shadow bundle's cost on the decision path:
// one allowed tools/call decided with no shadow, with a shadow whose
// worker keeps up or falls behind (queue_size 1024), and with a shadow
// whose worker is stuck (every decision finds the queue full and is
// dropped). The decision path only hands two pointers to a channel, so
// allocs/op must be the same in all three; ns/op is indicative on a busy
// machine (the running worker competes for the CPU).
func BenchmarkDecideShadow(b *testing.B) {
	cases := map[string]func(b *testing.B) decision.Observer{
		"off": func(*testing.B) decision.Observer { return nil },
		"on": func(b *testing.B) decision.Observer {
			sh, err := shadow.New(shadow.Options{Engine: candidate(b)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(sh.Close)
			return sh
		},
		"on_queue_full": func(b *testing.B) decision.Observer {
			binder := &blockingBinder{entered: make(chan struct{}, 1), release: make(chan struct{})}
			opts := candidate(b)
			opts.Sessions = binder
			sh, err := shadow.New(shadow.Options{Engine: opts, QueueSize: 1})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { close(binder.release); sh.Close() })
			return sh
		},
	}
	for _, name := range []string{"off", "on", "on_queue_full"} {
		b.Run(name, func(b *testing.B) {
			obs := cases[name](b)
			e := decisiontest.NewEngine(b, "testdata/active", func(o *decision.Options) { o.Observer = obs })
			r := call(1, "read_file", "/data/a.csv")
			r.Headers["mcp-session-id"] = "s1"
			ctx := context.Background()
			if d := e.Decide(ctx, r); !d.Allow {
				b.Fatal(d.Reason)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.Decide(ctx, r)
			}
		})
	}
}
