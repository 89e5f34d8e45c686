package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// pinSelf confines every thread of this process to the CPUs in list
// (taskset's syntax, "1" or "2-3,6") and sets GOMAXPROCS to their number,
// so the load generator keeps off the server's CPUs. A thread inherits
// its creator's affinity, so the threads the runtime starts later are
// confined too; the list of threads is read twice in case one was being
// created during the first pass.
func pinSelf(list string) (int, error) {
	cpus, err := parseCPUList(list)
	if err != nil {
		return 0, err
	}
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return 0, fmt.Errorf("--client-cpus: %w", err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return 0, fmt.Errorf("--client-cpus %s: %w", list, err)
			}
		}
	}
	runtime.GOMAXPROCS(len(cpus))
	return len(cpus), nil
}
