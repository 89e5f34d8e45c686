package decision

import (
	"testing"

	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// BenchmarkDecideEvalWorkers is an allowed tools/call decided with the
// evaluation on a pool worker (the default) and on the caller's own
// goroutine (EvalWorkers < 0): what the handoff costs one caller, whose
// goroutine already has a grown stack.
func BenchmarkDecideEvalWorkers(b *testing.B) {
	for _, tc := range []struct {
		name    string
		workers int
	}{{"pool", 0}, {"inline", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			env := newBenchEnv(b, func(o *Options) { o.EvalWorkers = tc.workers })
			benchDecide(b, env.e, env.requests(b, workload.ToolsCall))
		})
	}
}
