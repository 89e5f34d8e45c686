package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// parseCPUList reads a CPU list as taskset -c and /sys take it: CPU
// numbers and ranges separated by commas ("0", "2-3,6"). It returns the
// CPUs in order, each once.
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= 1024 {
			return nil, fmt.Errorf("CPU list %q: %q is not a CPU number or range (as in 0-3,6)", s, part)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}
