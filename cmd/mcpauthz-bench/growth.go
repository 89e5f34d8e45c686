package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// --growth reads the output of `go test -bench` on stdin and prints, for
// each family of growth benchmarks (sub-benchmarks whose last name element
// is "name=size", e.g. BenchmarkGrowthBatch/elements=100), a Markdown table
// of the cost at each size, the factor from the previous size and the
// growth exponent k, the cost growing as size^k between the two sizes:
// about 0 flat, about 1 linear, above 1 faster than linear. `make
// bench-growth` runs it on the growth benchmarks.

// benchLine is one result line: its name (GOMAXPROCS suffix removed) and
// its figures by unit.
var (
	benchLineRE = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)
	sizeRE      = regexp.MustCompile(`^(.*)/([A-Za-z_]+)=(\d+)$`)
)

// growthFamily is the results of one benchmark at each size.
type growthFamily struct {
	name, key string
	sizes     []int
	figures   map[int]map[string][]float64 // size -> unit -> values (one per -count)
	units     []string                     // in order of first appearance
}

// readGrowth collects the families of growth benchmarks from bench output.
func readGrowth(r io.Reader) ([]*growthFamily, error) {
	var fams []*growthFamily
	byName := map[string]*growthFamily{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := benchLineRE.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		s := sizeRE.FindStringSubmatch(m[1])
		if s == nil {
			continue
		}
		size, err := strconv.Atoi(s[3])
		if err != nil {
			continue
		}
		id := s[1] + "/" + s[2]
		f := byName[id]
		if f == nil {
			f = &growthFamily{name: s[1], key: s[2], figures: map[int]map[string][]float64{}}
			byName[id] = f
			fams = append(fams, f)
		}
		if f.figures[size] == nil {
			f.figures[size] = map[string][]float64{}
			f.sizes = append(f.sizes, size)
		}
		fields := strings.Fields(m[2])
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: figure %q: %w", m[1], fields[i], err)
			}
			unit := fields[i+1]
			if !slices.Contains(f.units, unit) {
				f.units = append(f.units, unit)
			}
			f.figures[size][unit] = append(f.figures[size][unit], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, f := range fams {
		slices.Sort(f.sizes)
	}
	return fams, nil
}

// figure is the median of a family's values of unit at size; ok false
// when there are none.
func (f *growthFamily) figure(size int, unit string) (float64, bool) {
	vs := slices.Clone(f.figures[size][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	return vs[len(vs)/2], true
}

// exponent is k in cost ∝ size^k between two sizes.
func exponent(c1, c2 float64, n1, n2 int) float64 {
	if c1 <= 0 || c2 <= 0 || n1 == n2 {
		return math.NaN()
	}
	return math.Log(c2/c1) / math.Log(float64(n2)/float64(n1))
}

// growthWord names an exponent.
func growthWord(k float64) string {
	switch {
	case math.IsNaN(k):
		return "-"
	case k < 0.15:
		return "flat"
	case k < 0.8:
		return "sublinear"
	case k < 1.2:
		return "linear"
	default:
		return "**faster than linear**"
	}
}

// printGrowth prints one Markdown table per family.
func printGrowth(w io.Writer, fams []*growthFamily) {
	for _, f := range fams {
		var extra []string
		for _, u := range f.units {
			if u != "ns/op" && u != "B/op" && u != "allocs/op" && u != "MB/s" {
				extra = append(extra, u)
			}
		}
		fmt.Fprintf(w, "\n%s (by %s)\n\n", f.name, f.key)
		fmt.Fprintf(w, "| %s | time/op | × previous | k | B/op | allocs/op |", f.key)
		for _, u := range extra {
			fmt.Fprintf(w, " %s |", u)
		}
		fmt.Fprintf(w, "\n|---|---|---|---|---|---|%s\n", strings.Repeat("---|", len(extra)))
		for i, n := range f.sizes {
			t, _ := f.figure(n, "ns/op")
			factor, k := "", ""
			if i > 0 {
				p := f.sizes[i-1]
				if tp, ok := f.figure(p, "ns/op"); ok && tp > 0 {
					factor = fmt.Sprintf("%.2f", t/tp)
					k = fmt.Sprintf("%.2f", exponent(tp, t, p, n))
				}
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s |", n, duration(t), factor, k, cell(f, n, "B/op", "%.0f"), cell(f, n, "allocs/op", "%.0f"))
			for _, u := range extra {
				fmt.Fprintf(w, " %s |", cell(f, n, u, "%.4g"))
			}
			fmt.Fprintln(w)
		}
		if len(f.sizes) > 1 {
			first, last := f.sizes[0], f.sizes[len(f.sizes)-1]
			t1, _ := f.figure(first, "ns/op")
			t2, _ := f.figure(last, "ns/op")
			k := exponent(t1, t2, first, last)
			fmt.Fprintf(w, "\ntime from %s=%d to %d: ×%.2f for ×%d, k = %.2f: %s", f.key, first, last, t2/t1, last/first, k, growthWord(k))
			if a1, ok1 := f.figure(first, "allocs/op"); ok1 {
				if a2, ok2 := f.figure(last, "allocs/op"); ok2 && a1 > 0 {
					ka := exponent(a1, a2, first, last)
					fmt.Fprintf(w, "; allocations k = %.2f: %s", ka, growthWord(ka))
				}
			}
			fmt.Fprintln(w)
		}
	}
}

func cell(f *growthFamily, n int, unit, format string) string {
	v, ok := f.figure(n, unit)
	if !ok {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// duration prints nanoseconds in the unit that suits them.
func duration(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

// growth is --growth.
func growth(stdin io.Reader, stdout io.Writer) error {
	fams, err := readGrowth(stdin)
	if err != nil {
		return err
	}
	if len(fams) == 0 {
		return fmt.Errorf("--growth: no benchmark result named .../name=size on standard input (pipe go test -bench output in)")
	}
	printGrowth(stdout, fams)
	return nil
}
