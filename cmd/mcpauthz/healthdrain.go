package main

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// watchEnder ends the gRPC health Watch streams once shutdown has begun
// and each has told its client it is not SERVING. A Watch never ends by
// itself, and GracefulStop waits for every stream: one client watching
// health (gRPC's client-side health checking does) would hold the graceful
// stop until its timeout, and the hard stop after it would cut the Checks
// still in flight.
type watchEnder struct {
	mu       sync.Mutex
	draining bool
	streams  map[*endingWatch]struct{}
}

func newWatchEnder() *watchEnder {
	return &watchEnder{streams: map[*endingWatch]struct{}{}}
}

// intercept gives each Watch stream a context that drain can end.
func (w *watchEnder) intercept(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod != healthpb.Health_Watch_FullMethodName {
		return handler(srv, ss)
	}
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	s := &endingWatch{ServerStream: ss, ctx: ctx, cancel: cancel, w: w}
	w.mu.Lock()
	w.streams[s] = struct{}{}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.streams, s)
		w.mu.Unlock()
	}()
	return handler(srv, s)
}

// drain ends every Watch stream whose client was last told anything but
// SERVING (NOT_SERVING, or SERVICE_UNKNOWN for a name the server does not
// have), and every other one as soon as it has sent NOT_SERVING. Call it
// after the health server's Shutdown, which sends that.
func (w *watchEnder) drain() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.draining = true
	for s := range w.streams {
		if !s.serving {
			s.cancel()
		}
	}
}

// endingWatch is a Watch stream whose context drain ends.
type endingWatch struct {
	grpc.ServerStream
	ctx     context.Context
	cancel  context.CancelFunc
	w       *watchEnder
	serving bool // the last status sent was SERVING; guarded by w.mu
}

func (s *endingWatch) Context() context.Context { return s.ctx }

func (s *endingWatch) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	r, _ := m.(*healthpb.HealthCheckResponse)
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.serving = r.GetStatus() == healthpb.HealthCheckResponse_SERVING
	if !s.serving && s.w.draining {
		// The client has been told; the status is queued before the
		// stream's end, so it is not lost.
		s.cancel()
	}
	return err
}
