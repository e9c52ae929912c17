package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestRouter(t *testing.T) {
	h := newRouter("pod-abc")
	tests := []struct {
		method, path string
		wantStatus   int
		wantBody     string // checked when not empty
		wantAllow    string // checked when not empty
	}{
		{http.MethodGet, "/", http.StatusOK, "Welcome! pod-abc\n", ""},
		{http.MethodHead, "/", http.StatusOK, "", ""},
		{http.MethodGet, "/healthz", http.StatusOK, "ok\n", ""},
		{http.MethodHead, "/healthz", http.StatusOK, "", ""},
		{http.MethodGet, "/nope", http.StatusNotFound, "", ""},
		{http.MethodGet, "/healthz/extra", http.StatusNotFound, "", ""},
		{http.MethodPost, "/", http.StatusMethodNotAllowed, "", "GET"},
		{http.MethodDelete, "/healthz", http.StatusMethodNotAllowed, "", "GET"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if tc.wantBody != "" {
				if got := rec.Body.String(); got != tc.wantBody {
					t.Errorf("body = %q, want %q", got, tc.wantBody)
				}
				if got := rec.Header().Get("Content-Type"); got != "text/plain; charset=utf-8" {
					t.Errorf("Content-Type = %q", got)
				}
			}
			if tc.wantAllow != "" && !strings.Contains(rec.Header().Get("Allow"), tc.wantAllow) {
				t.Errorf("Allow = %q, want it to contain %q", rec.Header().Get("Allow"), tc.wantAllow)
			}
		})
	}
}

func TestGreetingNamesHost(t *testing.T) {
	for _, host := range []string{"http-go-7d4b9c-x2k8p", "other-pod"} {
		rec := httptest.NewRecorder()
		newRouter(host).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if want := "Welcome! " + host + "\n"; rec.Body.String() != want {
			t.Errorf("body = %q, want %q", rec.Body.String(), want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLines decodes JSON log lines whose msg equals msg.
func logLines(t *testing.T, out, msg string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		if m["msg"] == msg {
			lines = append(lines, m)
		}
	}
	return lines
}

func TestAccessLog(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.Handler
		method     string
		path       string
		wantStatus float64
		wantBytes  float64
	}{
		{"greeting", newRouter("h1"), http.MethodGet, "/", 200, float64(len("Welcome! h1\n"))},
		{"wrong method", newRouter("h1"), http.MethodPost, "/healthz", 405, -1},
		{"unknown path", newRouter("h1"), http.MethodGet, "/missing", 404, -1},
		{"explicit status", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusCreated)
		}), http.MethodPut, "/things", 201, 0},
		{"writes nothing", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}),
			http.MethodGet, "/empty", 200, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf syncBuffer
			logger := slog.New(slog.NewJSONHandler(&buf, nil))
			rec := httptest.NewRecorder()
			accessLog(tc.handler, logger).ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))

			lines := logLines(t, buf.String(), "request")
			if len(lines) != 1 {
				t.Fatalf("got %d access log lines, want 1; log:\n%s", len(lines), buf.String())
			}
			l := lines[0]
			if l["method"] != tc.method || l["path"] != tc.path || l["status"] != tc.wantStatus {
				t.Errorf("logged method=%v path=%v status=%v, want %s %s %v",
					l["method"], l["path"], l["status"], tc.method, tc.path, tc.wantStatus)
			}
			if float64(rec.Code) != tc.wantStatus {
				t.Errorf("response status %d, want %v (middleware must pass it through)", rec.Code, tc.wantStatus)
			}
			if d, ok := l["duration_ms"].(float64); !ok || d < 0 {
				t.Errorf("duration_ms = %v, want a non-negative number", l["duration_ms"])
			}
			if tc.wantBytes >= 0 && l["bytes"] != tc.wantBytes {
				t.Errorf("bytes = %v, want %v", l["bytes"], tc.wantBytes)
			}
			if l["level"] != "INFO" {
				t.Errorf("level = %v, want INFO", l["level"])
			}
		})
	}
}

