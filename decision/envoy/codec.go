package envoy

import (
	"context"
	"fmt"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/mcpauthz/mcpauthz/decision"
)

// ServerCodec is the gRPC codec of a server that registers the ext_authz
// service with Register: it decodes CheckRequests and encodes
// CheckResponses itself (wire.go) and hands every other message, of any
// other service on the server, to gRPC's protobuf codec. Install it with
// grpc.ForceServerCodecV2.
func ServerCodec() encoding.CodecV2 {
	return serverCodec{base: encoding.GetCodecV2(protocodec.Name)}
}

type serverCodec struct{ base encoding.CodecV2 }

// Name is protobuf's: the codec changes how, not what, is on the wire.
func (serverCodec) Name() string { return protocodec.Name }

func (c serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*checkResponse)
	if !ok {
		return c.base.Marshal(v)
	}
	n := sizeCheckResponse(r.d)
	pool := mem.DefaultBufferPool()
	buf := pool.Get(n)
	*buf = appendCheckResponse((*buf)[:0], r.d)
	if got := len(*buf); got != n {
		// A size computed apart from the bytes written would send a
		// corrupt message; refuse it instead.
		pool.Put(buf)
		return nil, fmt.Errorf("envoy: CheckResponse encoded to %d bytes, sized %d", got, n)
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*checkRequest)
	if !ok {
		return c.base.Unmarshal(data, v)
	}
	// A message that fits one of gRPC's buffers is read in place: the
	// decoder copies what it keeps, and nothing outlives this call.
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		b = data.Materialize()
	}
	if err := decodeCheck(b, &r.wire); err != nil {
		return fmt.Errorf("decoding CheckRequest: %w", err)
	}
	r.wired = true
	return nil
}

// checkRequest is what the Check handler decodes into. ServerCodec fills
// wire and sets wired; any other protobuf codec sees the embedded
// generated message, which it can decode since *checkRequest is a
// proto.Message through it.
type checkRequest struct {
	authv3.CheckRequest
	wire  wireRequest
	wired bool
	resp  checkResponse // the answer, allocated with the request
}

// checkResponse is an answer that ServerCodec encodes from the decision.
type checkResponse struct{ d *decision.Decision }

// Register registers s as the envoy.service.auth.v3.Authorization service
// of reg, with a Check handler that takes the fast path of ServerCodec when
// the server has it, and the generated types when it does not.
func (s *Server) Register(reg grpc.ServiceRegistrar) {
	reg.RegisterService(&authorizationService, s)
}

var authorizationService = grpc.ServiceDesc{
	ServiceName: authv3.Authorization_ServiceDesc.ServiceName,
	HandlerType: (*authv3.AuthorizationServer)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Check", Handler: checkHandler}},
	Metadata:    authv3.Authorization_ServiceDesc.Metadata,
}

const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

func checkHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	s := srv.(*Server)
	in := &checkRequest{}
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return s.check(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: checkMethod},
		func(ctx context.Context, req any) (any, error) { return s.check(ctx, req.(*checkRequest)) })
}

func (s *Server) check(ctx context.Context, in *checkRequest) (any, error) {
	if !in.wired {
		return s.Check(ctx, &in.CheckRequest)
	}
	if err := in.wire.applyMetadata(&s.opts); err != nil {
		// Envoy sent metadata that is not protobuf: the call fails, and
		// Envoy's failure mode (closed in every example) decides.
		return nil, grpcstatus.Error(codes.InvalidArgument, err.Error())
	}
	in.resp.d = s.engine.Decide(ctx, &in.wire.req)
	return &in.resp, nil
}
