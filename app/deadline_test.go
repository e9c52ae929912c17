package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection: server wrapped
// in a lazyDeadlineConn with the given step, and the raw client.
func tcpPair(t *testing.T, step time.Duration) (*lazyDeadlineConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.FailNow()
	}
	lc := newLazyDeadlineConn(server, step)
	t.Cleanup(func() { lc.Close(); client.Close() })
	return lc, client
}

// readResult is what a Read returned and how long it took.
type readResult struct {
	n       int
	err     error
	elapsed time.Duration
}

func readAsync(c net.Conn, buf []byte) <-chan readResult {
	ch := make(chan readResult, 1)
	start := time.Now()
	go func() {
		n, err := c.Read(buf)
		ch <- readResult{n, err, time.Since(start)}
	}()
	return ch
}

// await waits at most 5 s for a read: a wrapper that re-arms forever must
// fail the test, not hang it.
func await(t *testing.T, ch <-chan readResult) readResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("read still blocked after 5 s")
		return readResult{}
	}
}

func wantTimeout(t *testing.T, err error) {
	t.Helper()
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a net.Error timeout (os.ErrDeadlineExceeded)", err)
	}
}

// The socket's deadline fires every step, but a read only fails at the
// deadline the caller set: not before, and not much after.
func TestLazyDeadlineReadTimesOutAtLogicalDeadline(t *testing.T) {
	const step, deadline = 30 * time.Millisecond, 200 * time.Millisecond
	server, _ := tcpPair(t, step)
	if err := server.SetReadDeadline(time.Now().Add(deadline)); err != nil {
		t.Fatal(err)
	}
	r := await(t, readAsync(server, make([]byte, 1)))
	wantTimeout(t, r.err)
	if r.elapsed < deadline-5*time.Millisecond || r.elapsed > deadline+300*time.Millisecond {
		t.Errorf("read timed out after %v, want about %v", r.elapsed, deadline)
	}
}

// A later deadline is not passed to the socket at once; the read must still
// wait for it, across the socket deadlines that fire in between.
func TestLazyDeadlineLaterDeadlineKeepsReading(t *testing.T) {
	const step = 20 * time.Millisecond
	server, client := tcpPair(t, step)
	if err := server.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := server.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := server.read.armed; !got.Before(time.Now().Add(100 * time.Millisecond)) {
		t.Fatalf("socket deadline moved out to %v at once, want it left at the earlier one", got)
	}
	buf := make([]byte, 5)
	ch := readAsync(server, buf)
	time.Sleep(200 * time.Millisecond) // ten steps
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	r := await(t, ch)
	if r.err != nil || string(buf[:r.n]) != "hello" {
		t.Fatalf("read = %q, %v; want hello", buf[:r.n], r.err)
	}
}

// An earlier deadline reaches the socket at once, whatever the step: a
// shortened deadline, and net/http's abort of its background read.
func TestLazyDeadlineEarlierDeadlineAppliesAtOnce(t *testing.T) {
	const step = 10 * time.Second
	server, _ := tcpPair(t, step)
	if err := server.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := server.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	r := await(t, readAsync(server, make([]byte, 1)))
	wantTimeout(t, r.err)
	if r.elapsed > 100*time.Millisecond+300*time.Millisecond {
		t.Errorf("shortened deadline fired after %v, want about 100ms", r.elapsed)
	}

	if err := server.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	ch := readAsync(server, make([]byte, 1))
	time.Sleep(50 * time.Millisecond)
	if err := server.SetReadDeadline(aLongTimeAgo); err != nil {
		t.Fatal(err)
	}
	r = await(t, ch)
	wantTimeout(t, r.err)
	if r.elapsed > 50*time.Millisecond+300*time.Millisecond {
		t.Errorf("aborted read returned after %v, want at once", r.elapsed)
	}
}

// net/http aborts its background read with a deadline in the past, then
// clears the deadline and reads the next request with none (until it sets
// the idle timeout).
func TestLazyDeadlineAbortThenClear(t *testing.T) {
	const step = 20 * time.Millisecond
	server, client := tcpPair(t, step)
	if err := server.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	ch := readAsync(server, make([]byte, 1))
	time.Sleep(50 * time.Millisecond)
	if err := server.SetReadDeadline(aLongTimeAgo); err != nil {
		t.Fatal(err)
	}
	r := await(t, ch)
	wantTimeout(t, r.err)
	if r.elapsed > 50*time.Millisecond+300*time.Millisecond {
		t.Errorf("aborted read returned after %v, want at once", r.elapsed)
	}

	if err := server.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	ch = readAsync(server, buf)
	time.Sleep(150 * time.Millisecond) // several steps with no deadline set
	if _, err := client.Write([]byte("next")); err != nil {
		t.Fatal(err)
	}
	if r := await(t, ch); r.err != nil || string(buf[:r.n]) != "next" {
		t.Fatalf("read after clearing the deadline = %q, %v; want next", buf[:r.n], r.err)
	}
}

// aLongTimeAgo is the deadline net/http's connReader.abortPendingRead sets.
var aLongTimeAgo = time.Unix(1, 0)

