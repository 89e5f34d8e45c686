package main

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
)

// TestReflectionSwitch: gRPC server reflection answers unless
// listen.reflection is false, and the production example turns it off.
func TestReflectionSwitch(t *testing.T) {
	tests := map[string]struct {
		yaml string
		want bool
	}{
		"default_on":         {yaml: "listen: {grpc: 127.0.0.1:0}\n", want: true},
		"on":                 {yaml: "listen: {reflection: true}\n", want: true},
		"off":                {yaml: "listen: {reflection: false}\n", want: false},
		"off_by_set":         {yaml: "", want: false},
		"production_example": {want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var (
				cfg Config
				err error
			)
			switch name {
			case "production_example":
				cfg, err = LoadConfig("../../examples/config/production.yaml")
			case "off_by_set":
				cfg, err = LoadConfigWith(writeConfig(t, tc.yaml), []string{"listen.reflection=false"})
			default:
				cfg, err = LoadConfig(writeConfig(t, tc.yaml))
			}
			if err != nil {
				t.Fatal(err)
			}
			a := &app{cfg: cfg}
			conn := decisiontest.Dial(t, a.registerReflection)
			stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// A failed Send says io.EOF; the stream's status comes from Recv.
			_ = stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}})
			resp, err := stream.Recv()
			switch {
			case tc.want && err != nil:
				t.Fatalf("reflection on, but listing services failed: %v", err)
			case tc.want && len(resp.GetListServicesResponse().GetService()) == 0:
				t.Fatalf("reflection lists no service: %v", resp)
			case !tc.want && status.Code(err) != codes.Unimplemented:
				t.Fatalf("reflection off, but listing services gave %v, %v; want Unimplemented", resp, err)
			}
		})
	}
}
