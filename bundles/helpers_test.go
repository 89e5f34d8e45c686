package bundles

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/util"
)

// Queries the tests prepare; "data.mcp.authz.visible" has no rules in the
// fixtures, so it must not be prepared.
var testQueries = []string{"data.mcp.authz.decision", "data.mcp.authz.allow", "data.mcp.authz.visible"}

// policyFiles is a good bundle whose policy and data both carry rev, so an
// evaluation can tell whether they came from the same snapshot.
func policyFiles(rev string) map[string]string {
	return map[string]string{
		".manifest":             fmt.Sprintf(`{"revision": %q, "roots": ["mcp"]}`, rev),
		"mcp/config/data.json":  fmt.Sprintf(`{"tools": ["echo"], "rev": %q}`, rev),
		"mcp/authz/policy.rego": policyRego(rev),
		"mcp/authz/README.md":   "not part of the bundle",
		"mcp/authz/.policy.swp": "editor noise",
	}
}

func policyRego(rev string) string {
	return fmt.Sprintf(`package mcp.authz

default allow := false

allow if {
	input.mcp.method == "tools/call"
	input.mcp.tool.name in data.mcp.config.tools
}

rev := %q

decision := {"allow": allow, "policy_rev": rev, "data_rev": data.mcp.config.rev}
`, rev)
}

// writeTree writes files (slash-separated names) under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tarball packs files into an OPA bundle tarball.
func tarball(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: "/" + name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rsaKeys returns a fresh key pair as PEM (private PKCS#1, public PKIX).
func rsaKeys(t testing.TB) (private, public string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
}

// sign returns files plus a .signatures.json listing each file's hash,
// signed with OPA's bundle signer, as `opa sign` produces.
func sign(t testing.TB, files map[string]string, privatePEM string) map[string]string {
	t.Helper()
	h, err := bundle.NewSignatureHasher(bundle.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var infos []bundle.FileInfo
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if !isBundleFile(filepathBase(name)) {
			continue
		}
		var v any = []byte(files[name])
		if bundle.IsStructuredDoc(name) {
			var doc any
			if err := util.Unmarshal([]byte(files[name]), &doc); err != nil {
				t.Fatal(err)
			}
			v = doc
		}
		sum, err := h.HashFile(v)
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, bundle.NewFile(name, hex.EncodeToString(sum), string(bundle.SHA256)))
	}
	token, err := bundle.GenerateSignedToken(infos, bundle.NewSigningConfig(privatePEM, "RS256", ""), "")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := json.Marshal(bundle.SignaturesConfig{Signatures: []string{token}})
	if err != nil {
		t.Fatal(err)
	}
	out := maps.Clone(files)
	out[".signatures.json"] = string(sig)
	return out
}

func filepathBase(name string) string { return name[strings.LastIndex(name, "/")+1:] }

// evalDecision evaluates the snapshot's decision query and returns the
// decision object.
func evalDecision(ctx context.Context, s *Snapshot, tool string) (map[string]any, error) {
	pq, ok := s.Query("data.mcp.authz.decision")
	if !ok {
		return nil, fmt.Errorf("decision query not prepared")
	}
	rs, err := pq.Eval(ctx, evalInput(tool))
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, fmt.Errorf("decision undefined or ambiguous: %v", rs)
	}
	d, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("decision is %T", rs[0].Expressions[0].Value)
	}
	return d, nil
}

func evalInput(tool string) rego.EvalOption {
	return rego.EvalInput(map[string]any{"mcp": map[string]any{"method": "tools/call", "tool": map[string]any{"name": tool}}})
}
