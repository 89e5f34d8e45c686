package authzen_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/transport/authzen"
)

// TestLimits covers issue 28 row 7: a body is bounded by MaxBodyBytes, an
// evaluations call by MaxEvaluations and by the bytes of requests its
// evaluations add up to (a top-level context every evaluation inherits
// counts once per evaluation), each refused before anything is decided.
func TestLimits(t *testing.T) {
	const maxBody = 16 << 10
	var decided atomic.Int64
	e := decisiontest.NewEngine(t, "../../decision/testdata/policy", nil)
	mux := http.NewServeMux()
	authzen.New(countingDecider{e, &decided}, authzen.Options{MCPEndpoint: decisiontest.Resource, TrustSubject: true,
		MaxBodyBytes: maxBody, MaxEvaluations: 10}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	bigContext := `{"pad":"` + strings.Repeat("x", 4<<10) + `"}`
	subject := `"subject":{"type":"user","id":"alice"},"action":{"name":"tools/call"},"resource":{"type":"tool","id":"echo"}`
	evals := func(n int, each string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = "{" + each + "}"
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	tests := map[string]struct {
		path, body string
		status     int
		decisions  int64
	}{
		"body_over_limit":             {authzen.EvaluationPath, `{` + subject + `,"context":{"pad":"` + strings.Repeat("x", maxBody) + `"}}`, 413, 0},
		"too_many_evaluations":        {authzen.EvaluationsPath, `{` + subject + `,"evaluations":` + evals(11, "") + `}`, 400, 0},
		"inherited_context_amplified": {authzen.EvaluationsPath, `{` + subject + `,"context":` + bigContext + `,"evaluations":` + evals(10, "") + `}`, 413, 0},
		"within_limits":               {authzen.EvaluationsPath, `{` + subject + `,"context":` + bigContext + `,"evaluations":` + evals(3, "") + `}`, 200, 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			decided.Store(0)
			resp, err := srv.Client().Post(srv.URL+tc.path, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || decided.Load() != tc.decisions {
				t.Errorf("status %d after %d decisions, want %d after %d", resp.StatusCode, decided.Load(), tc.status, tc.decisions)
			}
		})
	}
}

// TestAuthenticate: Options.Authenticate runs before the body is read and
// its refusal is a 401 with a Bearer challenge; nothing is decided.
func TestAuthenticate(t *testing.T) {
	var decided atomic.Int64
	e := decisiontest.NewEngine(t, "../../decision/testdata/policy", nil)
	mux := http.NewServeMux()
	authzen.New(countingDecider{e, &decided}, authzen.Options{MCPEndpoint: decisiontest.Resource, TrustSubject: true,
		Authenticate: func(r *http.Request) error {
			if r.Header.Get("Authorization") != "Bearer good" {
				return errors.New("no valid API token")
			}
			return nil
		}}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	body := `{"subject":{"type":"user","id":"alice"},"action":{"name":"ping"},"resource":{"type":"server","id":"s"}}`
	for name, tc := range map[string]struct {
		authz  string
		status int
	}{"none": {"", 401}, "wrong": {"Bearer bad", 401}, "good": {"Bearer good", 200}} {
		for _, path := range []string{authzen.EvaluationPath, authzen.EvaluationsPath} {
			t.Run(name+path, func(t *testing.T) {
				decided.Store(0)
				req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
				if tc.authz != "" {
					req.Header.Set("Authorization", tc.authz)
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status || (tc.status == 401) != (decided.Load() == 0) {
					t.Errorf("status %d after %d decisions, want %d", resp.StatusCode, decided.Load(), tc.status)
				}
				if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
					t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
				}
			})
		}
	}
}

type countingDecider struct {
	authzen.Decider
	n *atomic.Int64
}

func (c countingDecider) Decide(ctx context.Context, r *decision.Request) *decision.Decision {
	c.n.Add(1)
	return c.Decider.Decide(ctx, r)
}
