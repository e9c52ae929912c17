package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeConn is a connection that only records whether it was closed and
// returns data on Read.
type fakeConn struct {
	net.Conn
	closed atomic.Bool
}

func (c *fakeConn) Read(b []byte) (int, error) { return copy(b, "GET"), nil }
func (c *fakeConn) Close() error               { c.closed.Store(true); return nil }

// fakeListener hands out fakeConns.
type fakeListener struct {
	net.Listener
	conns []*fakeConn
}

func (l *fakeListener) Accept() (net.Conn, error) {
	c := &fakeConn{}
	l.conns = append(l.conns, c)
	return c, nil
}

// watched returns a connTimeouts whose time starts at start, and a function
// that accepts a connection (in the header phase).
func watched(t *testing.T, limits timeouts, start time.Time) (*connTimeouts, func() (*timedConn, *fakeConn)) {
	t.Helper()
	w := mustConnTimeouts(t, limits)
	w.start = start
	fl := &fakeListener{}
	ln := w.listener(fl)
	return w, func() (*timedConn, *fakeConn) {
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c.(*timedConn), fl.conns[len(fl.conns)-1]
	}
}

// Each phase has its own limit; a phase ends with net/http's connection
// states (and, for idle, with the next request's first bytes); a connection
// net/http has closed is forgotten.
func TestConnTimeoutsPhases(t *testing.T) {
	limits := timeouts{Header: time.Second, Response: 2 * time.Second, Idle: 3 * time.Second}
	tick := limits.tick() // 100ms
	t0 := time.Unix(1_000_000, 0)
	w, accept := watched(t, limits, t0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	_, headerRaw := accept()                  // accepted at t0: header phase
	response, responseRaw := accept()         // moves to the response phase at 550ms
	idleThenHeader, ithRaw := accept()        // idle at 300ms, next request's bytes at 2s
	closedByHTTP, closedByHTTPRaw := accept() // net/http closes it at 200ms

	type event struct {
		at time.Duration
		do func()
	}
	events := []event{
		{250 * time.Millisecond, func() { w.connState(closedByHTTP, http.StateClosed) }},
		{350 * time.Millisecond, func() { w.connState(idleThenHeader, http.StateIdle) }},
		{550 * time.Millisecond, func() { w.connState(response, http.StateActive) }},
		{2050 * time.Millisecond, func() { _, _ = idleThenHeader.Read(make([]byte, 3)) }},
	}
	closedAt := map[*fakeConn]time.Duration{}
	for now := tick; now <= 5*time.Second; now += tick {
		for _, e := range events {
			if e.at > now-tick && e.at <= now { // between the previous sweep and this one
				e.do()
			}
		}
		w.sweep(func() time.Time { return at(now) })
		for _, c := range []*fakeConn{headerRaw, responseRaw, ithRaw, closedByHTTPRaw} {
			if _, seen := closedAt[c]; !seen && c.closed.Load() {
				closedAt[c] = now
			}
		}
	}
	for _, tc := range []struct {
		name       string
		conn       *fakeConn
		start      time.Duration // when the phase that should time out really began
		limit      time.Duration
		wantClosed bool
	}{
		{"header phase from accept", headerRaw, 0, limits.Header, true},
		{"response phase", responseRaw, 550 * time.Millisecond, limits.Response, true},
		{"header phase after idle", ithRaw, 2050 * time.Millisecond, limits.Header, true},
		{"closed by net/http", closedByHTTPRaw, 0, 0, false},
	} {
		got, closed := closedAt[tc.conn]
		switch {
		case closed != tc.wantClosed:
			t.Errorf("%s: closed %v, want %v", tc.name, closed, tc.wantClosed)
		case !closed:
		case got-tc.start < tc.limit:
			t.Errorf("%s: closed %v after its phase began, before its limit %v", tc.name, got-tc.start, tc.limit)
		case got-tc.start > tc.limit+2*tick:
			t.Errorf("%s: closed %v after its phase began, more than two ticks after its limit %v", tc.name, got-tc.start, tc.limit)
		}
	}
	if n := len(w.conns); n != 0 {
		t.Errorf("%d connections still tracked, want none (closed ones are forgotten)", n)
	}
}

// Whatever the gaps between sweeps (a watcher held back by a CPU quota, or
// a stall of an hour) and whenever phases begin, no connection is closed
// before its limit, and every one is closed by the first sweep at least its
// limit after the first sweep after its start; a long stall does not loosen
// the limits of connections that begin after it.
func TestConnTimeoutsNeverEarlyNeverLoose(t *testing.T) {
	const limit = time.Second
	limits := timeouts{Header: limit, Response: limit, Idle: limit}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		t0 := time.Unix(2_000_000, 0)
		w, accept := watched(t, limits, t0)
		type tracked struct {
			raw      *fakeConn
			start    time.Duration // real start of its phase
			deadline time.Duration // by when it must be closed
		}
		var conns []tracked
		var now time.Duration
		var gaps []time.Duration
		stallAt := rng.IntN(40)
		for i := range 80 {
			gap := time.Duration(50+rng.IntN(250)) * time.Millisecond // half a tick to three ticks
			if i == stallAt {
				gap = time.Hour
			}
			gaps = append(gaps, gap)
			// Connections accepted before the next sweep record the last one;
			// their real start is somewhere in the gap.
			for range rng.IntN(3) {
				_, raw := accept()
				conns = append(conns, tracked{raw, now + time.Duration(rng.Int64N(int64(gap))), -1})
			}
			now += gap
			w.sweep(func() time.Time { return t0.Add(now) })
			for j := range conns {
				c := &conns[j]
				if c.raw.closed.Load() && now-c.start < limit {
					t.Fatalf("round %d: closed %v after its phase began, before the %v limit", round, now-c.start, limit)
				}
				if c.deadline < 0 && now >= c.start {
					// This is the first sweep after its start: it must be
					// closed by the first sweep at or after now+limit.
					c.deadline = now + limit
				}
				if !c.raw.closed.Load() && c.deadline >= 0 && now >= c.deadline {
					t.Fatalf("round %d: still open %v after its phase began, past the sweep due at %v after its start (gaps %v)",
						round, now-c.start, c.deadline-c.start, gaps)
				}
			}
		}
	}
}

