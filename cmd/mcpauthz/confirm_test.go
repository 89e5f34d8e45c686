package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfirmRing: confirm.keys is read into a key ring; every mistake is
// an error naming the key to fix, never a server without its ring.
func TestConfirmRing(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "k1")
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(good, bytes.Repeat([]byte{1}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		cfg  ConfirmConfig
		ring bool
		err  string
	}{
		"none":          {},
		"one_key":       {cfg: ConfirmConfig{Keys: []ConfirmKeyConfig{{ID: "k1", SecretFile: good}}, TTL: Duration(time.Minute)}, ring: true},
		"missing_file":  {cfg: ConfirmConfig{Keys: []ConfirmKeyConfig{{ID: "k1", SecretFile: filepath.Join(dir, "nope")}}}, err: "confirm.keys[0].secret_file"},
		"short_secret":  {cfg: ConfirmConfig{Keys: []ConfirmKeyConfig{{ID: "k1", SecretFile: short}}}, err: `key "k1" has 6 bytes, want 32`},
		"duplicate_ids": {cfg: ConfirmConfig{Keys: []ConfirmKeyConfig{{ID: "k1", SecretFile: good}, {ID: "k1", SecretFile: good}}}, err: "given twice"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ring, err := confirmRing(&tc.cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil || (ring != nil) != tc.ring {
				t.Fatalf("ring %v, error %v; want a ring: %v", ring, err, tc.ring)
			}
		})
	}
}
