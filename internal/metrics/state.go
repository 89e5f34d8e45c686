package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpauthz/mcpauthz/decision/state"
)

// StateErrorsName counts the shared state's failed operations by op.
const StateErrorsName = "mcpauthz_state_errors_total"

// NewStateErrors registers mcpauthz_state_errors_total{op} on reg, every
// op at zero so a dashboard's rate has a series before the first failure,
// and returns the count state.Observe takes.
func NewStateErrors(reg prometheus.Registerer) func(op string) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: StateErrorsName,
		Help: "Operations on the shared state (state.backend) that failed: unreachable, slower than state.redis.read_timeout, an error answer, or the memory store full. A request that needed the operation was refused with state_unavailable.",
	}, []string{"op"})
	byOp := make(map[string]prometheus.Counter)
	for _, op := range state.Ops() {
		byOp[op] = v.WithLabelValues(op)
	}
	if reg != nil {
		reg.MustRegister(v)
	}
	return func(op string) {
		if c, ok := byOp[op]; ok {
			c.Inc()
			return
		}
		v.WithLabelValues(op).Inc()
	}
}
