package workload

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	created, err := LoadOrCreateKeys(path)
	if err != nil {
		t.Fatalf("creating: %v", err)
	}
	loaded, err := LoadOrCreateKeys(path)
	if err != nil {
		t.Fatalf("loading: %v", err)
	}
	if !bytes.Equal(created.JWKS, loaded.JWKS) {
		t.Errorf("the loaded key's JWKS differs from the created one's:\n%s\n%s", created.JWKS, loaded.JWKS)
	}

	bad := map[string]struct {
		content string
		want    string
	}{
		"not_pem":     {"hello", "no PKCS#8 PEM block"},
		"wrong_block": {"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "no PKCS#8 PEM block"},
		"bad_der":     {"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "parsing"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".pem")
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateKeys(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
