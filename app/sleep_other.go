//go:build !linux

package main

import "time"

// sleepWithoutTimer is time.Sleep where nanosleep(2) is not in package
// syscall; only the Linux build is tuned (sleep_linux.go).
func sleepWithoutTimer(d time.Duration) { time.Sleep(d) }
