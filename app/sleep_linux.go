package main

import (
	"syscall"
	"time"
)

// sleepWithoutTimer blocks the calling goroutine's thread in nanosleep(2) for
// d: no runtime timer is pending meanwhile (see connTimeouts.run). The
// runtime hands the thread's P to other goroutines while it sleeps. A signal
// may end the sleep early, which only makes the next sweep early.
func sleepWithoutTimer(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}
