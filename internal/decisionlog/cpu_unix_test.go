//go:build unix

package decisionlog_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used, user and system: on a
// busy machine, CPU per operation moves far less than time per operation.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
