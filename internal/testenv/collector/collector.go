// Package collector runs the real otelcol-siphon binary in tests: it
// finds (or builds, once, the way `make distro` does) the binary, starts it
// with a config and environment, waits for its health check, reads its own
// Prometheus metrics, and stops or kills it. Its log is saved and printed
// when the test fails.
package collector

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvBinary names the variable that points at a built otelcol-siphon.
const EnvBinary = "OTELCOL_SIPHON"

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// RepoRoot returns the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary returns the path of otelcol-siphon: $OTELCOL_SIPHON, or the
// result of `make distro` run once per test binary.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", EnvBinary, p, err)
		}
		return p
	}
	buildOnce.Do(func() {
		root := RepoRoot()
		cmd := exec.Command("make", "-C", root, "distro")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("make distro: %w\n%s", err, out)
			return
		}
		buildPath = filepath.Join(root, "distro", "_build", "otelcol-siphon")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// Process is a running collector.
type Process struct {
	t      testing.TB
	cmd    *exec.Cmd
	logf   *os.File
	done   chan struct{}
	err    error
	Health string // health check URL, when HealthAddr was given
	Metric string // own metrics URL, when TelemetryPort was given
}

// Options configure Start.
type Options struct {
	Config        string            // --config value (a path or siphon:<name>)
	Overlays      []string          // further --config values, merged over Config in order
	Env           map[string]string // extra environment
	Dir           string            // working directory (default: a temp dir)
	HealthAddr    string            // wait until http://HealthAddr/ answers 200
	TelemetryPort string            // where the collector serves its own metrics
}

// Start runs the collector and waits for its health check (if configured).
func Start(t testing.TB, opts Options) *Process {
	t.Helper()
	bin := Binary(t)
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	logf, err := os.CreateTemp(t.TempDir(), "otelcol-*.log")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", opts.Config}
	for _, o := range opts.Overlays {
		args = append(args, "--config", o)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = os.Environ()
	for k, v := range opts.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{t: t, cmd: cmd, logf: logf, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	if opts.HealthAddr != "" {
		p.Health = "http://" + opts.HealthAddr + "/"
	}
	if opts.TelemetryPort != "" {
		p.Metric = "http://127.0.0.1:" + opts.TelemetryPort + "/metrics"
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("otelcol-siphon log (%s):\n%s", opts.Config, p.Log())
		}
	})
	if p.Health != "" {
		p.WaitHealthy(60 * time.Second)
	}
	return p
}

// Log returns what the collector wrote so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.logf.Name())
	return string(b)
}

// WaitHealthy waits until the health check answers 200.
func (p *Process) WaitHealthy(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.done:
			p.t.Fatalf("otelcol-siphon exited before becoming healthy: %v\n%s", p.err, p.Log())
		default:
		}
		resp, err := http.Get(p.Health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("otelcol-siphon not healthy after %s: %v\n%s", timeout, err, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *Process) Stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("otelcol-siphon did not stop within %s", timeout)
	}
}

// Kill stops the collector hard (SIGKILL), as a crash would.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// MetricSum scrapes the collector's own metrics and sums the samples of
// name whose label sets contain every one of labels (`key="value"`).
func (p *Process) MetricSum(name string, labels ...string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Metric, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return SumSamples(body, name, labels...)
}

// SumSamples sums the samples of name in a Prometheus text exposition.
func SumSamples(exposition []byte, name string, labels ...string) (float64, error) {
	var total float64
	found := false
	sc := bufio.NewScanner(bytes.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue // a longer metric name
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		total += v
		found = true
	}
	if !found {
		return 0, errors.New("metric " + name + " not found")
	}
	return total, nil
}

// WaitMetric waits until the summed metric reaches at least want.
func (p *Process) WaitMetric(timeout time.Duration, want float64, name string, labels ...string) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var got float64
	var err error
	for time.Now().Before(deadline) {
		got, err = p.MetricSum(name, labels...)
		if err == nil && got >= want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("%s%v: %v after %s, want %v (last error: %v)", name, labels, got, timeout, want, err)
}

var (
	proxyOnce sync.Once
	proxyPath string
	proxyErr  error
)

// Sipproxy builds ./proxy/cmd/sipproxy once per test binary and returns its
// path.
func Sipproxy(t testing.TB) string {
	t.Helper()
	proxyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sipproxy-bin")
		if err != nil {
			proxyErr = err
			return
		}
		proxyPath = filepath.Join(dir, "sipproxy")
		cmd := exec.Command("go", "build", "-o", proxyPath, "./proxy/cmd/sipproxy")
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			proxyErr = fmt.Errorf("go build sipproxy: %w\n%s", err, out)
		}
	})
	if proxyErr != nil {
		t.Fatal(proxyErr)
	}
	return proxyPath
}

// PID is the collector's process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the collector exits.
func (p *Process) Done() <-chan struct{} { return p.done }
