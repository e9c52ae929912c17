// Command http-go is a tiny HTTP server that greets with the name of the host
// (in Kubernetes, the pod) that served the request.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
)

const (
	defaultPort            = "8080"
	defaultShutdownTimeout = 20 * time.Second // below Kubernetes' default 30 s grace period

	// defaultGCPercent replaces the runtime's GOGC=100 when GOGC is not set.
	// The live heap stays under 1 MB, so at 100 the collector runs at its
	// 4 MB floor: under load every ~2,000 requests, dozens of times a second,
	// which costs more CPU than the handlers. 400 raises the floor to 16 MB,
	// well inside the pod's memory limit (the Deployment also sets GOMEMLIMIT).
	defaultGCPercent = 400
)

type config struct {
	Addr            string        // listen address, e.g. ":8080"
	ShutdownTimeout time.Duration // how long to drain in-flight requests
	AccessLog       bool          // log one line per request
	GCPercent       int           // GC target to set at start; 0 leaves the runtime's (GOGC)
	Timeouts        timeouts      // not configurable: defaultTimeouts (tests shorten them)
}

// configFromEnv reads ADDR (full listen address), else PORT,
// SHUTDOWN_TIMEOUT (a Go duration such as "20s") and ACCESS_LOG ("on" or
// "off", default off: a line per request costs more CPU than the request).
// GOGC, read by the Go runtime itself, only turns off defaultGCPercent.
func configFromEnv(getenv func(string) string) (config, error) {
	cfg := config{Addr: ":" + defaultPort, ShutdownTimeout: defaultShutdownTimeout, GCPercent: defaultGCPercent, Timeouts: defaultTimeouts}
	if getenv("GOGC") != "" {
		cfg.GCPercent = 0
	}
	if port := getenv("PORT"); port != "" {
		cfg.Addr = ":" + port
	}
	if addr := getenv("ADDR"); addr != "" {
		cfg.Addr = addr
	}
	if s := getenv("SHUTDOWN_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return config{}, fmt.Errorf("SHUTDOWN_TIMEOUT=%q: want a non-negative duration such as 20s", s)
		}
		cfg.ShutdownTimeout = d
	}
	switch s := getenv("ACCESS_LOG"); s {
	case "", "off":
	case "on":
		cfg.AccessLog = true
	default:
		return config{}, fmt.Errorf("ACCESS_LOG=%q: want on or off", s)
	}
	return cfg, nil
}

// signalContext is cancelled on SIGTERM (sent by the kubelet) or SIGINT.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	if err := mainErr(logger); err != nil {
		logger.Error("exiting", "err", err.Error())
		os.Exit(1)
	}
}

func mainErr(logger *slog.Logger) error {
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if cfg.GCPercent > 0 {
		debug.SetGCPercent(cfg.GCPercent)
	}
	hostname, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	ctx, stop := signalContext()
	defer stop()
	return run(ctx, cfg, newRouter(hostname), logger, nil)
}
