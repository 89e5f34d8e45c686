package extauthz_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
)

var update = flag.Bool("update", false, "rewrite golden files")

var adapterOpts = extauthz.Options{JWTMetadataNamespace: "envoy.filters.http.jwt_authn", JWTPayloadKey: "payload"}

// readCheck reads a CheckRequest written as protojson, as Envoy would send it.
func readCheck(t *testing.T, path string) *authv3.CheckRequest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var req authv3.CheckRequest
	if err := protojson.Unmarshal(b, &req); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &req
}

// TestInputGolden builds policy input from CheckRequests shaped as Envoy
// sends them and compares it with golden files.
func TestInputGolden(t *testing.T) {
	e := decisiontest.NewEngine(t, "../../decision/testdata/policy", nil)
	files, err := filepath.Glob("testdata/checks/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no check requests: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			opts := adapterOpts
			r := extauthz.RequestFromCheck(readCheck(t, f), &opts)
			inputs, stopped := e.Inputs(context.Background(), r)
			var got any
			if stopped != nil {
				got = map[string]any{"stopped": map[string]any{
					"code": stopped.Code, "status": stopped.Status, "body": json.RawMessage(stopped.Body),
				}}
			} else {
				arr := make([]any, len(inputs))
				for i, in := range inputs {
					arr[i], err = ast.JSON(in)
					if err != nil {
						t.Fatal(err)
					}
				}
				got = arr
			}
			compareGolden(t, filepath.Join("testdata/inputs", name+".golden.json"), got)
		})
	}
}

func compareGolden(t *testing.T, path string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, b) {
		t.Errorf("%s differs (run with -update after checking):\n got: %s\nwant: %s", path, b, want)
	}
}

// TestCheckOverGRPC calls the adapter through a real gRPC connection and
// checks the CheckResponse of an allowed and a denied tools/call, on a
// server registered as generated code registers it, on the fast path of
// Register with ServerCodec, and on Register without that codec.
func TestCheckOverGRPC(t *testing.T) {
	e := decisiontest.NewEngine(t, "../../decision/testdata/policy", nil)
	servers := map[string]func(t *testing.T) *grpc.ClientConn{
		"generated": func(t *testing.T) *grpc.ClientConn {
			return decisiontest.Dial(t, func(s *grpc.Server) {
				authv3.RegisterAuthorizationServer(s, extauthz.NewServer(e, adapterOpts, nil))
			})
		},
		"server_codec": func(t *testing.T) *grpc.ClientConn {
			return decisiontest.Dial(t, func(s *grpc.Server) {
				extauthz.NewServer(e, adapterOpts, nil).Register(s)
			}, grpc.ForceServerCodecV2(extauthz.ServerCodec()))
		},
		"register_without_codec": func(t *testing.T) *grpc.ClientConn {
			return decisiontest.Dial(t, func(s *grpc.Server) {
				extauthz.NewServer(e, adapterOpts, nil).Register(s)
			})
		},
	}
	for name, dial := range servers {
		t.Run(name, func(t *testing.T) { checkOverGRPC(t, authv3.NewAuthorizationClient(dial(t))) })
	}
}

func checkOverGRPC(t *testing.T, client authv3.AuthorizationClient) {
	tests := map[string]struct {
		path      string
		body      string
		allow     bool
		status    int
		bodyHas   string
		upstream  string
		grpcCode  int32
		removeHdr bool
	}{
		"allowed_read_under_data": {
			path: "/data/reports/q3.csv", allow: true, upstream: "alice", removeHdr: true,
		},
		"denied_by_argument_rule": {
			path: "/etc/passwd", status: 200, grpcCode: 7,
			bodyHas: `"isError":true`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := readCheck(t, "testdata/checks/string_body.json")
			h := req.Attributes.Request.Http
			h.Body = `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"` + tc.path + `"}}}`
			delete(h.Headers, "content-length")
			resp, err := client.Check(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if tc.allow {
				ok := resp.GetOkResponse()
				if ok == nil || resp.GetStatus().GetCode() != 0 {
					t.Fatalf("want OK, got %v", resp)
				}
				if got := ok.GetHeaders()[0].GetHeader(); got.GetKey() != "x-mcp-subject" || got.GetValue() != tc.upstream {
					t.Errorf("upstream header = %v", got)
				}
				if tc.removeHdr && (len(ok.GetHeadersToRemove()) != 1 || ok.GetHeadersToRemove()[0] != "authorization") {
					t.Errorf("headers to remove = %v, want [authorization]", ok.GetHeadersToRemove())
				}
				return
			}
			d := resp.GetDeniedResponse()
			if d == nil {
				t.Fatalf("want denied, got %v", resp)
			}
			if int(d.GetStatus().GetCode()) != tc.status || resp.GetStatus().GetCode() != tc.grpcCode {
				t.Errorf("status = %d grpc %d, want %d grpc %d", d.GetStatus().GetCode(), resp.GetStatus().GetCode(), tc.status, tc.grpcCode)
			}
			if !strings.Contains(d.GetBody(), tc.bodyHas) || !strings.Contains(d.GetBody(), `"id":42`) {
				t.Errorf("body = %s, want it to carry id 42 and %s", d.GetBody(), tc.bodyHas)
			}
			if md := resp.GetDynamicMetadata().GetFields(); md["decision_id"].GetStringValue() == "" {
				t.Errorf("dynamic metadata lacks decision_id: %v", md)
			}
		})
	}
}

