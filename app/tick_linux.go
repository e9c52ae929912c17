package main

import (
	"os"
	"syscall"
	"time"
	"unsafe"
)

// timerfdTicker is a sweepTicker on a Linux timerfd(2), read through Go's
// netpoller: the watcher parks without holding a P and without a runtime
// timer. (A sleep in nanosleep(2) also avoids the timer, but the sleeping
// thread keeps its P until sysmon takes it back, which stalled every other
// goroutine for up to ~10 ms per tick with GOMAXPROCS=1.)
type timerfdTicker struct{ f *os.File }

// itimerspec is struct itimerspec of timerfd_settime(2).
type itimerspec struct {
	interval syscall.Timespec
	value    syscall.Timespec
}

const clockMonotonic = 1 // CLOCK_MONOTONIC, linux/time.h

func newSweepTicker(d time.Duration) (sweepTicker, error) {
	fd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return nil, os.NewSyscallError("timerfd_create", errno)
	}
	spec := itimerspec{interval: syscall.NsecToTimespec(int64(d)), value: syscall.NsecToTimespec(int64(d))}
	if _, _, errno := syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
		_ = syscall.Close(int(fd))
		return nil, os.NewSyscallError("timerfd_settime", errno)
	}
	// A non-blocking descriptor: os.NewFile registers it with the netpoller.
	return timerfdTicker{os.NewFile(fd, "timerfd")}, nil
}

// wait reads the number of expirations since the last read (8 bytes).
func (t timerfdTicker) wait() bool {
	var expirations [8]byte
	_, err := t.f.Read(expirations[:])
	return err == nil
}

func (t timerfdTicker) stop() { _ = t.f.Close() }
