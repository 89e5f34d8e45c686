package main

import (
	"os"
	"testing"
)

// TestMain removes the binary the tests shared (buildBinary).
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}