// A writer to a peer that does not read fails at its deadline.
func TestLazyDeadlineWriteTimesOut(t *testing.T) {
	const step, deadline = 30 * time.Millisecond, 250 * time.Millisecond
	server, _ := tcpPair(t, step)
	if err := server.SetWriteDeadline(time.Now().Add(deadline)); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 64<<20) // more than both socket buffers
	start := time.Now()
	n, err := server.Write(payload)
	elapsed := time.Since(start)
	wantTimeout(t, err)
	if n >= len(payload) {
		t.Fatalf("wrote %d bytes, want fewer than %d", n, len(payload))
	}
	if elapsed < deadline-5*time.Millisecond || elapsed > deadline+500*time.Millisecond {
		t.Errorf("write timed out after %v, want about %v", elapsed, deadline)
	}
}

// A long write across several socket deadlines resumes where the socket
// stopped: every byte arrives once, in order.
func TestLazyDeadlineWriteResumes(t *testing.T) {
	const step = 20 * time.Millisecond
	server, client := tcpPair(t, step)
	payload := make([]byte, 16<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	received := make(chan [32]byte, 1)
	go func() {
		time.Sleep(150 * time.Millisecond) // let the writer block past several steps
		h := sha256.New()
		_, _ = io.CopyN(h, client, int64(len(payload)))
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		received <- sum
	}()
	if err := server.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := server.Write(payload)
	if err != nil || n != len(payload) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(payload))
	}
	if got := <-received; got != sha256.Sum256(payload) {
		t.Fatal("the peer received different bytes than were written")
	}
}

// Aborting while the reader re-arms must never leave the reader blocked:
// net/http waits for the aborted read to return.
func TestLazyDeadlineAbortRacesRearm(t *testing.T) {
	const step = time.Millisecond // re-arms constantly
	server, _ := tcpPair(t, step)
	for i := range 100 {
		if err := server.SetReadDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
		ch := readAsync(server, make([]byte, 1))
		time.Sleep(time.Duration(i%7) * time.Millisecond)
		if err := server.SetReadDeadline(aLongTimeAgo); err != nil {
			t.Fatal(err)
		}
		wantTimeout(t, await(t, ch).err)
	}
}

// deadlineCounter counts the deadline moves that reach the connection it
// wraps, and checks that Read and Write pass through.
type deadlineCounter struct {
	net.Conn
	reads, writes atomic.Int64
}

func (c *deadlineCounter) SetReadDeadline(t time.Time) error {
	c.reads.Add(1)
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineCounter) SetWriteDeadline(t time.Time) error {
	c.writes.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

func (c *deadlineCounter) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// countingListener records, for every accepted connection, the deadline
// moves net/http asks for (above the lazyDeadlineConn) and those that reach
// the socket (below it).
type countingListener struct {
	net.Listener
	step time.Duration

	mu           sync.Mutex
	above, below []*deadlineCounter
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	below := &deadlineCounter{Conn: c}
	above := &deadlineCounter{Conn: newLazyDeadlineConn(below, l.step)}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.above, l.below = append(l.above, above), append(l.below, below)
	return above, nil
}

func (l *countingListener) totals() (aboveReads, aboveWrites, belowReads, belowWrites int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.above {
		aboveReads += l.above[i].reads.Load()
		aboveWrites += l.above[i].writes.Load()
		belowReads += l.below[i].reads.Load()
		belowWrites += l.below[i].writes.Load()
	}
	return
}

// What the wrapper is for, measured on the real net/http server: with the
// app's timeouts, net/http moves a keep-alive connection's deadlines about
// eight times per request; the socket's move at most twice (read) and about
// never (write).
func TestLazyDeadlinesUnderNetHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingListener{Listener: ln, step: defaultTimeouts.shortest()}
	srv := newServer(newRouter("h"), slog.New(slog.DiscardHandler), false, defaultTimeouts)
	go srv.Serve(counting)
	defer srv.Close()

	const requests = 200
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
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(body, []byte("Welcome! h\n")) {
			t.Fatalf("request %d: body %q", i, body)
		}
	}
	time.Sleep(50 * time.Millisecond) // the server's last moves after its last response
	aboveReads, aboveWrites, belowReads, belowWrites := counting.totals()
	t.Logf("%d requests: net/http moved deadlines %d (read) + %d (write) times; the socket's moved %d + %d times",
		requests, aboveReads, aboveWrites, belowReads, belowWrites)
	if aboveReads+aboveWrites < 6*requests {
		t.Errorf("net/http moved deadlines only %d times for %d requests: has net/http changed? Re-measure whether the wrapper still pays (docs/app-performance.md)",
			aboveReads+aboveWrites, requests)
	}
	if belowReads > 2*requests+4 {
		t.Errorf("the socket's read deadline moved %d times for %d requests, want at most two per request", belowReads, requests)
	}
	if belowWrites > 4 {
		t.Errorf("the socket's write deadline moved %d times for %d requests, want about none", belowWrites, requests)
	}
}
