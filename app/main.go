// Command http-go is a tiny HTTP server that greets with the name of the host
// (in Kubernetes, the pod) that served the request.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const (
	defaultPort            = "8080"
	defaultShutdownTimeout = 20 * time.Second // below Kubernetes' default 30 s grace period
)

type config struct {
	Addr            string        // listen address, e.g. ":8080"
	ShutdownTimeout time.Duration // how long to drain in-flight requests
}

// configFromEnv reads ADDR (full listen address), else PORT, and
// SHUTDOWN_TIMEOUT (a Go duration such as "20s").
func configFromEnv(getenv func(string) string) (config, error) {
	cfg := config{Addr: ":" + defaultPort, ShutdownTimeout: defaultShutdownTimeout}
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
	hostname, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	ctx, stop := signalContext()
	defer stop()
	return run(ctx, cfg, newRouter(hostname), logger, nil)
}
