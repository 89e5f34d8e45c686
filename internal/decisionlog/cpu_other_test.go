//go:build !unix

package decisionlog_test

import "time"

// processCPU is unknown here: cpu-ns/op reads 0.
func processCPU() time.Duration { return 0 }
