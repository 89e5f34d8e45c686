package main

import (
	"log/slog"
	"runtime/debug"
)

// applyRuntimeLimits sets the garbage collector's target and soft memory
// limit from limits.gc_percent and limits.memory_limit_bytes, leaving
// each alone when it is 0 (the GOGC and GOMEMLIMIT environment variables
// then apply). It logs what it changed and the values it replaced. Call it
// once, after the configuration is validated and before serving.
func applyRuntimeLimits(cfg LimitsConfig, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	gc, mem := runtimeLimits(cfg)
	if gc != 0 {
		prev := debug.SetGCPercent(gc)
		log.Info("garbage collector target set", "gc_percent", gc, "previous", prev)
	}
	if mem > 0 {
		prev := debug.SetMemoryLimit(mem)
		log.Info("soft memory limit set", "memory_limit_bytes", mem, "previous", prev)
	}
}

// runtimeLimits returns the GC percent and memory limit to set, 0 for
// "leave as is". A validated config never asks for -1 without a limit;
// should one reach here anyway, the collector is not turned off, since
// with no limit the heap would grow without bound.
func runtimeLimits(cfg LimitsConfig) (gcPercent int, memoryLimit int64) {
	gcPercent = cfg.GCPercent
	if gcPercent < -1 || (gcPercent == -1 && cfg.MemoryLimitBytes <= 0) {
		gcPercent = 0
	}
	if cfg.MemoryLimitBytes > 0 {
		memoryLimit = cfg.MemoryLimitBytes
	}
	return gcPercent, memoryLimit
}
