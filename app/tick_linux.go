package main

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// timerfdTicker is a sweepTicker on a Linux timerfd(2), read through Go's
// netpoller: the watcher parks without holding a P and without a runtime
// timer. (A sleep in nanosleep(2) also avoids the timer, but the sleeping
// thread keeps its P until sysmon takes it back, which stalled every other
// goroutine for up to ~10 ms per tick with GOMAXPROCS=1.)
type timerfdTicker struct{ f *os.File }

func newSweepTicker(d time.Duration) (sweepTicker, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	period := unix.NsecToTimespec(int64(d))
	if err := unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Interval: period, Value: period}, nil); err != nil {
		_ = unix.Close(fd)
		return nil, os.NewSyscallError("timerfd_settime", err)
	}
	// A non-blocking descriptor: os.NewFile registers it with the netpoller.
	return timerfdTicker{os.NewFile(uintptr(fd), "timerfd")}, nil
}

// wait reads the number of expirations since the last read (8 bytes).
func (t timerfdTicker) wait() bool {
	var expirations [8]byte
	_, err := t.f.Read(expirations[:])
	return err == nil
}

func (t timerfdTicker) stop() { _ = t.f.Close() }
