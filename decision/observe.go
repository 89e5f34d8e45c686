package decision

// The observer hook: the engine tells one Observer of every decision.
// Exporters (Prometheus metrics in internal/metrics, OPA-shaped decision
// logs in internal/decisionlog) implement it in their own packages.

import (
	"context"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// observers fans one decision out to several observers.
type observers []Observer

// Observers combines observers into one.
func Observers(obs ...Observer) Observer {
	if len(obs) == 1 {
		return obs[0]
	}
	return observers(obs)
}

// Observe calls each observer in order.
func (o observers) Observe(ctx context.Context, r *Request, d *Decision, input ast.Value, elapsed time.Duration) {
	for _, ob := range o {
		ob.Observe(ctx, r, d, input, elapsed)
	}
}

// InputObserver is an Observer that reads the input it is given. The
// engine otherwise builds only the part of the input the policy reads.
type InputObserver interface {
	Observer
	// ObservesInput reports whether Observe reads its input argument.
	ObservesInput() bool
}

func observesInput(o Observer) bool {
	io, ok := o.(InputObserver)
	return ok && io.ObservesInput()
}

// ObservesInput reports whether one of the observers reads the input.
func (o observers) ObservesInput() bool {
	for _, ob := range o {
		if observesInput(ob) {
			return true
		}
	}
	return false
}
