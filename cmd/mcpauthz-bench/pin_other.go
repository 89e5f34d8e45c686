//go:build !linux

package main

import "errors"

// pinSelf is Linux only (sched_setaffinity).
func pinSelf(string) (int, error) {
	return 0, errors.New("--client-cpus is supported on Linux only")
}
