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
	each(o, func(po PinObserver) { po.ObservePinMismatch(ctx, r, m) })
}

// observePin tells the observer of a pin mismatch, if it listens.
func (e *Engine) observePin(ctx context.Context, r *Request, m *PinMismatch) {
	tell(e, "pin", "event_id", m.ID, func(po PinObserver) { po.ObservePinMismatch(ctx, r, m) })
}

// ResultObserver is an Observer that is also told what the result rule
// did with each answer it judged (result.go), with the decision that
// allowed the call (its id joins the two events). It must not block, and
// never records the text a redaction matched (ResultOutcome holds none).
type ResultObserver interface {
	Observer
	ObserveResult(ctx context.Context, d *Decision, o *ResultOutcome)
}

// ObserveResult tells each observer that is a ResultObserver.
func (o observers) ObserveResult(ctx context.Context, d *Decision, out *ResultOutcome) {
	each(o, func(ro ResultObserver) { ro.ObserveResult(ctx, d, out) })
}

// observeResult tells the observer of a judged result, if it listens.
func (e *Engine) observeResult(ctx context.Context, d *Decision, o *ResultOutcome) {
	tell(e, "result", "decision_id", d.ID, func(ro ResultObserver) { ro.ObserveResult(ctx, d, o) })
}

// each calls f with each observer that is a T.
func each[T any](o observers, f func(T)) {
	for _, ob := range o {
		if t, ok := ob.(T); ok {
			f(t)
		}
	}
}

// tell calls f with the engine's observer when it is a T (one that listens
// to that kind of event); an observer that panics is logged, with the
// event's id under idKey.
func tell[T any](e *Engine, kind, idKey, id string, f func(T)) {
	t, ok := e.opts.Observer.(T)
	if !ok {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("panic in a "+kind+" observer", idKey, id, "panic", fmt.Sprint(p))
		}
	}()
	f(t)
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