// The server leaves net/http's own timeouts off (each costs a timer move per
// request) and hands every connection state change to connTimeouts.
func TestNewServerTimeouts(t *testing.T) {
	for _, accessLogOn := range []bool{false, true} {
		srv := newServer(newRouter("h"), slog.New(slog.DiscardHandler), accessLogOn, mustConnTimeouts(t, defaultTimeouts))
		if srv.ReadHeaderTimeout != 0 || srv.ReadTimeout != 0 || srv.WriteTimeout != 0 || srv.IdleTimeout != 0 {
			t.Errorf("access log %v: net/http timeouts %v %v %v %v, want all off (connTimeouts enforces them)", accessLogOn,
				srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
		}
		// The hook must be connTimeouts': it moves a connection between phases.
		ct := mustConnTimeouts(t, defaultTimeouts)
		srv = newServer(newRouter("h"), slog.New(slog.DiscardHandler), accessLogOn, ct)
		c, err := ct.listener(&fakeListener{}).Accept()
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			state http.ConnState
			want  connPhase
		}{{http.StateActive, phaseResponse}, {http.StateIdle, phaseIdle}, {http.StateActive, phaseResponse}} {
			if srv.ConnState == nil {
				t.Fatalf("access log %v: no ConnState hook: connTimeouts would never see a request start or end", accessLogOn)
			}
			srv.ConnState(c, step.state)
			if got := connPhase(c.(*timedConn).phase.Load()); got != step.want {
				t.Errorf("access log %v: after %v the connection is in phase %d, want %d", accessLogOn, step.state, got, step.want)
			}
		}
		if srv.ErrorLog == nil {
			t.Errorf("access log %v: ErrorLog is nil, want server errors routed to the structured logger", accessLogOn)
		}
	}
	for name, d := range map[string]time.Duration{
		"Header": defaultTimeouts.Header, "Response": defaultTimeouts.Response, "Idle": defaultTimeouts.Idle,
	} {
		// Over a minute (idle: two) is not sane.
		limit := time.Minute
		if name == "Idle" {
			limit = 2 * time.Minute
		}
		if d <= 0 || d > limit {
			t.Errorf("defaultTimeouts.%s = %v, want between 0 and %v", name, d, limit)
		}
	}
}

func TestNewServerAccessLogSwitch(t *testing.T) {
	for _, tc := range []struct {
		accessLogOn bool
		wantLines   int
	}{{false, 0}, {true, 3}} {
		var buf syncBuffer
		srv := newServer(newRouter("h"), slog.New(slog.NewJSONHandler(&buf, nil)), tc.accessLogOn, mustConnTimeouts(t, defaultTimeouts))
		for _, path := range []string{"/", "/healthz", "/missing"} {
			srv.Handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
		}
		if got := len(logLines(t, buf.String(), "request")); got != tc.wantLines {
			t.Errorf("access log %v: %d request lines for 3 requests, want %d; log:\n%s",
				tc.accessLogOn, got, tc.wantLines, buf.String())
		}
	}
}

// startRun starts run on a random loopback port and returns its address and
// a channel that receives run's result.
func startRun(t *testing.T, ctx context.Context, cfg config, h http.Handler, logger *slog.Logger) (string, <-chan error) {
	t.Helper()
	addrCh := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, h, logger, func(a net.Addr) { addrCh <- a.String() })
	}()
	select {
	case addr := <-addrCh:
		return addr, done
	case err := <-done:
		t.Fatalf("run returned before listening: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start listening")
	}
	return "", nil
}

func newClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
}

func TestRunServesRoutes(t *testing.T) {
	for _, tc := range []struct {
		accessLogOn bool
		wantLines   int
	}{{false, 0}, {true, 2}} {
		t.Run(fmt.Sprintf("access log %v", tc.accessLogOn), func(t *testing.T) {
			testRunServesRoutes(t, tc.accessLogOn, tc.wantLines)
		})
	}
}

