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

	"github.com/mcpauthz/mcpauthz/bundles"
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
	rules, err := decision.RulesIn("")
	if err != nil {
		t.Fatal(err)
	}
	if rules, err = rules.WithLogRules("system/log/mask", "system/log/drop"); err != nil {
		t.Fatal(err)
	}
	pol, err := bundles.CompileWith(context.Background(), bundles.Options{
		Sources: []bundles.Source{bundles.DirSource("testdata/masked")},
		Queries: rules.Queries(),
	}, rules.Activate)
	if err != nil {
		t.Fatal(err)
	}
	if m, d := pol.LogRules(); m == nil || d == nil {
		t.Fatalf("mask %v, drop %v: both rules must be prepared with the snapshot", m, d)
	}
	var out syncBuffer
	dl, err := decisionlog.New(decisionlog.Options{Writer: &out, Policy: func() *decision.Policy { return pol }})
	if err != nil {
		t.Fatal(err)
	}
	e, err := decision.New(decision.Options{Snapshots: &decisiontest.Snapshots{P: pol}, Observer: dl})
	if err != nil {
		t.Fatal(err)
	}
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
