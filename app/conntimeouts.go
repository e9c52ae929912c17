package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Connection timeouts, enforced by a watcher instead of net/http.
//
// net/http's own timeouts (ReadHeaderTimeout, ReadTimeout, WriteTimeout,
// IdleTimeout) move a keep-alive connection's socket deadlines eight times
// per request and read the clock for four of them; each deadline is a runtime
// timer, and while any timer is pending the scheduler reads the clock on every
// scheduling round (runtime.(*timers).check). On a virtual machine a clock
// read costs about 100 ns, and together this made a request about 11% dearer
// than on a server with no timeouts at all (docs/app-performance.md).
//
// connTimeouts enforces the same kind of limits with no per-request clock
// read and no timer at all: each connection records which phase it is in and
// when, by a coarse clock that one goroutine advances every tick, and that
// goroutine closes every connection that has been in its phase for too long,
// as net/http does when one of its own timeouts fires. A limit is never
// enforced early, and about one tick late (a tick is a tenth of the shortest
// limit).
//
// Phases: a connection reads a request's headers from its first byte (or
// from accept), handles the request from the end of the headers (net/http's
// StateActive) to the end of the response, and is idle from then (StateIdle)
// until the next request's first byte arrives.

// timeouts are the limits of each phase. The handlers answer instantly, so
// these only bound slow or stuck clients.
type timeouts struct {
	Header   time.Duration // a request's first byte to the end of its headers (slowloris)
	Response time.Duration // the end of the headers to the end of the response, body included
	Idle     time.Duration // between requests on a keep-alive connection
}

var defaultTimeouts = timeouts{
	Header:   5 * time.Second,
	Response: 10 * time.Second,
	Idle:     60 * time.Second,
}

func (t timeouts) validate() error {
	if t.Header <= 0 || t.Response <= 0 || t.Idle <= 0 {
		return fmt.Errorf("timeouts %+v: every timeout must be positive", t)
	}
	return nil
}

// tick is how often the watcher looks: a tenth of the shortest limit.
func (t timeouts) tick() time.Duration { return min(t.Header, t.Response, t.Idle) / 10 }

type connPhase int32

const (
	phaseHeader connPhase = iota
	phaseResponse
	phaseIdle
)

// timedConn is an accepted connection and the phase it is in.
type timedConn struct {
	net.Conn
	clock *atomic.Int64
	phase atomic.Int32 // a connPhase
	since atomic.Int64 // the coarse clock when the phase began
}

// enter stores since before phase: a watcher that sees the new phase also
// sees its start.
func (c *timedConn) enter(p connPhase) {
	c.since.Store(c.clock.Load())
	c.phase.Store(int32(p))
}

// Read starts the header phase when the first bytes of the next request
// arrive on an idle connection.
func (c *timedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && connPhase(c.phase.Load()) == phaseIdle {
		c.enter(phaseHeader)
	}
	return n, err
}

// CloseWrite keeps net/http's half-close before it closes a connection after
// an error response (conn.closeWriteAndWait), which it finds by interface.
func (c *timedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// connTimeouts tracks the connections of one server and closes those that
// overstay their phase.
type connTimeouts struct {
	limits timeouts
	tick   time.Duration
	clock  atomic.Int64 // Unix nanoseconds at the last tick
	// maxGap is the longest time the clock has stood still: how much earlier
	// than its real start a phase's recorded start can be. Only sweep uses it.
	maxGap time.Duration

	mu    sync.Mutex
	conns map[*timedConn]struct{}
}

func newConnTimeouts(t timeouts) (*connTimeouts, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	w := &connTimeouts{limits: t, tick: t.tick(), maxGap: t.tick(), conns: map[*timedConn]struct{}{}}
	w.clock.Store(time.Now().UnixNano())
	return w, nil
}

// listener wraps every connection ln accepts so that w can time it.
func (w *connTimeouts) listener(ln net.Listener) net.Listener { return timedListener{ln, w} }

type timedListener struct {
	net.Listener
	w *connTimeouts
}

func (l timedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &timedConn{Conn: c, clock: &l.w.clock}
	tc.enter(phaseHeader) // net/http, too, times the first request's headers from accept
	l.w.mu.Lock()
	l.w.conns[tc] = struct{}{}
	l.w.mu.Unlock()
	return tc, nil
}

// connState is the server's ConnState hook: it moves a connection between
// phases and forgets it once net/http is done with it.
func (w *connTimeouts) connState(c net.Conn, s http.ConnState) {
	tc, ok := c.(*timedConn)
	if !ok {
		return
	}
	switch s {
	case http.StateActive:
		tc.enter(phaseResponse)
	case http.StateIdle:
		tc.enter(phaseIdle)
	case http.StateHijacked, http.StateClosed:
		w.mu.Lock()
		delete(w.conns, tc)
		w.mu.Unlock()
	}
}

// run advances the clock and closes overdue connections every tick until
// ctx is done (within a tick). It sleeps in a system call rather than on a
// runtime timer (sleep_linux.go): while any timer is pending the scheduler
// reads the clock on every scheduling round, and that alone cost about 2.5%
// of a request here.
func (w *connTimeouts) run(ctx context.Context) {
	for ctx.Err() == nil {
		sleepWithoutTimer(w.tick)
		w.sweep(time.Now())
	}
}

// sweep closes every connection that has been in its phase longer than the
// phase's limit. A phase's recorded start is the clock of the sweep before it
// began, earlier than the real start by at most the longest gap between
// sweeps, so a connection is closed only once its limit and that gap have
// passed: never early, and about one tick late.
func (w *connTimeouts) sweep(now time.Time) {
	nowNano := now.UnixNano()
	w.maxGap = max(w.maxGap, time.Duration(nowNano-w.clock.Load()))
	w.clock.Store(nowNano)
	var overdue []*timedConn
	w.mu.Lock()
	for c := range w.conns {
		phase := connPhase(c.phase.Load()) // before since: see enter
		if time.Duration(nowNano-c.since.Load()) >= w.limit(phase)+w.maxGap {
			overdue = append(overdue, c)
			delete(w.conns, c)
		}
	}
	w.mu.Unlock()
	for _, c := range overdue {
		_ = c.Conn.Close() // net/http's read or write fails and it drops the connection
	}
}

func (w *connTimeouts) limit(p connPhase) time.Duration {
	switch p {
	case phaseHeader:
		return w.limits.Header
	case phaseResponse:
		return w.limits.Response
	default:
		return w.limits.Idle
	}
}
