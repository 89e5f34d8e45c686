package extauthz

import (
	"context"
	"fmt"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/mcpauthz/mcpauthz/decision"
)

// ServerCodec is the gRPC codec of a server that registers the ext_authz
// service with Register: it decodes CheckRequests and encodes
// CheckResponses itself (wire.go) and hands every other message, of any
// other service on the server, to gRPC's protobuf codec. Install it with
// grpc.ForceServerCodecV2. A message of a service limits names is refused
// past its bound before it is decoded (MessageLimit).
func ServerCodec(limits ...MessageLimit) encoding.CodecV2 {
	return serverCodec{base: encoding.GetCodecV2(protocodec.Name), limits: limits}
}

type serverCodec struct {
	base   encoding.CodecV2
	limits []MessageLimit
}

// limitFor returns the bound on messages like v, 0 for none.
func (c serverCodec) limitFor(v any) (string, int) {
	if len(c.limits) == 0 {
		return "", 0
	}
	m, ok := v.(protoreflect.ProtoMessage)
	if !ok {
		return "", 0
	}
	name := string(m.ProtoReflect().Descriptor().FullName())
	for _, l := range c.limits {
		if strings.HasPrefix(name, l.Prefix) {
			return name, l.MaxBytes
		}
	}
	return "", 0
}

// Name is protobuf's: the codec changes how, not what, is on the wire.
func (serverCodec) Name() string { return protocodec.Name }

// Marshal encodes a CheckResponse from its decision. It never fails: a
// response it cannot encode (a size computed apart from the bytes written,
// or a panic) is replaced by the fixed denial failsafeResponse, since an
// error here reaches Envoy as a failed call, which failure_mode_allow
// would let through.
func (c serverCodec) Marshal(v any) (out mem.BufferSlice, err error) {
	r, ok := v.(*checkResponse)
	if !ok {
		return c.base.Marshal(v)
	}
	defer func() {
		if p := recover(); p != nil {
			out, err = mem.BufferSlice{mem.SliceBuffer(failsafeResponse)}, nil
		}
	}()
	n := sizeCheckResponse(r.d)
	pool := mem.DefaultBufferPool()
	buf := pool.Get(n)
	*buf = appendCheckResponse((*buf)[:0], r.d)
	if got := len(*buf); got != n {
		pool.Put(buf)
		return mem.BufferSlice{mem.SliceBuffer(failsafeResponse)}, nil
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// failsafeDecision is the answer when a Check cannot be answered otherwise
// (a panic in this adapter, a response that cannot be encoded): a 500
// denial with a JSON-RPC internal error.
var failsafeDecision = decision.InternalError()

// failsafeResponse is failsafeDecision encoded once, at start.
var failsafeResponse = appendCheckResponse(nil, failsafeDecision)

// Unmarshal decodes a CheckRequest. It never fails: a request it cannot
// read becomes a decision.Request marked Unreadable, which the engine
// denies with 400, so that the call still gets a CheckResponse.
//
// A message of another service that reads its own bytes (RawReceiver:
// transport/extmcp's) is given them as they are, so that bytes which are
// not protobuf get that service's answer too, not a gRPC error.
func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) (err error) {
	if rr, ok := v.(RawReceiver); ok {
		rr.ReceiveRaw(data.Materialize())
		return nil
	}
	r, ok := v.(*checkRequest)
	if !ok {
		if name, n := c.limitFor(v); n > 0 && data.Len() > n {
			return status.Errorf(codes.ResourceExhausted, "a %s of %d bytes is larger than the %d bytes accepted (limits.max_body_bytes and the fields around it)", name, data.Len(), n)
		}
		return c.base.Unmarshal(data, v)
	}
	r.wired = true
	defer func() {
		if p := recover(); p != nil {
			r.wire = wireRequest{req: decision.Request{Unreadable: fmt.Sprintf("decoding CheckRequest: panic: %v", p)}}
			err = nil
		}
	}()
	// A message that fits one of gRPC's buffers is read in place: the
	// decoder copies what it keeps, and nothing outlives this call.
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		b = data.Materialize()
	}
	if err := decodeCheck(b, &r.wire); err != nil {
		r.wire = wireRequest{req: decision.Request{Unreadable: "decoding CheckRequest: " + err.Error()}}
	}
	return nil
}

// RawReceiver is a message that takes the bytes of a request as they are,
// to decode them itself and answer what it cannot read. Other transports
// implement it without importing this package.
type RawReceiver interface {
	ReceiveRaw(b []byte)
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

func (s *Server) check(ctx context.Context, in *checkRequest) (out any, err error) {
	if !in.wired {
		return s.Check(ctx, &in.CheckRequest)
	}
	defer func() {
		if p := recover(); p != nil {
			in.resp.d = s.failed(ctx, &in.wire.req, p)
			out, err = &in.resp, nil
		}
	}()
	if in.wire.req.Unreadable == "" {
		if err := in.wire.applyMetadata(&s.opts); err != nil {
			// Envoy sent metadata that is not protobuf: denied, by the
			// engine, rather than a failed call that Envoy's failure mode
			// would decide.
			in.wire.req = decision.Request{Unreadable: err.Error()}
		}
	}
	in.resp.d = s.engine.Decide(ctx, &in.wire.req)
	return &in.resp, nil
}
