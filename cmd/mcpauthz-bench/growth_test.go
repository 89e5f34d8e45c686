package main

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestGrowthTable reads recorded go test -bench output (two runs of two
// families, with the pkg and PASS lines around them) and compares the
// table with testdata/growth.golden.
func TestGrowthTable(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "growth-bench.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := growth(bytes.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "growth.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("growth table differs from %s (go test -run TestGrowthTable -update rewrites it):\n%s", golden, out.String())
	}
}

func TestGrowthExponent(t *testing.T) {
	for _, c := range []struct {
		c1, c2 float64
		n1, n2 int
		word   string
	}{
		{100, 100, 10, 1000, "flat"},
		{100, 1000, 10, 100, "linear"},
		{100, 10000, 10, 100, "**faster than linear**"},
		{100, 1000, 10, 1000, "sublinear"},
	} {
		if got := growthWord(exponent(c.c1, c.c2, c.n1, c.n2)); got != c.word {
			t.Errorf("%v → %v for %d → %d: %s, want %s", c.c1, c.c2, c.n1, c.n2, got, c.word)
		}
	}
	if !math.IsNaN(exponent(0, 1, 1, 10)) {
		t.Error("a zero cost gave an exponent")
	}
}

func TestGrowthNoInput(t *testing.T) {
	err := growth(strings.NewReader("PASS\nBenchmarkDecide/mix-2 10 100 ns/op\n"), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "name=size") {
		t.Errorf("no growth benchmark in the input: error %v", err)
	}
}
