package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// connPair returns the server side (through lazyDeadlineListener) and the
// client side of a loopback TCP connection.
func connPair(t *testing.T) (*lazyDeadlineConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := lazyDeadlineListener{ln}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); client.Close() })
	return c.(*lazyDeadlineConn), client
}

// readAsync reads one byte from c in a goroutine; the channel gets the
// read's error (nil once the byte came).
func readAsync(c net.Conn) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- err
	}()
	return done
}

// readErr waits up to 5 s for a readAsync result.
func readErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("read still blocked after 5 s")
		return nil
	}
}

func wantTimeout(t *testing.T, err error) {
	t.Helper()
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout (os.ErrDeadlineExceeded)", err)
	}
}

func TestLazyDeadlineReadTimesOutOnTime(t *testing.T) {
	c, _ := connPair(t)
	const d = 100 * time.Millisecond
	start := time.Now()
	if err := c.SetReadDeadline(start.Add(d)); err != nil {
		t.Fatal(err)
	}
	wantTimeout(t, readErr(t, readAsync(c)))
	if took := time.Since(start); took < d || took > d+time.Second {
		t.Errorf("read timed out after %v, want about %v", took, d)
	}
	// The deadline stays expired for later reads, as on a plain socket.
	wantTimeout(t, readErr(t, readAsync(c)))
}

func TestLazyDeadlineMovedLaterOrClearedDoesNotFire(t *testing.T) {
	for _, tc := range []struct {
		name  string
		later time.Time // the second deadline
	}{
		{"moved later", time.Now().Add(2 * time.Second)},
		{"cleared", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, client := connPair(t)
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond)) // the timer is set for this
			_ = c.SetReadDeadline(tc.later)
			done := readAsync(c)
			time.Sleep(150 * time.Millisecond) // well past the first deadline
			if _, err := client.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if err := readErr(t, done); err != nil {
				t.Fatalf("read = %v, want the byte: the first deadline no longer applies", err)
			}
		})
	}
}

func TestLazyDeadlineMovedEarlierFiresEarlier(t *testing.T) {
	c, _ := connPair(t)
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(time.Hour))
	_ = c.SetReadDeadline(start.Add(50 * time.Millisecond))
	wantTimeout(t, readErr(t, readAsync(c)))
	if took := time.Since(start); took > time.Second {
		t.Errorf("read timed out after %v, want about 50ms", took)
	}
}

// net/http interrupts its background read with a deadline in the past, then
// clears it and reads on: both must take effect at once.
func TestLazyDeadlinePastInterruptsThenClears(t *testing.T) {
	c, client := connPair(t)
	done := readAsync(c)
	time.Sleep(20 * time.Millisecond)
	_ = c.SetReadDeadline(time.Unix(1, 0))
	select {
	case err := <-done:
		wantTimeout(t, err)
	case <-time.After(time.Second):
		t.Fatal("a past deadline did not interrupt the pending read")
	}
	_ = c.SetReadDeadline(time.Time{})
	if _, err := client.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("read after clearing the deadline = %v, want the byte", err)
	}
}

func TestLazyDeadlineWriteTimesOut(t *testing.T) {
	c, _ := connPair(t) // the client never reads: writes block once the buffers fill
	const d = 100 * time.Millisecond
	start := time.Now()
	_ = c.SetWriteDeadline(start.Add(d))
	_ = c.SetReadDeadline(start.Add(time.Hour)) // the other direction keeps its own deadline
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 1<<16)
		for {
			if _, err := c.Write(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		wantTimeout(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("write still blocked after 5 s")
	}
	if took := time.Since(start); took < d || took > d+2*time.Second {
		t.Errorf("write timed out after %v, want about %v", took, d)
	}
}

func TestLazyDeadlineCloseStopsTimer(t *testing.T) {
	c, _ := connPair(t)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.timer.Stop() {
		t.Error("timer still pending after Close")
	}
	c.expire() // a callback already running when Close came: must not touch the closed socket
}

// The server timeouts still apply through the listener: a client that stops
// in the middle of its request headers, or stays idle between requests, is
// disconnected after ReadHeaderTimeout or IdleTimeout.
func TestServerTimeoutsThroughLazyDeadlines(t *testing.T) {
	const timeout = 150 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           newRouter("h"),
		ReadHeaderTimeout: timeout,
		ReadTimeout:       10 * timeout,
		WriteTimeout:      10 * timeout,
		IdleTimeout:       timeout,
	}
	go srv.Serve(lazyDeadlineListener{ln})
	defer srv.Close()

	// closedAfter waits for the server to close conn and returns how long that took.
	closedAfter := func(conn net.Conn, start time.Time) time.Duration {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, conn); err != nil {
			t.Fatalf("waiting for the server to close the connection: %v", err)
		}
		return time.Since(start)
	}

	t.Run("header timeout", func(t *testing.T) {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil { // no blank line
			t.Fatal(err)
		}
		if took := closedAfter(conn, start); took < timeout || took > timeout+2*time.Second {
			t.Errorf("half-sent request closed after %v, want about %v", took, timeout)
		}
	})

	t.Run("idle timeout", func(t *testing.T) {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		for i := 0; i < 3; i++ { // keep-alive requests still work
			if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d: status %d", i, resp.StatusCode)
			}
		}
		start := time.Now()
		if took := closedAfter(conn, start); took < timeout/2 || took > timeout+2*time.Second {
			t.Errorf("idle connection closed after %v, want about %v", took, timeout)
		}
	})
}
