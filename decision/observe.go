package decision

// The observer hook: the engine tells one Observer of every decision.
// Exporters (Prometheus metrics in internal/metrics, OPA-shaped decision
// logs in internal/decisionlog) implement it in their own packages.

import (
	"context"
	"fmt"
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

// PinObserver is an Observer that is also told of each listed tool whose
// definition does not match its pin (pins.go), when a list answer is
// filtered. It must not block.
type PinObserver interface {
	Observer
	ObservePinMismatch(ctx context.Context, r *Request, m *PinMismatch)
}

// ObservePinMismatch tells each observer that is a PinObserver.
func (o observers) ObservePinMismatch(ctx context.Context, r *Request, m *PinMismatch) {
	for _, ob := range o {
		if po, ok := ob.(PinObserver); ok {
			po.ObservePinMismatch(ctx, r, m)
		}
	}
}

// observePin tells the observer of a pin mismatch, if it listens; an
// observer that panics is logged.
func (e *Engine) observePin(ctx context.Context, r *Request, m *PinMismatch) {
	po, ok := e.opts.Observer.(PinObserver)
	if !ok {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("panic in a pin observer", "event_id", m.ID, "panic", fmt.Sprint(p))
		}
	}()
	po.ObservePinMismatch(ctx, r, m)
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