// TestResponseFromDecision checks the mapping of a denial to Envoy's types.
func TestResponseFromDecision(t *testing.T) {
	d := &decision.Decision{
		ID: "d1", Code: decision.CodeUnauthenticated, Status: 401, Reason: "authentication required",
		ResponseHeaders: []decision.Header{{Name: "www-authenticate", Value: `Bearer resource_metadata="x"`}},
	}
	resp := extauthz.ResponseFromDecision(d)
	den := resp.GetDeniedResponse()
	if den.GetStatus().GetCode() != 401 || resp.GetStatus().GetCode() != 16 {
		t.Fatalf("got status %d grpc %d, want 401 and UNAUTHENTICATED(16)", den.GetStatus().GetCode(), resp.GetStatus().GetCode())
	}
	if h := den.GetHeaders()[0].GetHeader(); h.GetKey() != "www-authenticate" {
		t.Errorf("header = %v", h)
	}
}

func TestAllowRemovesTokenFromQuery(t *testing.T) {
	resp := extauthz.ResponseFromDecision(&decision.Decision{
		ID: "d2", Allow: true, Code: decision.CodeAllowed,
		RemoveHeaders: []string{"authorization"}, RemoveQueryParams: []string{"access_token"},
	})
	ok := resp.GetOkResponse()
	if got := ok.GetQueryParametersToRemove(); len(got) != 1 || got[0] != "access_token" {
		t.Errorf("query parameters to remove = %v, want [access_token]", got)
	}
	if got := ok.GetHeadersToRemove(); len(got) != 1 || got[0] != "authorization" {
		t.Errorf("headers to remove = %v, want [authorization]", got)
	}
}

// rawCodec sends bytes as they are: a client that is not Envoy.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// TestMalformedCheckOverGRPC sends bytes that are not a CheckRequest to a
// server with ServerCodec: each gets a 400 denial, never a failed call that
// Envoy's failure mode would decide, and the server goes on answering.
func TestMalformedCheckOverGRPC(t *testing.T) {
	e := decisiontest.NewEngine(t, "../../decision/testdata/policy", nil)
	conn := decisiontest.Dial(t, func(s *grpc.Server) {
		extauthz.NewServer(e, adapterOpts, nil).Register(s)
	}, grpc.ForceServerCodecV2(extauthz.ServerCodec()))
	for name, b := range map[string][]byte{
		"truncated_length": {0x0a, 0x7f, 0x01},
		"bad_tag":          {0x80},
		"nested_truncated": {0x0a, 0x02, 0x22, 0x05},
	} {
		t.Run(name, func(t *testing.T) {
			resp := checkRaw(t, conn, b)
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != 400 {
				t.Fatalf("status %d, want 400: %v", got, resp)
			}
			if got := resp.GetDynamicMetadata().GetFields()["code"].GetStringValue(); got != decision.CodeUnreadable {
				t.Errorf("code %q, want %q", got, decision.CodeUnreadable)
			}
		})
	}
	req := readCheck(t, "testdata/checks/string_body.json")
	if _, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), req); err != nil {
		t.Fatalf("a good request after the bad ones: %v", err)
	}
}

// TestRateLimitMetadata: the policy's rate_limit reaches Envoy as one flat
// dynamic metadata key rate_limit.<name> per entry, beside the six keys
// every answer carries, through the server's fast path and the generated
// one; a denial carries none.
func TestRateLimitMetadata(t *testing.T) {
	e := decisiontest.NewEngine(t, "../../decision/testdata/ratelimit", nil)
	servers := map[string][]grpc.ServerOption{"server_codec": {grpc.ForceServerCodecV2(extauthz.ServerCodec())}, "generated": nil}
	tests := map[string]struct {
		shape string
		want  map[string]string // rate_limit keys; nil: a denial
	}{
		"per_tool":   {shape: "per_tool", want: map[string]string{"rate_limit.subject": "alice", "rate_limit.tool": "read_file"}},
		"per_method": {shape: "per_method", want: map[string]string{"rate_limit.subject": "alice", "rate_limit.method": "tools/call"}},
		"none":       {want: map[string]string{}},
		"denied":     {shape: "deny"},
	}
	for sname, opts := range servers {
		conn := decisiontest.Dial(t, func(s *grpc.Server) { extauthz.NewServer(e, adapterOpts, nil).Register(s) }, opts...)
		client := authv3.NewAuthorizationClient(conn)
		for name, tc := range tests {
			t.Run(sname+"/"+name, func(t *testing.T) {
				req := readCheck(t, "testdata/checks/string_body.json")
				if tc.shape != "" {
					req.Attributes.ContextExtensions = map[string]string{"shape": tc.shape}
				}
				resp, err := client.Check(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if (resp.GetOkResponse() != nil) != (tc.want != nil) {
					t.Fatalf("allowed %v, want %v: %v", resp.GetOkResponse() != nil, tc.want != nil, resp)
				}
				got := map[string]string{}
				fields := resp.GetDynamicMetadata().GetFields()
				for k, v := range fields {
					if strings.HasPrefix(k, decision.RateLimitKeyPrefix) {
						got[k] = v.GetStringValue()
					}
				}
				if len(fields) != 6+len(got) || fields["decision_id"].GetStringValue() == "" || fields["subject"].GetStringValue() != "alice" {
					t.Errorf("dynamic metadata %v lacks the six keys every answer carries", fields)
				}
				want := tc.want
				if want == nil {
					want = map[string]string{}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("rate_limit metadata %v, want %v", got, want)
				}
			})
		}
	}
}
