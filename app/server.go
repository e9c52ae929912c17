package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
)

// timeouts are the server's net/http timeouts. The handlers answer
// instantly, so these only bound slow or stuck clients.
type timeouts struct {
	ReadHeader time.Duration // request line and headers
	Read       time.Duration // the whole request, body included
	Write      time.Duration // from the end of the request to the end of the response
	Idle       time.Duration // between requests on a keep-alive connection
}

var defaultTimeouts = timeouts{
	ReadHeader: 5 * time.Second,
	Read:       10 * time.Second,
	Write:      15 * time.Second,
	Idle:       60 * time.Second,
}

// shortest is the smallest timeout: how far ahead lazyDeadlineConn arms a
// socket (deadline.go).
func (t timeouts) shortest() time.Duration { return min(t.ReadHeader, t.Read, t.Write, t.Idle) }

func (t timeouts) validate() error {
	if t.ReadHeader <= 0 || t.Read <= 0 || t.Write <= 0 || t.Idle <= 0 {
		return fmt.Errorf("timeouts %+v: every timeout must be positive", t)
	}
	return nil
}

// newRouter returns the application's routes. hostname is named in the
// greeting so that every response shows which pod served it.
func newRouter(hostname string) http.Handler {
	greeting := []byte("Welcome! " + hostname + "\n")
	ok := []byte("ok\n")

	r := httprouter.New()
	r.HandleMethodNotAllowed = true // 405 with an Allow header, not 404
	index := func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		_, _ = w.Write(greeting)
	}
	healthz := func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		_, _ = w.Write(ok)
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		r.Handle(method, "/", index)
		r.Handle(method, "/healthz", healthz)
	}
	return r
}

// statusRecorder captures the status code and body size for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// accessLog logs one line per request: method, path, status, bytes, duration.
// It is off by default (see config.AccessLog): at a few microseconds of CPU
// and ~200 bytes of log per request it would cost more than the request.
func accessLog(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK // handler wrote nothing
		}
		logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int("bytes", rec.bytes),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("remote", r.RemoteAddr),
		)
	})
}

// newServer sets the server timeouts, routes the server's own errors to
// logger whatever accessLogOn says, and wraps h with the access log only when
// accessLogOn is true, so that an unlogged request pays nothing for it.
func newServer(h http.Handler, logger *slog.Logger, accessLogOn bool, t timeouts) *http.Server {
	if accessLogOn {
		h = accessLog(h, logger)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// lazyDeadlines wraps ln so that the server's timeouts move each
// connection's socket deadlines only when they must (deadline.go).
func lazyDeadlines(ln net.Listener, t timeouts) net.Listener {
	return lazyDeadlineListener{Listener: ln, rearmStep: t.shortest()}
}

// run serves h on cfg.Addr until ctx is cancelled, then stops accepting new
// connections and waits up to cfg.ShutdownTimeout for in-flight requests.
// onListen, if not nil, is called with the bound address once the server
// accepts connections (useful with a ":0" address).
func run(ctx context.Context, cfg config, h http.Handler, logger *slog.Logger, onListen func(net.Addr)) error {
	if err := cfg.Timeouts.validate(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := newServer(h, logger, cfg.AccessLog, cfg.Timeouts)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lazyDeadlines(ln, cfg.Timeouts)) }()
	logger.Info("listening", "addr", ln.Addr().String(), "access_log", cfg.AccessLog)
	if onListen != nil {
		onListen(ln.Addr())
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close() // drain time is up: drop what is left
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}
