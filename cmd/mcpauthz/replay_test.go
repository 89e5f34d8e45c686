package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

var updateReplay = flag.Bool("update-replay", false, "record testdata/replay/decisions.log again and rewrite replay's golden outputs")

// recordReplayLog makes real decisions with the old policy of
// testdata/replay, logged by the real decision log (its mask rule
// included) to a file, and returns the file.
func recordReplayLog(t *testing.T) string {
	t.Helper()
	old, err := filepath.Abs("testdata/replay/old")
	if err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "decisions.log")
	a := loadedApp(t, fmt.Sprintf("bundles: [{path: %q}]\ndecision_logs: {file: %q}\n", old, logFile))
	alice := token.Claimed(map[string]any{"sub": "alice", "scope": "mcp:tools", "exp": float64(4102444800)})
	call := func(id int, tool, path string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{"path":%q}}}`, id, tool, path)
	}
	for _, r := range []struct {
		method, body string
		cred         token.Credential
	}{
		{"POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, alice},
		{"POST", call(2, "read_file", "/data/public/report.csv"), alice},
		{"POST", call(3, "read_file", "/data/a.csv"), alice}, // the changed rule denies it
		{"POST", call(4, "read_file", "/etc/passwd"), alice},
		{"POST", call(5, "read_file", "/data/secret.txt"), alice}, // its path is masked in the log
		{"POST", call(6, "delete", "/data/a.csv"), alice},
		{"POST", call(7, "search", "/data"), token.Credential{Kind: token.NoCredential}},
		{"POST", `[{"jsonrpc":"2.0","id":8,"method":"ping"},{"jsonrpc":"2.0","id":9,"method":"tools/list"}]`, alice},
		{"POST", `{"jsonrpc":"2.0","id":10,`, alice},
		{"GET", "", alice},
	} {
		a.engine.Decide(context.Background(), &decision.Request{Method: r.method, Path: "/mcp", Host: "mcp.example.com",
			Headers: map[string]string{"content-type": "application/json"}, Body: []byte(r.body), Credential: r.cred})
	}
	a.close()
	return logFile
}

// TestReplay: replaying a recorded log with a changed rule prints each
// changed decision (golden text and JSON) and exits 1; a log nothing of
// which changes exits 0; errors exit 2. The configuration's decision log
// file cannot be opened, so replay never opens it.
func TestReplay(t *testing.T) {
	log := "testdata/replay/decisions.log"
	if *updateReplay {
		b, err := os.ReadFile(recordReplayLog(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(log, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The log without the masked event: nothing changes with the old policy.
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if !strings.Contains(l, `"erased"`) {
			kept = append(kept, l)
		}
	}
	unmasked := filepath.Join(t.TempDir(), "unmasked.log")
	if err := os.WriteFile(unmasked, []byte(strings.Join(kept, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	withPin := filepath.Join(t.TempDir(), "pin.log")
	pinEvent := `{"decision_id":"pin-1","path":"mcpauthz/tool_pin","result":{"allow":false,"code":"tool_pin_mismatch"}}` + "\n"
	if err := os.WriteFile(withPin, []byte(strings.Join(kept, "")+pinEvent), 0o644); err != nil {
		t.Fatal(err)
	}
	notALog := filepath.Join(t.TempDir(), "not.log")
	if err := os.WriteFile(notALog, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"replay", "--config", "testdata/replay/config.yaml"}
	tests := map[string]struct {
		args       []string
		wantCode   int
		golden     string // stdout, compared with testdata/replay/<golden>
		wantOut    string // in stdout
		wantStderr string
	}{
		"changed_text":     {[]string{"--bundle", "testdata/replay/new", log}, 1, "want.txt", "", ""},
		"changed_json":     {[]string{"--bundle", "testdata/replay/new", "-f", "json", log}, 1, "want.json", "", ""},
		"same_policy":      {[]string{"--bundle", "testdata/replay/old", unmasked}, 0, "", "0 changed, 7 unchanged, 2 skipped", ""},
		"pin_event":        {[]string{"--bundle", "testdata/replay/old", withPin}, 0, "", "pin-1: a tool pin mismatch event, not a decision", ""},
		"masked_changes":   {[]string{"--bundle", "testdata/replay/old", log}, 1, "", "(input masked: the masking may be the cause)", ""},
		"missing_log":      {[]string{"--bundle", "testdata/replay/new", "testdata/replay/none.log"}, 2, "", "", "no such file"},
		"not_a_log":        {[]string{"--bundle", "testdata/replay/new", notALog}, 2, "", "", "not.log: after 0 events"},
		"policy_not_found": {[]string{"--bundle", "testdata/replay/none", log}, 2, "", "", "testdata/replay/none"},
		"no_log_argument":  {[]string{"--bundle", "testdata/replay/new"}, 2, "", "", "replay takes one decision log file"},
		"bad_format":       {[]string{"--bundle", "testdata/replay/new", "-f", "yaml", log}, 2, "", "", `--format "yaml" is not text or json`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append(base, tc.args...)...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errOut)
			}
			if !strings.Contains(out, tc.wantOut) || !strings.Contains(errOut, tc.wantStderr) {
				t.Errorf("stdout %q\nstderr %q\nwant %q in stdout, %q in stderr", out, errOut, tc.wantOut, tc.wantStderr)
			}
			if tc.golden == "" {
				return
			}
			path := filepath.Join("testdata/replay", tc.golden)
			if *updateReplay {
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update-replay to write it)", err)
			}
			if diff := cmp.Diff(string(want), out); diff != "" {
				t.Errorf("output (-golden +got):\n%s", diff)
			}
		})
	}
}

// TestReplayFreshRecording: a log the decision logger writes now replays
// as the committed one does (decision ids and file name aside), so the
// committed log stays what the logger writes.
func TestReplayFreshRecording(t *testing.T) {
	fresh := recordReplayLog(t)
	code, out, errOut := runCLI(t, "replay", "--config", "testdata/replay/config.yaml", "--bundle", "testdata/replay/new", fresh)
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want, err := os.ReadFile("testdata/replay/want.txt")
	if err != nil {
		t.Fatal(err)
	}
	ids := regexp.MustCompile(`[0-9a-f]{12}-[0-9a-z]+`)
	norm := func(s, file string) string { return ids.ReplaceAllString(strings.ReplaceAll(s, file, "<log>"), "<id>") }
	if diff := cmp.Diff(norm(string(want), "testdata/replay/decisions.log"), norm(out, fresh)); diff != "" {
		t.Errorf("fresh log's replay (-committed +fresh):\n%s", diff)
	}
}
