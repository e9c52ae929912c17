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

// newServer hooks the server's connections to ct, which enforces the
// timeouts (conntimeouts.go; net/http's own are left off), routes the
// server's own errors to logger whatever accessLogOn says, and wraps h with
// the access log only when accessLogOn is true, so that an unlogged request
// pays nothing for it.
func newServer(h http.Handler, logger *slog.Logger, accessLogOn bool, ct *connTimeouts) *http.Server {
	if accessLogOn {
		h = accessLog(h, logger)
	}
	return &http.Server{
		Handler:   h,
		ConnState: ct.connState,
		ErrorLog:  slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// run serves h on cfg.Addr until ctx is cancelled, then stops accepting new
// connections and waits up to cfg.ShutdownTimeout for in-flight requests.
// onListen, if not nil, is called with the bound address once the server
// accepts connections (useful with a ":0" address).
func run(ctx context.Context, cfg config, h http.Handler, logger *slog.Logger, onListen func(net.Addr)) error {
	ct, err := newConnTimeouts(cfg.Timeouts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// The watcher runs until run returns: through the drain too.
	watchCtx, stopWatching := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatching()
	go ct.run(watchCtx)
	srv := newServer(h, logger, cfg.AccessLog, ct)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ct.listener(ln)) }()
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
