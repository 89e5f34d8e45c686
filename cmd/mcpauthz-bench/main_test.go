package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestHarnessRuns runs the harness briefly, in rounds, and reads its
// table: both servers answered, mcpauthz decided every request as the
// reference policy does, and a share was printed for each round.
func TestHarnessRuns(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"--concurrency", "2", "--duration", "400ms", "--rounds", "2", "--warmup", "50ms",
		"--variants", "40", "--policy", "../../decision/testdata/bench"}
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	for _, server := range []string{"noop", "mcpauthz"} {
		f := rows[server]
		if len(f) < 10 {
			t.Fatalf("no %s row in:\n%s", server, out.String())
		}
		if n, _ := strconv.Atoi(f[2]); n == 0 {
			t.Errorf("%s: no checks", server)
		}
		if f[8] != "0" {
			t.Errorf("%s: %s RPC errors", server, f[8])
		}
	}
	if got := rows["mcpauthz"][9]; got != "0" {
		t.Errorf("mcpauthz: %s decisions differ from the reference policy's", got)
	}
	if !regexp.MustCompile(`(?m)^rounds\s+\d+\.\d% \d+\.\d%$`).MatchString(out.String()) {
		t.Errorf("no share per round in:\n%s", out.String())
	}
}