func testRunServesRoutes(t *testing.T, accessLogOn bool, wantLines int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	addr, done := startRun(t, ctx, config{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, AccessLog: accessLogOn, Timeouts: defaultTimeouts},
		newRouter("test-host"), slog.New(slog.NewJSONHandler(&logs, nil)))

	client := newClient()
	for path, want := range map[string]string{"/": "Welcome! test-host\n", "/healthz": "ok\n"} {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, body, want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v, want nil after a clean shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	out := logs.String()
	if n := len(logLines(t, out, "request")); n != wantLines {
		t.Errorf("got %d access log lines, want %d; log:\n%s", n, wantLines, out)
	}
	// Start and stop are logged whatever the access log setting.
	listening := logLines(t, out, "listening")
	if len(listening) != 1 || listening[0]["access_log"] != accessLogOn {
		t.Errorf("want one listening line with access_log=%v; log:\n%s", accessLogOn, out)
	}
	if len(logLines(t, out, "shutting down")) != 1 || len(logLines(t, out, "stopped")) != 1 {
		t.Errorf("want 'shutting down' and 'stopped' log lines; log:\n%s", out)
	}
}

// Server errors reach the log even with the access log off: here net/http's
// report of a handler panic, which it recovers from by closing the connection.
func TestRunLogsServerErrorsWithAccessLogOff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })
	addr, done := startRun(t, ctx, config{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, Timeouts: defaultTimeouts},
		h, slog.New(slog.NewJSONHandler(&logs, nil)))
	if resp, err := newClient().Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
		t.Errorf("GET / answered %d, want the connection closed by the panic", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run returned %v, want nil", err)
	}
	found := false
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "panic serving") && strings.Contains(line, "boom") {
			found = true
		}
	}
	if !found {
		t.Errorf("no WARN line about the panic; log:\n%s", logs.String())
	}
	if n := len(logLines(t, logs.String(), "request")); n != 0 {
		t.Errorf("got %d access log lines with the access log off, want 0", n)
	}
}