// deadlineRecorder records the deadlines net/http sets on a connection.
type deadlineRecorder struct {
	net.Conn
	mu     sync.Mutex
	future int // deadlines after the time they were set: runtime timers
	calls  int
}

func (c *deadlineRecorder) record(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if t.After(time.Now()) {
		c.future++
	}
}

func (c *deadlineRecorder) SetReadDeadline(t time.Time) error {
	c.record(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	c.record(t)
	return c.Conn.SetWriteDeadline(t)
}

type recordingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*deadlineRecorder
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	r := &deadlineRecorder{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, r)
	l.mu.Unlock()
	return r, nil
}

// What connTimeouts is for, on the real net/http server: with the timeouts
// enforced, a keep-alive request sets no deadline in the future, so no
// runtime timer (net/http still clears deadlines and aborts its background
// read with one in the past, as it does with no timeouts at all).
func TestConnTimeoutsSetNoTimers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingListener{Listener: ln}
	ct := mustConnTimeouts(t, defaultTimeouts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ct.run(ctx)
	srv := newServer(newRouter("h"), slog.New(slog.DiscardHandler), false, ct)
	go srv.Serve(ct.listener(rec))
	defer srv.Close()

	const requests = 100
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := range requests {
		if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	time.Sleep(50 * time.Millisecond) // the server's last calls after its last response
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.conns) != 1 {
		t.Fatalf("%d connections accepted, want 1", len(rec.conns))
	}
	c := rec.conns[0]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls < requests {
		t.Errorf("net/http set deadlines %d times for %d requests: has net/http changed?", c.calls, requests)
	}
	if c.future != 0 {
		t.Errorf("net/http set %d deadlines in the future for %d requests, want none (each is a runtime timer)", c.future, requests)
	}
}

// The watcher's ticker ticks, and stop ends a wait that is under way (run
// returns when its context is done).
func TestSweepTicker(t *testing.T) {
	const d = 20 * time.Millisecond
	ticker, err := newSweepTicker(d)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 3 {
		if !ticker.wait() {
			t.Fatal("wait = false before stop")
		}
	}
	if elapsed := time.Since(start); elapsed < 3*d-5*time.Millisecond || elapsed > 3*d+time.Second {
		t.Errorf("three ticks of %v took %v", d, elapsed)
	}
	done := make(chan bool, 1)
	go func() {
		for ticker.wait() {
		}
		done <- true
	}()
	time.Sleep(3 * d)
	ticker.stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("wait still blocked 5 s after stop")
	}
}
