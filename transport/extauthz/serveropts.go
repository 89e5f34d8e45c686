package extauthz

// The gRPC server settings mcpauthz uses for Envoy's ext_authz calls, so
// the server and the load harness use the same.

import (
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// streamWorkers is the size of the handler pool: enough for the
// concurrent calls of a busy Envoy; an idle worker costs only its stack.
const streamWorkers = 64

// maxRecvMsgSize is the largest message the server reads: gRPC's own
// bound, not mcpauthz's body limit. A message above MaxRecvMsgSize fails
// the call with RESOURCE_EXHAUSTED before any handler runs, and Envoy's
// failure_mode_allow would then decide; so a body larger than
// limits.max_body_bytes (Envoy's max_request_bytes set higher) is read and
// answered with a 413 denial instead. Envoy, the only client the gRPC port
// should have (loopback, or mTLS), bounds what it buffers.
const maxRecvMsgSize = math.MaxInt32

// maxHeaderListSize bounds the gRPC metadata of one call (HTTP/2 header
// list): Envoy and agentgateway send a few short entries (the route's
// grpc_initial_metadata), the request's own headers travel inside the
// message. gRPC's default, 16 MiB, let a caller hold 8 MiB of metadata per
// held-open ext_proc stream (20 streams: 156 MB). 64 KiB is Envoy's own
// default bound on a request's headers (max_request_headers_kb 60).
const maxHeaderListSize = 64 << 10

// MessageLimit bounds the messages of the services whose protobuf
// package starts with Prefix ("mcpauthz.v1."): gRPC's MaxRecvMsgSize is
// one bound for the whole server, which must be any size for ext_authz,
// so the other services are bounded in ServerCodec, before a message is
// decoded. A message past MaxBytes fails its call (gRPC reports the
// codec's refusal as INTERNAL, with its words): only for services whose callers are not a proxy that a failure mode
// could turn a failed call into an allow.
type MessageLimit struct {
	Prefix   string
	MaxBytes int
}

// ServerOptions returns the server options for an ext_authz server with up
// to maxStreams concurrent calls per connection:
//   - any message Envoy can send is read (maxRecvMsgSize), so that an
//     oversized body is a 413 answer, not a failed call;
//   - many concurrent streams on few connections, as Envoy multiplexes;
//   - keepalive pings from the server, and Envoy's own pings tolerated;
//   - handlers run on a pool of long-lived workers: a goroutine per call
//     (gRPC's default) starts with a small stack that policy evaluation,
//     which recurses deeply, grows on every call; this stack copying took
//     a fifth of the CPU at 32 concurrent calls. Calls beyond the pool
//     still get a goroutine of their own;
//   - ServerCodec, which reads CheckRequests and writes CheckResponses of
//     a service registered with Server.Register
//     without the generic protobuf runtime, and any other message with it.
//   - metadata bounded (maxHeaderListSize), and the messages of the
//     services limits name bounded by ServerCodec (MessageLimit).
func ServerOptions(maxStreams uint32, limits ...MessageLimit) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.MaxHeaderListSize(maxHeaderListSize),
		grpc.MaxConcurrentStreams(maxStreams),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.NumStreamWorkers(streamWorkers),
		grpc.ForceServerCodecV2(ServerCodec(limits...)),
	}
}
