package extauthz

// The gRPC server settings mcpauthz uses for Envoy's ext_authz calls, so
// the server and the load harness use the same.

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// streamWorkers is the size of the handler pool: enough for the
// concurrent calls of a busy Envoy; an idle worker costs only its stack.
const streamWorkers = 64

// metadataHeadroom is what a CheckRequest carries beside the body:
// headers, attributes and metadata.
const metadataHeadroom = 256 << 10

// ServerOptions returns the server options for an ext_authz server reading
// bodies of up to maxBodyBytes (Envoy's with_request_body.max_request_bytes)
// with up to maxStreams concurrent calls per connection:
//   - the largest message Envoy can send is accepted, with headroom;
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
func ServerOptions(maxBodyBytes int, maxStreams uint32) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxBodyBytes + metadataHeadroom),
		grpc.MaxConcurrentStreams(maxStreams),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.NumStreamWorkers(streamWorkers),
		grpc.ForceServerCodecV2(ServerCodec()),
	}
}
