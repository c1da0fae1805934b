//go:build !linux

package main

import "time"

// Without /proc the benchmarks report no CPU figures.

func selfCPU() time.Duration                   { return 0 }
func procsCPU(nodes []*nodeProc) time.Duration { return 0 }
func loadAverage() string                      { return "unknown" }
