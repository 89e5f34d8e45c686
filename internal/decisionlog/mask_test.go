package decisionlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// TestMaskAndDrop: the bundle's system.log.mask erases a tool argument and
// upserts another, system.log.drop drops an event, over the event as OPA
// evaluates them; credentials stay erased whatever the rules say.
func TestMaskAndDrop(t *testing.T) {
	pol := compileLogRules(t, "testdata/masked", "system/log/drop")
	if m, d := pol.LogRules(); m == nil || d == nil {
		t.Fatalf("mask %v, drop %v: both rules must be prepared with the snapshot", m, d)
	}
	var out syncBuffer
	e, dl := logEngine(t, pol, &out)
	call := func(tool, args string) *decision.Decision {
		return e.Decide(context.Background(), &decision.Request{Method: "POST", Path: "/mcp?access_token=qs-secret", Host: "mcp.example.com",
			Headers: map[string]string{"content-type": "application/json", "authorization": "Bearer hdr-secret", "cookie": "sid=cookie-secret"},
			Body:    []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + `}}`)})
	}
	masked := call("pay", `{"user":"alice","password":"hunter2","card":"4111111111111111"}`)
	call("noisy", `{}`)
	plain := call("query", `{"sql":"select 1"}`)
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	log := out.b.String()
	for _, secret := range []string{"hunter2", "4111111111111111", "qs-secret", "hdr-secret", "cookie-secret"} {
		if strings.Contains(log, secret) {
			t.Errorf("the decision log holds %q:\n%s", secret, log)
		}
	}
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d events logged, want 2 (noisy dropped):\n%s", len(lines), log)
	}
	type event struct {
		DecisionID string `json:"decision_id"`
		Input      struct {
			MCP struct {
				Tool struct {
					Arguments map[string]any `json:"arguments"`
				} `json:"tool"`
				Params struct {
					Arguments map[string]any `json:"arguments"`
				} `json:"params"`
			} `json:"mcp"`
		} `json:"input"`
		Erased []string `json:"erased"`
		Masked []string `json:"masked"`
	}
	var got [2]event
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &got[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got[0].DecisionID != masked.ID || got[1].DecisionID != plain.ID {
		t.Fatalf("logged %s and %s, want %s and %s", got[0].DecisionID, got[1].DecisionID, masked.ID, plain.ID)
	}
	for _, args := range []map[string]any{got[0].Input.MCP.Tool.Arguments, got[0].Input.MCP.Params.Arguments} {
		if diff := cmp.Diff(map[string]any{"user": "alice", "card": "****"}, args); diff != "" {
			t.Errorf("masked arguments (-want +got):\n%s", diff)
		}
	}
	sorted := func(s []string) []string { slices.Sort(s); return s }
	if diff := cmp.Diff([]string{"/input/mcp/params/arguments/password", "/input/mcp/tool/arguments/password"}, sorted(got[0].Erased)); diff != "" {
		t.Errorf("erased (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/input/mcp/params/arguments/card", "/input/mcp/tool/arguments/card"}, sorted(got[0].Masked)); diff != "" {
		t.Errorf("masked (-want +got):\n%s", diff)
	}
	if got[1].Erased != nil || got[1].Masked != nil || got[1].Input.MCP.Tool.Arguments["sql"] != "select 1" {
		t.Errorf("an event no rule matches changed: %s", lines[1])
	}
}

// TestMaskFollowsValue: a mask or upsert rule written for one copy of a
// value the input holds twice (the tool's, prompt's or resource's view and
// the raw params) applies to the other copy too, so the docs' example
// written for one path only leaks nothing; a copy that is not there is not
// created.
func TestMaskFollowsValue(t *testing.T) {
	tests := map[string]struct {
		body   string
		target string // the one of input.mcp.tool, .prompt, .resource the request has
		secret string
		erased []string
		masked []string
	}{
		"tool_argument_removed_by_tool_path": {
			body:   `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay","arguments":{"user":"alice","password":"hunter2"}}}`,
			target: "tool",
			secret: "hunter2",
			erased: []string{"/input/mcp/params/arguments/password", "/input/mcp/tool/arguments/password"},
		},
		"tool_argument_upserted_by_params_path": {
			body:   `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay","arguments":{"card":"4111111111111111"}}}`,
			target: "tool",
			secret: "4111111111111111",
			masked: []string{"/input/mcp/params/arguments/card", "/input/mcp/tool/arguments/card"},
		},
		"prompt_argument_removed_by_prompt_path": {
			body:   `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"greet","arguments":{"token":"s3cr3t-prompt"}}}`,
			target: "prompt",
			secret: "s3cr3t-prompt",
			erased: []string{"/input/mcp/params/arguments/token", "/input/mcp/prompt/arguments/token"},
		},
		"resource_uri_upserted_by_params_path": {
			body:   `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///home/alice/s3cr3t-uri"}}`,
			target: "resource",
			secret: "s3cr3t-uri",
			masked: []string{"/input/mcp/params/uri", "/input/mcp/resource/uri"},
		},
	}
	pol := compileLogRules(t, "testdata/masked-one-path", "")
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var out syncBuffer
			e, dl := logEngine(t, pol, &out)
			e.Decide(context.Background(), &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
				Headers: map[string]string{"content-type": "application/json"}, Body: []byte(tt.body)})
			if err := dl.Close(); err != nil {
				t.Fatal(err)
			}
			log := out.b.String()
			if strings.Contains(log, tt.secret) {
				t.Errorf("the decision log holds %q:\n%s", tt.secret, log)
			}
			var ev struct {
				Input struct {
					MCP map[string]any `json:"mcp"`
				} `json:"input"`
				Erased []string `json:"erased"`
				Masked []string `json:"masked"`
			}
			if err := json.Unmarshal([]byte(log), &ev); err != nil {
				t.Fatalf("%v: %s", err, log)
			}
			slices.Sort(ev.Erased)
			slices.Sort(ev.Masked)
			if diff := cmp.Diff(tt.erased, ev.Erased); diff != "" {
				t.Errorf("erased (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.masked, ev.Masked); diff != "" {
				t.Errorf("masked (-want +got):\n%s", diff)
			}
			for _, target := range []string{"tool", "prompt", "resource"} {
				if _, ok := ev.Input.MCP[target]; ok && target != tt.target {
					t.Errorf("input.mcp.%s was created: %s", target, log)
				}
			}
		})
	}
}

// compileLogRules compiles the bundle in dir with system.log.mask and the
// drop rule drop ("" for none) as the decision log's rules.
func compileLogRules(t *testing.T, dir, drop string) *decision.Policy {
	t.Helper()
	rules, err := decision.RulesIn("")
	if err != nil {
		t.Fatal(err)
	}
	if rules, err = rules.WithLogRules("system/log/mask", drop); err != nil {
		t.Fatal(err)
	}
	return decisiontest.CompileRules(t, dir, rules)
}

// logEngine returns an engine deciding with pol whose decision log writes
// to out.
func logEngine(t *testing.T, pol *decision.Policy, out *syncBuffer) (*decision.Engine, *decisionlog.Log) {
	t.Helper()
	dl, err := decisionlog.New(decisionlog.Options{Writer: out, Policy: func() *decision.Policy { return pol }})
	if err != nil {
		t.Fatal(err)
	}
	e, err := decision.New(decision.Options{Snapshots: &decisiontest.Snapshots{P: pol}, Observer: dl})
	if err != nil {
		t.Fatal(err)
	}
	return e, dl
}
