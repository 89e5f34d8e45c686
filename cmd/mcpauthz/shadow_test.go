package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

func TestShadowConfigErrors(t *testing.T) {
	checkConfigErrors(t, map[string]configErrorCase{
		"bundle_without_source": {"shadow: {bundles: [{name: x}]}", "shadow.bundles[0]"},
		"bundle_bad_url":        {"shadow: {bundles: [{url: ftp://b.example.com}]}", "shadow.bundles[0].url"},
		"queue_size_zero":       {"shadow: {bundles: [{path: p}], queue_size: 0}", "shadow.queue_size"},
		"unknown_key":           {"shadow: {bundle: [{path: p}]}", "shadow.bundle"},
	})
}

// TestShadowFromConfig follows shadow.bundles from the YAML file to the
// decision log: served by the app (listeners off), the shadow bundle loads
// beside the live one, and a decision its changed rule decides otherwise
// gets a second event with shadow_result, counted in
// mcpauthz_shadow_differences_total; a decision both agree on gets none.
func TestShadowFromConfig(t *testing.T) {
	old, _ := filepath.Abs("testdata/replay/old")
	candidate, _ := filepath.Abs("testdata/replay/new")
	logFile := filepath.Join(t.TempDir(), "decisions.log")
	a := loadedApp(t, fmt.Sprintf(`listen: {grpc: "", http: ""}
bundles: [{path: %q}]
shadow: {bundles: [{path: %q}], queue_size: 16}
decision_logs: {file: %q}
`, old, candidate, logFile))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.serve(ctx) }()
	waitFor(t, 10*time.Second, func() bool { return a.shadowBundles.Current() != nil })

	alice := token.Claimed(map[string]any{"sub": "alice", "scope": "mcp:tools", "exp": float64(4102444800)})
	var ids []string
	for i, path := range []string{"/data/a.csv", "/data/public/b.csv"} {
		d := a.engine.Decide(ctx, &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
			Headers:    map[string]string{"content-type": "application/json"},
			Body:       fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"read_file","arguments":{"path":%q}}}`, i, path),
			Credential: alice})
		if !d.Allow {
			t.Fatalf("%s: %s", path, d.Reason)
		}
		ids = append(ids, d.ID)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	// Closing drains the shadow's queue: every decision is compared.
	a.close()
	mfs, err := a.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "mcpauthz_shadow_") {
			for _, m := range mf.GetMetric() {
				lv := ""
				for _, l := range m.GetLabel() {
					lv += l.GetName() + "=" + l.GetValue()
				}
				exported = append(exported, fmt.Sprintf("%s{%s} %v", mf.GetName(), lv, m.GetCounter().GetValue()))
			}
		}
	}
	want := "[mcpauthz_shadow_decisions_total{} 2 mcpauthz_shadow_differences_total{change=allow_to_deny} 1 mcpauthz_shadow_differences_total{change=deny_to_allow} 0 mcpauthz_shadow_differences_total{change=other} 0 mcpauthz_shadow_dropped_total{} 0]"
	if fmt.Sprint(exported) != want {
		t.Errorf("shadow metrics %v\nwant %s", exported, want)
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var shadowEvents []map[string]any
	own := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		if ev["shadow"] == true {
			t.Logf("shadow event: %s", line)
			shadowEvents = append(shadowEvents, ev)
		} else {
			own++
		}
	}
	if own != 2 || len(shadowEvents) != 1 {
		t.Fatalf("%d decision events and %d shadow events, want 2 and 1:\n%s", own, len(shadowEvents), b)
	}
	ev := shadowEvents[0]
	sr, _ := ev["shadow_result"].(map[string]any)
	if ev["decision_id"] != ids[0] || ev["result"].(map[string]any)["allow"] != true || sr["allow"] != false ||
		sr["reason"] != "read_file may not read this path" {
		t.Errorf("shadow event %v: want decision %s, allowed, and the shadow's denial", ev, ids[0])
	}
}
