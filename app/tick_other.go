//go:build !linux

package main

import "time"

// newSweepTicker is a time.Ticker where timerfd(2) does not exist; only the
// Linux build avoids the runtime timer (tick_linux.go).
func newSweepTicker(d time.Duration) (sweepTicker, error) { return newRuntimeTicker(d), nil }
