package main

import (
	"net"
	"sync"
	"time"
)

// lazyDeadlineListener hands net/http connections whose deadlines cost no
// runtime timer work per request.
//
// With the server timeouts set, net/http moves a connection's deadlines six
// or seven times per request (idle, header, whole request, write, and
// clearing them), and each move re-arms or stops a runtime timer under locks.
// On a tiny handler that was the largest cost left beside the kernel's. A
// lazyDeadlineConn only records the deadline it is given and keeps one timer
// per connection, set no later than the earliest deadline recorded; when it
// fires, any deadline that has passed is applied to the socket (which fails
// pending and later I/O exactly as an expired deadline would) and the timer is
// set for the next one. Moving a deadline later, or clearing it, touches no
// timer; deadlines in the past (net/http uses them to interrupt a read) go to
// the socket at once. Timeouts therefore fire when they would have, give or
// take the timer's own latency.
type lazyDeadlineListener struct{ net.Listener }

func (l lazyDeadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := &lazyDeadlineConn{Conn: c}
	lc.timer = time.AfterFunc(time.Hour, lc.expire)
	lc.timer.Stop()
	return lc, nil
}

type lazyDeadlineConn struct {
	net.Conn
	timer *time.Timer

	mu           sync.Mutex
	read, write  time.Time // deadlines as last set; zero: none
	fireAt       time.Time // when the timer fires; zero: stopped
	readExpired  bool      // the socket has a past read deadline
	writeExpired bool      // the socket has a past write deadline
	closed       bool
}

// pastDeadline is what the socket is given to fail I/O now.
var pastDeadline = time.Unix(1, 0)

func (c *lazyDeadlineConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *lazyDeadlineConn) SetReadDeadline(t time.Time) error {
	return c.set(t, &c.read, &c.readExpired, c.Conn.SetReadDeadline)
}

func (c *lazyDeadlineConn) SetWriteDeadline(t time.Time) error {
	return c.set(t, &c.write, &c.writeExpired, c.Conn.SetWriteDeadline)
}

// set records deadline t in *d. expired says whether the socket currently
// has a past deadline in that direction; apply sets the socket's.
func (c *lazyDeadlineConn) set(t time.Time, d *time.Time, expired *bool, apply func(time.Time) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	*d = t
	now := time.Now()
	if !t.IsZero() && !t.After(now) {
		*expired = true
		return apply(t)
	}
	if *expired {
		*expired = false
		if err := apply(time.Time{}); err != nil {
			return err
		}
	}
	if !t.IsZero() && !c.closed && (c.fireAt.IsZero() || t.Before(c.fireAt)) {
		c.fireAt = t
		c.timer.Reset(t.Sub(now))
	}
	return nil
}

// expire runs on the timer: it fails the socket's I/O in each direction
// whose deadline has passed and sets the timer for the earliest one left.
func (c *lazyDeadlineConn) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fireAt = time.Time{}
	if c.closed {
		return
	}
	now := time.Now()
	var next time.Time
	for _, dir := range []struct {
		d       time.Time
		expired *bool
		apply   func(time.Time) error
	}{
		{c.read, &c.readExpired, c.Conn.SetReadDeadline},
		{c.write, &c.writeExpired, c.Conn.SetWriteDeadline},
	} {
		switch {
		case dir.d.IsZero() || *dir.expired:
		case !dir.d.After(now):
			*dir.expired = true
			_ = dir.apply(pastDeadline) // on a closed socket there is nothing to fail
		case next.IsZero() || dir.d.Before(next):
			next = dir.d
		}
	}
	if !next.IsZero() {
		c.fireAt = next
		c.timer.Reset(next.Sub(now))
	}
}

func (c *lazyDeadlineConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.timer.Stop()
	c.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close the connection before closing it, as
// it does with a bare *net.TCPConn.
func (c *lazyDeadlineConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil // net/http skips the half-close for sockets without it
}
