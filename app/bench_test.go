package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/julienschmidt/httprouter"
)

// Benchmarks of the handler chain. CI runs them briefly (-benchtime 100x) to
// check that they still work and that every iteration got the right answer;
// the numbers mean something only on a quiet machine (see bench/bench.sh for
// the side-by-side load test). The test binary keeps Go's GOGC=100 unless
// GOGC is set; the app's default of 400 is applied in mainErr, so compare
// with the app's garbage collection using GOGC=400.
//
//	GOGC=400 go test -run '^$' -bench . -benchmem

// discardWriter is the cheapest http.ResponseWriter: it keeps the status and
// the size of the body of the last response, so that benchmarks check what
// they measured without httptest's buffering in the numbers.
type discardWriter struct {
	header http.Header
	status int
	bytes  int
}

func (w *discardWriter) Header() http.Header { return w.header }

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.bytes += len(b)
	return len(b), nil
}

func (w *discardWriter) reset() {
	clear(w.header)
	w.status, w.bytes = 0, 0
}

// BenchmarkHandler measures what newServer hands to net/http per request:
// the router and handlers, plus the access log when it is on (formatted as
// JSON, written to io.Discard: the formatting is the cost, not the disk).
func BenchmarkHandler(b *testing.B) {
	greeting := len("Welcome! bench-host\n")
	for _, bc := range []struct {
		name       string
		path       string
		accessLog  bool
		wantStatus int
		wantBytes  int
	}{
		{"greeting", "/", false, http.StatusOK, greeting},
		{"healthz", "/healthz", false, http.StatusOK, len("ok\n")},
		{"not found", "/missing", false, http.StatusNotFound, -1},
		{"greeting with access log", "/", true, http.StatusOK, greeting},
	} {
		b.Run(bc.name, func(b *testing.B) {
			logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
			h := newServer(newRouter("bench-host"), logger, bc.accessLog, mustConnTimeouts(b, defaultTimeouts)).Handler
			req := httptest.NewRequest(http.MethodGet, bc.path, nil)
			w := &discardWriter{header: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				h.ServeHTTP(w, req)
			}
			if w.status != bc.wantStatus || (bc.wantBytes >= 0 && w.bytes != bc.wantBytes) {
				b.Fatalf("GET %s = %d with %d bytes, want %d with %d", bc.path, w.status, w.bytes, bc.wantStatus, bc.wantBytes)
			}
		})
	}
}

// BenchmarkServe drives a real server on loopback over keep-alive
// connections, side by side with seed-style servers (the handlers of
// bench/baseline on a bare http.Server). The client writes a fixed request and
// reads a response of the length the first one had (the Date header has a
// fixed width), so that most of the CPU measured is the server's.
func BenchmarkServe(b *testing.B) {
	seed := httprouter.New() // as the seed: the hostname looked up per request
	seed.GET("/", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		hostname, _ := os.Hostname()
		fmt.Fprint(w, "Welcome! "+hostname+"\n")
	})
	seedOnce := func(hostname string) http.Handler {
		r := httprouter.New()
		r.GET("/", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
			fmt.Fprint(w, "Welcome! "+hostname+"\n")
		})
		return r
	}
	host, err := os.Hostname()
	if err != nil {
		b.Fatal(err)
	}
	// As run does: the connections timed by ct, whose watcher runs until the benchmark ends.
	httpGo := func(accessLogOn bool, logger *slog.Logger) benchServer {
		ct := mustConnTimeouts(b, defaultTimeouts)
		ctx, cancel := context.WithCancel(context.Background())
		b.Cleanup(cancel)
		go ct.run(ctx)
		return benchServer{func() *http.Server { return newServer(newRouter(host), logger, accessLogOn, ct) }, ct.listener}
	}
	bare := func(ln net.Listener) net.Listener { return ln }
	benchServers(b, host, map[string]benchServer{
		"http-go":                   httpGo(false, slog.New(slog.DiscardHandler)),
		"http-go with access log":   httpGo(true, slog.New(slog.NewJSONHandler(io.Discard, nil))),
		"seed-style":                {func() *http.Server { return &http.Server{Handler: seed} }, bare},
		"seed-style, hostname once": {func() *http.Server { return &http.Server{Handler: seedOnce(host)} }, bare},
	})
}

// benchServer is a server to benchmark and the listener wrapper it runs
// behind (run wraps http-go's so that connTimeouts can time its connections).
type benchServer struct {
	new  func() *http.Server
	wrap func(net.Listener) net.Listener
}

// benchServers runs one BenchmarkServe sub-benchmark per server, in name
// order; each must answer GET / with "Welcome! <host>".
func benchServers(b *testing.B, host string, servers map[string]benchServer) {
	for _, name := range slices.Sorted(maps.Keys(servers)) {
		server := servers[name]
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := server.new()
			go srv.Serve(server.wrap(ln))
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			request := []byte("GET / HTTP/1.1\r\nHost: " + ln.Addr().String() + "\r\n\r\n")
			greeting := "Welcome! " + host + "\n"
			size := responseSize(b, ln.Addr().String(), request, greeting)
			b.ReportAllocs()
			cpu0 := processCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				conn, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Error(err)
					return
				}
				defer conn.Close()
				buf := make([]byte, size)
				served := false
				for pb.Next() {
					served = true
					if _, err := conn.Write(request); err != nil {
						b.Error(err)
						return
					}
					if _, err := io.ReadFull(conn, buf); err != nil {
						b.Error(err)
						return
					}
				}
				if served && (!bytes.HasPrefix(buf, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(buf, []byte("\r\n\r\n"+greeting))) {
					b.Errorf("last response was not the greeting: %q", buf)
				}
			})
			// Wall time per request depends on how the two sides wake each
			// other; CPU time per request (client's and server's together) is
			// the cost that limits a pod.
			b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

func mustConnTimeouts(tb testing.TB, t timeouts) *connTimeouts {
	tb.Helper()
	ct, err := newConnTimeouts(t)
	if err != nil {
		tb.Fatal(err)
	}
	return ct
}

// responseSize sends request once on a new connection and returns the size
// of the whole response, checking that it is a 200 with the greeting.
func responseSize(b *testing.B, addr string, request []byte, greeting string) int {
	b.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(request); err != nil {
		b.Fatal(err)
	}
	var raw bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(conn, &raw)), nil)
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != greeting {
		b.Fatalf("GET / = %d %q (%v), want 200 %q", resp.StatusCode, body, err, greeting)
	}
	return raw.Len()
}

// processCPU is the user and system CPU time this process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