func TestRunDrainsInFlightRequest(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started) // only one request is sent
		<-release
		_, _ = io.WriteString(w, "slow done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	addr, done := startRun(t, ctx, config{Addr: "127.0.0.1:0", ShutdownTimeout: 5 * time.Second, AccessLog: true, Timeouts: defaultTimeouts},
		h, slog.New(slog.NewJSONHandler(&logs, nil)))

	type result struct {
		status int
		body   string
		err    error
	}
	resCh := make(chan result, 1)
	go func() {
		resp, err := newClient().Get("http://" + addr + "/slow")
		if err != nil {
			resCh <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		resCh <- result{resp.StatusCode, string(b), err}
	}()

	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("slow request never reached the handler")
	}
	cancel() // as SIGTERM would

	// The listener closes at once: new connections are refused. (A dial that
	// races the close may still connect or be reset, so poll briefly.)
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
		if err == nil {
			conn.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("new connections not refused after shutdown began (last dial error: %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// run must wait for the in-flight request.
	select {
	case err := <-done:
		t.Fatalf("run returned (%v) while a request was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}

	close(release)
	select {
	case res := <-resCh:
		if res.err != nil || res.status != http.StatusOK || res.body != "slow done" {
			t.Fatalf("in-flight request = %d %q (err %v), want 200 %q", res.status, res.body, res.err, "slow done")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight request did not complete")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after the last request finished")
	}
	out := logs.String()
	if len(logLines(t, out, "shutting down")) != 1 || len(logLines(t, out, "stopped")) != 1 {
		t.Errorf("want 'shutting down' and 'stopped' log lines; log:\n%s", out)
	}
	if reqs := logLines(t, out, "request"); len(reqs) != 1 || reqs[0]["status"] != float64(200) {
		t.Errorf("want one access log line with status 200 for the drained request; log:\n%s", out)
	}
}

func TestRunShutdownTimeout(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select { // a request that outlives the drain period
		case <-release:
		case <-r.Context().Done():
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const drain = 200 * time.Millisecond
	addr, done := startRun(t, ctx, config{Addr: "127.0.0.1:0", ShutdownTimeout: drain, Timeouts: defaultTimeouts},
		h, slog.New(slog.DiscardHandler))

	clientErr := make(chan error, 1)
	go func() {
		resp, err := newClient().Get("http://" + addr + "/stuck")
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	<-started
	begin := time.Now()
	cancel()

	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("run returned %v, want context.DeadlineExceeded", err)
		}
		if took := time.Since(begin); took < drain || took > 3*time.Second {
			t.Errorf("shutdown took %v, want about %v", took, drain)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not give up after the shutdown timeout")
	}
	select {
	case err := <-clientErr:
		if err == nil {
			t.Error("stuck request got a response, want its connection closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stuck request's connection was not closed")
	}
}

func TestRunListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errCh := make(chan error, 1)
	go func() {
		errCh <- run(context.Background(), config{Addr: ln.Addr().String(), ShutdownTimeout: time.Second, Timeouts: defaultTimeouts},
			newRouter("h"), slog.New(slog.DiscardHandler), nil)
	}()
	select {
	case err := <-errCh:
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("run = %v, want EADDRINUSE", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not fail on a busy address")
	}
}

// The timeouts apply through run: a slow client is cut off at each limit,
// not before it and not much after; a busy keep-alive connection is not.
// Shortened timeouts keep the test quick.
func TestRunTimeoutsApply(t *testing.T) {
	short := timeouts{Header: 300 * time.Millisecond, Response: 500 * time.Millisecond, Idle: 900 * time.Millisecond}
	late := 2*short.tick() + 500*time.Millisecond // the watcher's granularity, and scheduling on a busy machine
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // after the parallel subtests
	addr, _ := startRun(t, ctx, config{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second, Timeouts: short},
		newRouter("h"), slog.New(slog.DiscardHandler))

	// within checks that what happened after elapsed came at want, give or take.
	within := func(t *testing.T, what string, elapsed, want time.Duration) {
		t.Helper()
		// The client's clock starts after the server's (at its write, not at
		// accept or at the server's last flush): a little slack below.
		if elapsed < want-25*time.Millisecond || elapsed > want+late {
			t.Errorf("%s after %v, want after %v (up to %v later)", what, elapsed, want, late)
		}
	}
	// closedAfter reads until the server closes conn and returns what it sent
	// and how long after start it closed.
	closedAfter := func(t *testing.T, conn net.Conn, start time.Time) (string, time.Duration) {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(conn)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("reading until the server closes: %v (got %q)", err, got)
		}
		return string(got), time.Since(start)
	}
	dial := func(t *testing.T) net.Conn {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	get := func(t *testing.T, conn net.Conn, br *bufio.Reader) {
		t.Helper()
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "Welcome! h\n" {
			t.Fatalf("body %q", body)
		}
	}

	// A client that stops part way: after before (on a fresh connection), it
	// sends send and waits; the server must close the connection at limit
	// from then, having sent nothing, or only a reply that okReply accepts.
	for _, tc := range []struct {
		name    string
		before  func(t *testing.T, conn net.Conn)
		send    string
		limit   time.Duration
		okReply func(string) bool
	}{
		{"headers never finished: closed at Header", nil, "GET / HTTP/1.1\r\nHost: x\r\n", short.Header, nil},
		{"headers of the next request never finished: closed at Header", func(t *testing.T, conn net.Conn) {
			get(t, conn, bufio.NewReader(conn))
			time.Sleep(short.Idle / 2)
		}, "GET / HTTP/1.1\r\n", short.Header, nil},
		// The handler answers 405 at once, but net/http first reads the
		// unread body so that the connection can be reused
		// (chunkWriter.writeHeader): the response phase never ends.
		{"body never finished: closed at Response", nil, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
			short.Response, func(reply string) bool { return strings.HasPrefix(reply, "HTTP/1.1 405 ") }},
		{"idle keep-alive: closed at Idle", func(t *testing.T, conn net.Conn) { get(t, conn, bufio.NewReader(conn)) }, "", short.Idle, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn := dial(t)
			if tc.before != nil {
				tc.before(t, conn)
			}
			start := time.Now()
			if _, err := io.WriteString(conn, tc.send); err != nil {
				t.Fatal(err)
			}
			got, elapsed := closedAfter(t, conn, start)
			if got != "" && (tc.okReply == nil || !tc.okReply(got)) {
				t.Errorf("server sent %q", got)
			}
			within(t, "closed", elapsed, tc.limit)
		})
	}
	t.Run("busy keep-alive: never closed", func(t *testing.T) {
		t.Parallel()
		conn := dial(t)
		br := bufio.NewReader(conn)
		// Longer than every limit in all, each gap shorter than Idle.
		for end := time.Now().Add(short.Response + short.Idle + short.Header); time.Now().Before(end); {
			get(t, conn, br)
			time.Sleep(short.Idle / 3)
		}
	})
}

// What each route sends on the wire: net/http's Content-Type sniffing gives
// the same text/plain the handlers used to set, and nothing else is added.
func TestRunResponseHeaders(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, _ := startRun(t, ctx, config{Addr: "127.0.0.1:0", ShutdownTimeout: time.Second, Timeouts: defaultTimeouts},
		newRouter("h"), slog.New(slog.DiscardHandler))
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		for _, path := range []string{"/", "/healthz"} {
			req, _ := http.NewRequest(method, "http://"+addr+path, nil)
			resp, err := newClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			keys := slices.Sorted(maps.Keys(resp.Header))
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("%s %s: Content-Type = %q, want text/plain; charset=utf-8", method, path, ct)
			}
			if !slices.Equal(keys, []string{"Content-Length", "Content-Type", "Date"}) {
				t.Errorf("%s %s: headers %v, want Content-Length, Content-Type, Date", method, path, keys)
			}
		}
	}
}
