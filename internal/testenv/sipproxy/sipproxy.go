// Package sipproxy runs the real sipproxy binary in tests: built once per
// test process with `go build`, started on the siphon.yaml a test writes,
// ready once its admin API says so. It reads the proxy's metrics and the
// CDRs of the file backend, and prints the proxy's log if the test failed.
// Each harness keeps its own configuration text.
package sipproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
)

// Binary builds ./proxy/cmd/sipproxy once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	return testenv.GoBuild(t, "./proxy/cmd/sipproxy")
}

// Options configure Start. The addresses and the CDR file are those the
// configuration names: the proxy is found there.
type Options struct {
	// Config is the siphon.yaml text.
	Config string
	// Admin is the admin API's listen address: the proxy is ready when
	// GET /admin/ready there answers 200.
	Admin string
	// Metrics is the Prometheus listen address ("" when not configured).
	Metrics string
	// CDRFile is the file backend's path ("" when not configured).
	CDRFile string
	// Command is the program and its leading arguments (default: sipproxy
	// from Binary); a build of the proxy's Go API, say.
	Command []string
	// Args follow -config <path> (-log-level debug, -cpuprofile ...).
	Args []string
}

// readyTimeout is how long a proxy may take to become ready.
const readyTimeout = 20 * time.Second

// Proxy is a running proxy.
type Proxy struct {
	*childproc.Process
	t          testing.TB
	Dir        string // siphon.yaml, the log
	AdminURL   string // http://admin
	MetricsURL string // http://metrics/metrics, when configured
	CDRPath    string
}

// Start writes the configuration and runs the proxy on it until the test
// ends; it returns once the proxy is ready.
func Start(t testing.TB, o Options) *Proxy {
	t.Helper()
	if o.Admin == "" {
		t.Fatal("sipproxy: Options.Admin is required (readiness is read there)")
	}
	p := &Proxy{t: t, Dir: t.TempDir(), AdminURL: "http://" + o.Admin, CDRPath: o.CDRFile}
	if o.Metrics != "" {
		p.MetricsURL = "http://" + o.Metrics + "/metrics"
	}
	cfg := filepath.Join(p.Dir, "siphon.yaml")
	if err := os.WriteFile(cfg, []byte(o.Config), 0o600); err != nil {
		t.Fatal(err)
	}
	argv := o.Command
	if len(argv) == 0 {
		argv = []string{Binary(t)}
	}
	args := append(append(append([]string(nil), argv[1:]...), "-config", cfg), o.Args...)
	p.Process = testenv.Start(t, childproc.Spec{Name: filepath.Base(argv[0]), Path: argv[0], Args: args, Dir: p.Dir,
		Log: filepath.Join(p.Dir, "sipproxy.log")})
	testenv.WaitReady(t, p.Process, readyTimeout, childproc.HTTPOK(p.AdminURL+"/admin/ready"))
	return p
}

// Metrics scrapes the proxy's Prometheus endpoint.
func (p *Proxy) Metrics() (exposition.Families, error) {
	if p.MetricsURL == "" {
		return nil, errors.New("sipproxy: no metrics listener configured")
	}
	return exposition.Scrape(context.Background(), p.MetricsURL)
}

var adminClient = &http.Client{Timeout: 10 * time.Second}

// Admin calls the admin API (with a bearer token unless "") and returns
// the status and the body; a failed call is status 0 and the error text.
func (p *Proxy) Admin(method, path, token string) (int, string) {
	req, err := http.NewRequest(method, p.AdminURL+path, nil)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

// CDRs reads the file backend's records (none before the first one is
// written); a line that is not JSON is an error.
func (p *Proxy) CDRs() ([]map[string]any, error) {
	if p.CDRPath == "" {
		return nil, errors.New("sipproxy: no CDR file configured")
	}
	b, err := os.ReadFile(p.CDRPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("sipproxy: CDR line %q: %w", line, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// cdrTimeout is how long a CDR may take to reach the file.
const cdrTimeout = 10 * time.Second

// WaitCDR waits for the record of callID and method in the CDR file; the
// test fails with what the file holds if it does not come.
func (p *Proxy) WaitCDR(callID, method string) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(cdrTimeout)
	for {
		recs, err := p.CDRs()
		if err != nil {
			p.t.Fatal(err)
		}
		for _, r := range recs {
			if r["call_id"] == callID && r["method"] == method {
				return r
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %s CDR for %s after %s; the file has %v", method, callID, cdrTimeout, recs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
