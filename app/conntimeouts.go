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
// read and no runtime timer: each connection records which phase it is in and
// the number of the last sweep before the phase began; one goroutine sweeps
// every tick (a tenth of the shortest limit, woken by a kernel timer: see
// tick_linux.go), keeps the times of its recent sweeps, and closes every
// connection that has been in its phase for too long, as net/http does when
// one of its own timeouts fires. A phase is taken to have begun at the sweep
// after the one it recorded, which is never before it really began, so no
// limit is enforced early; it is enforced at most about two ticks late.
//
// Phases: a connection reads a request's headers from its first byte (or
// from accept), handles the request from the end of the headers (net/http's
// StateActive) to the end of the response, and is idle from then (StateIdle)
// until the next request's first byte arrives. One exception: bytes of the
// next request that arrive together with the previous one (pipelining) are
// already buffered by net/http when the connection goes idle, so that
// request's headers are timed by the idle limit instead, as if the client
// had sent nothing. It gains a client nothing that an idle connection does
// not already give it.

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
	sweeps *atomic.Int64 // the watcher's count of sweeps begun
	phase  atomic.Int32  // a connPhase
	since  atomic.Int64  // the last sweep begun before the phase began
}

// enter stores since before phase: a watcher that sees the new phase also
// sees its start.
func (c *timedConn) enter(p connPhase) {
	c.since.Store(c.sweeps.Load())
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
	start  time.Time    // sweep times are measured from here (monotonic)
	sweeps atomic.Int64 // sweeps begun; sweep 0 is start
	// sweptAt[k%len(sweptAt)] is when sweep k began, for the sweeps that can
	// still matter: twice as many as span the longest limit at one a tick, so
	// that late and early ticks still span it. Only sweep touches it.
	sweptAt []time.Duration

	mu    sync.Mutex
	conns map[*timedConn]struct{}
}

func newConnTimeouts(t timeouts) (*connTimeouts, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	tick := t.tick()
	ring := 2*int(max(t.Header, t.Response, t.Idle)/tick) + 3
	return &connTimeouts{limits: t, tick: tick, start: time.Now(), sweptAt: make([]time.Duration, ring),
		conns: map[*timedConn]struct{}{}}, nil
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
	tc := &timedConn{Conn: c, sweeps: &l.w.sweeps}
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

// run sweeps every tick until ctx is done. It waits on a kernel timer read
// through the netpoller where it can (tick_linux.go), not on a runtime timer:
// while any runtime timer is pending, the scheduler reads the clock on every
// scheduling round, and a single time.Ticker cost about 2.5% of a request.
func (w *connTimeouts) run(ctx context.Context) {
	t, err := newSweepTicker(w.tick)
	if err != nil {
		t = newRuntimeTicker(w.tick) // correct, only dearer
	}
	go func() {
		<-ctx.Done()
		t.stop()
	}()
	for t.wait() {
		w.sweep(time.Now)
	}
}

// sweepTicker wakes the watcher every tick.
type sweepTicker interface {
	wait() bool // blocks until the next tick; false once stopped
	stop()
}

// runtimeTicker is a sweepTicker on a time.Ticker.
type runtimeTicker struct {
	t    *time.Ticker
	done chan struct{}
	once sync.Once
}

func newRuntimeTicker(d time.Duration) *runtimeTicker {
	return &runtimeTicker{t: time.NewTicker(d), done: make(chan struct{})}
}

func (r *runtimeTicker) wait() bool {
	select {
	case <-r.t.C:
		return true
	case <-r.done:
		return false
	}
}

func (r *runtimeTicker) stop() {
	r.once.Do(func() {
		r.t.Stop()
		close(r.done)
	})
}

// sweep begins sweep number n: it records when (now is read after n is
// published, so every phase that recorded n-1 began before this time), then
// closes every connection whose phase has lasted its limit, counting from the
// sweep after the one the phase recorded.
func (w *connTimeouts) sweep(now func() time.Time) {
	n := w.sweeps.Add(1)
	at := now().Sub(w.start)
	ring := int64(len(w.sweptAt))
	w.sweptAt[n%ring] = at
	var overdue []*timedConn
	w.mu.Lock()
	for c := range w.conns {
		phase := connPhase(c.phase.Load()) // before since: see enter
		began := c.since.Load() + 1
		if began > n {
			continue // began after this sweep started
		}
		// A sweep that has left the ring is older than the oldest kept, so
		// counting from the oldest kept can only make the phase look shorter.
		began = max(began, n-ring+1)
		if at-w.sweptAt[began%ring] >= w.limit(phase) {
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
