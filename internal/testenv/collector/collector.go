// Package collector runs the real otelcol-siphon binary in tests: it
// starts the binary `make distro` built (named by $OTELCOL_SIPHON) with a
// config and environment, waits for its health check, reads its own
// Prometheus metrics, and stops or kills it. Its log is printed when the
// test fails.
package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/distro"
	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
)

// EnvBinary names the variable that points at a built otelcol-siphon; the
// Makefile sets it for every target that runs the collector.
const EnvBinary = "OTELCOL_SIPHON"

// Binary returns the path of otelcol-siphon from $OTELCOL_SIPHON. The
// tests do not build it: building takes minutes and belongs to make.
func Binary(t testing.TB) string {
	t.Helper()
	p := os.Getenv(EnvBinary)
	if p == "" {
		t.Fatalf("%s is not set: run `make distro`, then %s=%s go test -tags integration ...",
			EnvBinary, EnvBinary, filepath.Join(testenv.RepoRoot(), "distro", "_build", "otelcol-siphon"))
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s=%s: %v (run `make distro`)", EnvBinary, p, err)
	}
	return p
}

// Options configure Start.
type Options struct {
	Binary        string            // the otelcol-siphon to run (default: $OTELCOL_SIPHON), e.g. a baseline's
	Config        string            // --config value (a path or siphon:<name>)
	Overlays      []string          // further --config values, merged over Config in order
	Args          []string          // further command-line arguments, e.g. --feature-gates=...
	Env           map[string]string // extra environment
	Dir           string            // working directory (default: a temp dir)
	HealthAddr    string            // wait until http://HealthAddr/ answers 200
	TelemetryPort string            // where the collector serves its own metrics
}

// healthTimeout is how long a collector may take to become healthy.
const healthTimeout = 60 * time.Second

// Process is a running collector.
type Process struct {
	*childproc.Process
	t      testing.TB
	Health string // health check URL, when HealthAddr was given
	Metric string // own metrics URL, when TelemetryPort was given
}

// Start runs the collector until the test ends and waits for its health
// check (if configured).
func Start(t testing.TB, opts Options) *Process {
	t.Helper()
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	args := []string{distro.HealthGate, "--config", opts.Config} // as deploy/ runs it
	for _, o := range opts.Overlays {
		args = append(args, "--config", o)
	}
	args = append(args, opts.Args...)
	bin := opts.Binary
	if bin == "" {
		bin = Binary(t)
	}
	p := &Process{t: t}
	p.Process = testenv.Start(t, childproc.Spec{Name: "otelcol-siphon (" + opts.Config + ")", Path: bin,
		Args: args, Env: opts.Env, Dir: dir, Log: filepath.Join(t.TempDir(), "otelcol-siphon.log")})
	if opts.TelemetryPort != "" {
		p.Metric = "http://127.0.0.1:" + opts.TelemetryPort + "/metrics"
	}
	if opts.HealthAddr != "" {
		p.Health = "http://" + opts.HealthAddr + "/"
		testenv.WaitReady(t, p.Process, healthTimeout, childproc.HTTPOK(p.Health))
	}
	return p
}

// Metrics scrapes the collector's own metrics.
func (p *Process) Metrics() (exposition.Families, error) {
	if p.Metric == "" {
		return nil, fmt.Errorf("collector: started without a TelemetryPort")
	}
	return exposition.Scrape(context.Background(), p.Metric)
}

// Sum scrapes the collector's own metrics and sums the series of name
// that match labels; found says whether any did (a counter that was never
// incremented has no series).
func (p *Process) Sum(name string, labels exposition.Labels) (v float64, found bool, err error) {
	m, err := p.Metrics()
	if err != nil {
		return 0, false, err
	}
	v, found = m.Sum(name, labels)
	return v, found, nil
}

// Value is Sum for a series that must exist.
func (p *Process) Value(name string, labels exposition.Labels) (float64, error) {
	m, err := p.Metrics()
	if err != nil {
		return 0, err
	}
	return m.Value(name, labels)
}

// metricPoll is how often WaitMetric scrapes.
const metricPoll = 50 * time.Millisecond

// WaitMetric waits until the series of name matching labels exist and sum
// to at least want; after timeout the test fails with the last reading.
func (p *Process) WaitMetric(timeout time.Duration, want float64, name string, labels exposition.Labels) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := p.Value(name, labels)
		if err == nil && got >= want {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: %v after %s, want %v (last error: %v)", exposition.Series(name, labels), got, timeout, want, err)
		}
		time.Sleep(metricPoll)
	}
}
