package credleak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/internal/nodetest"
)

// TestNodeDifferential reads issue 27 row 7's queries (and their kin) with
// Node.js's own parsers, as the upstream (an Express app) reads them:
// whenever Node finds a parameter named access_token, AccessToken finds
// one too; Without leaves none Node can find; and whenever Node decodes a
// value or name holding the token, Find finds the token in the query.
func TestNodeDifferential(t *testing.T) {
	node := nodetest.Node(t)
	queries := []string{
		"x=1;access_token=" + tok, "access%5Ftoken=" + tok, "%61ccess_token=" + tok,
		"access%5ftoken=" + tok, "access_token=" + tok, "x=1&access_token=" + tok + "&y=2",
		"access_token%00=" + tok, "access+token=" + tok, "access_token%20=" + tok,
		"x=" + strings.ReplaceAll(tok, "e", "%65"), "x=" + strings.ReplaceAll(tok, ".", "%2E"),
		"x=%25" + tok, "a=1&&access_token&b", "access_token[]=" + tok, "%E2%80%8Baccess_token=" + tok,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, append([]string{filepath.Join("testdata", "queries.mjs")}, queries...)...).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for sc.Scan() {
		n++
		var got struct {
			Query                       string
			QueryString, URLSearchParam [][2]string
		}
		if err := json.Unmarshal(sc.Bytes(), &struct {
			Query           *string      `json:"query"`
			QueryString     *[][2]string `json:"querystring"`
			URLSearchParams *[][2]string `json:"urlsearchparams"`
		}{&got.Query, &got.QueryString, &got.URLSearchParam}); err != nil {
			t.Fatal(err)
		}
		found, _ := AccessToken(got.Query)
		holdsToken := false
		for _, kv := range append(got.QueryString, got.URLSearchParam...) {
			if kv[0] == AccessTokenParam && !found {
				t.Errorf("%q: Node reads access_token, AccessToken does not", got.Query)
			}
			holdsToken = holdsToken || strings.Contains(kv[0], tok) || strings.Contains(kv[1], tok)
		}
		if holdsToken && Find(tok, "/mcp?"+got.Query, "", nil, nil) == "" {
			t.Errorf("%q: Node decodes the token from it, Find does not see it", got.Query)
		}
	}
	if n != len(queries) {
		t.Fatalf("node answered %d of %d queries:\n%s", n, len(queries), out)
	}
	// What Without leaves, Node reads no access_token from.
	var kept []string
	for _, q := range queries {
		kept = append(kept, Without(q, []string{AccessTokenParam}))
	}
	out, err = exec.CommandContext(ctx, node, append([]string{filepath.Join("testdata", "queries.mjs")}, kept...)...).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	if bytes.Contains(out, []byte(`["access_token",`)) {
		t.Errorf("after Without, Node still reads access_token:\n%s", out)
	}
}
