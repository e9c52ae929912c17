package main

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// Lazy connection deadlines.
//
// With its timeouts set, net/http moves a keep-alive connection's deadlines
// eight times per request (net/http/server.go, go1.26: header, whole request,
// write, the background read's clear, abort and clear, write clear, idle).
// Each move is a runtime timer change under the poll descriptor's lock, and
// together they cost more CPU than the handlers (docs/app-performance.md).
//
// A lazyDeadlineConn keeps the deadline net/http asks for (the logical one)
// and moves the socket's deadline (the armed one) only when the logical one
// is earlier than it. A later logical deadline is left for when the armed one
// fires: the read or write that then fails with a timeout re-arms the socket
// and is retried, unless the logical deadline has passed too. The armed
// deadline is therefore never later than the logical one, so every timeout
// fires when net/http says, not later. It is also never set more than
// rearmStep ahead, so that net/http's next header deadline (rearmStep is the
// shortest of the server's timeouts) is never earlier than it: under load a
// request moves the socket's read deadline twice (the abort of net/http's
// background read, then its clear), and its write deadline not at all.

// lazyDeadlineListener wraps every accepted connection in a lazyDeadlineConn.
type lazyDeadlineListener struct {
	net.Listener
	rearmStep time.Duration
}

func (l lazyDeadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newLazyDeadlineConn(c, l.rearmStep), nil
}

// lazyDeadline is one direction's deadlines. Zero times mean no deadline.
type lazyDeadline struct {
	logical time.Time // what the caller last asked for
	armed   time.Time // what the socket has
	expired bool      // armed was already in the past when it was set
	// setSocket is the wrapped connection's SetReadDeadline or SetWriteDeadline.
	setSocket func(time.Time) error
}

type lazyDeadlineConn struct {
	net.Conn
	rearmStep time.Duration

	mu          sync.Mutex // guards read and write: a background read re-arms while net/http aborts it
	read, write lazyDeadline
}

func newLazyDeadlineConn(c net.Conn, rearmStep time.Duration) *lazyDeadlineConn {
	if rearmStep <= 0 {
		panic("lazyDeadlineConn: rearmStep must be positive")
	}
	lc := &lazyDeadlineConn{Conn: c, rearmStep: rearmStep}
	lc.read.setSocket = c.SetReadDeadline
	lc.write.setSocket = c.SetWriteDeadline
	return lc
}

// set records t as d's logical deadline and moves the socket's deadline only if
// t is earlier than the armed one, or the armed one may have passed or was
// never set. Reading the clock costs about as much as moving a timer on a
// virtual machine, so the common paths do neither.
func (c *lazyDeadlineConn) set(d *lazyDeadline, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d.logical = t
	if d.expired || d.armed.IsZero() {
		return c.arm(d, time.Now())
	}
	if t.IsZero() || !t.Before(d.armed) {
		return nil // the armed deadline comes first; it re-arms when it fires
	}
	// Earlier than the armed deadline, which is at most rearmStep away: arm
	// it as it is. It may be in the past (net/http aborts its background
	// read with a deadline in 1970), so the next set re-arms.
	if err := d.setSocket(t); err != nil {
		return err
	}
	d.armed, d.expired = t, true
	return nil
}

// arm sets the socket's deadline to d's logical one, but never more than
// rearmStep from now. Called with c.mu held.
func (c *lazyDeadlineConn) arm(d *lazyDeadline, now time.Time) error {
	next := now.Add(c.rearmStep)
	if !d.logical.IsZero() && d.logical.Before(next) {
		next = d.logical
	}
	if err := d.setSocket(next); err != nil {
		return err
	}
	d.armed = next
	d.expired = next.Before(now)
	return nil
}

// rearm is called after an operation failed with a timeout. It reports
// whether the operation should be retried: the socket's deadline fired but
// the logical one has not passed (or there is none), so the socket now has
// the next armed deadline.
func (c *lazyDeadlineConn) rearm(d *lazyDeadline) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !d.logical.IsZero() && !d.logical.After(d.armed) {
		return false // the socket had the logical deadline itself: a real timeout
	}
	now := time.Now()
	if !d.logical.IsZero() && !now.Before(d.logical) {
		return false // a real timeout
	}
	return c.arm(d, now) == nil
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func (c *lazyDeadlineConn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if n > 0 || err == nil || !isTimeout(err) || !c.rearm(&c.read) {
			return n, err
		}
	}
}

func (c *lazyDeadlineConn) Write(b []byte) (int, error) {
	written := 0
	for {
		n, err := c.Conn.Write(b[written:])
		written += n
		if err == nil || !isTimeout(err) || !c.rearm(&c.write) {
			return written, err
		}
	}
}

func (c *lazyDeadlineConn) SetReadDeadline(t time.Time) error {
	return c.set(&c.read, t)
}

func (c *lazyDeadlineConn) SetWriteDeadline(t time.Time) error {
	return c.set(&c.write, t)
}

func (c *lazyDeadlineConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// CloseWrite keeps net/http's half-close before it closes a connection after
// an error response (conn.closeWriteAndWait), which it finds by interface.
func (c *lazyDeadlineConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
