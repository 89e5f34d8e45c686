// Package benchgrowth holds what the growth benchmarks (BenchmarkGrowth*,
// docs/performance.md "Costs as the work grows") of several packages
// share. Each size is a sub-benchmark whose last name element is
// "name=size", which `make bench-growth` (mcpauthz-bench --growth) reads
// to print the growth between sizes.
package benchgrowth

import "testing"

// Sizes returns sizes, without those above short when the test binary
// runs with -short: the once-through benchmark run of `make test` leaves
// out the largest sizes, slow to set up. Call it from a benchmark only.
func Sizes(short int, sizes ...int) []int {
	if !testing.Short() {
		return sizes
	}
	var out []int
	for _, n := range sizes {
		if n <= short {
			out = append(out, n)
		}
	}
	return out
}
