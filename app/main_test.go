package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets TestBinarySIGTERM run the real main() in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("HTTP_GO_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestConfigFromEnv(t *testing.T) {
	// cfg is the default config changed by f.
	cfg := func(f func(*config)) config {
		c := config{Addr: ":8080", ShutdownTimeout: 20 * time.Second, AccessLog: false, GCPercent: 400, Timeouts: defaultTimeouts}
		if f != nil {
			f(&c)
		}
		return c
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr bool
	}{
		{"defaults", nil, cfg(nil), false},
		{"port", map[string]string{"PORT": "9090"}, cfg(func(c *config) { c.Addr = ":9090" }), false},
		{"addr wins over port", map[string]string{"PORT": "9090", "ADDR": "127.0.0.1:7000"},
			cfg(func(c *config) { c.Addr = "127.0.0.1:7000" }), false},
		{"shutdown timeout", map[string]string{"SHUTDOWN_TIMEOUT": "5s"}, cfg(func(c *config) { c.ShutdownTimeout = 5 * time.Second }), false},
		{"zero timeout", map[string]string{"SHUTDOWN_TIMEOUT": "0s"}, cfg(func(c *config) { c.ShutdownTimeout = 0 }), false},
		{"bad timeout", map[string]string{"SHUTDOWN_TIMEOUT": "soon"}, config{}, true},
		{"negative timeout", map[string]string{"SHUTDOWN_TIMEOUT": "-1s"}, config{}, true},
		{"access log on", map[string]string{"ACCESS_LOG": "on"}, cfg(func(c *config) { c.AccessLog = true }), false},
		{"access log off", map[string]string{"ACCESS_LOG": "off"}, cfg(nil), false},
		{"access log neither", map[string]string{"ACCESS_LOG": "yes"}, config{}, true},
		{"access log is case-sensitive", map[string]string{"ACCESS_LOG": "ON"}, config{}, true},
		{"GOGC set: the runtime's value stays", map[string]string{"GOGC": "100"}, cfg(func(c *config) { c.GCPercent = 0 }), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := configFromEnv(func(k string) string { return tc.env[k] })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				for k, v := range tc.env { // each error case sets one variable: name it and its value
					if want := k + "=" + strconv.Quote(v); !strings.Contains(err.Error(), want) {
						t.Errorf("err = %q, want it to name %s", err, want)
					}
				}
			}
			if got != tc.want {
				t.Errorf("config = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSignalContextCancelledBySIGTERM(t *testing.T) {
	ctx, stop := signalContext()
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not cancel the context")
	}
}

// TestBinarySIGTERM runs main() in a child process as Kubernetes would: it
// serves the greeting, then exits 0 on SIGTERM after logging the shutdown.
// Without ACCESS_LOG the request leaves no line; with ACCESS_LOG=on, one.
func TestBinarySIGTERM(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      []string
		wantLogs string
	}{
		{"access log by default off", nil, "shutting down,stopped"},
		{"ACCESS_LOG=off", []string{"ACCESS_LOG=off"}, "shutting down,stopped"},
		{"ACCESS_LOG=on", []string{"ACCESS_LOG=on"}, "request,shutting down,stopped"},
	} {
		t.Run(tc.name, func(t *testing.T) { testBinarySIGTERM(t, tc.env, tc.wantLogs) })
	}
}

func testBinarySIGTERM(t *testing.T, env []string, wantLogs string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HTTP_GO_TEST_RUN_MAIN=1", "ADDR=127.0.0.1:0", "SHUTDOWN_TIMEOUT=5s", "ACCESS_LOG=")
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// Read JSON log lines; the first one says where the server listens.
	lines := make(chan map[string]any, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
	}()
	var addr string
	select {
	case m := <-lines:
		addr, _ = m["addr"].(string)
		if m["msg"] != "listening" || addr == "" {
			t.Fatalf("first log line = %v, want msg=listening with addr", m)
		}
	case <-ctx.Done():
		t.Fatal("child never logged that it was listening")
	}

	resp, err := newClient().Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	host, _ := os.Hostname()
	if resp.StatusCode != http.StatusOK || string(body) != "Welcome! "+host+"\n" {
		t.Errorf("GET / = %d %q, want 200 %q", resp.StatusCode, body, "Welcome! "+host+"\n")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for m := range lines {
		msgs = append(msgs, m["msg"].(string))
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child exited with %v, want status 0", err)
	}
	if got, want := strings.Join(msgs, ","), wantLogs; got != want {
		t.Errorf("child logged %q, want %q", got, want)
	}
}
