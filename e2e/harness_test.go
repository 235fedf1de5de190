//go:build integration

// Package e2e drives the whole appliance with real peers on loopback:
// sipp calls through sipproxy, otelcol-siphon on its default config (plus
// CDR outputs to HTTP, syslog and Kafka), a real Prometheus scraping it and
// evaluating every rule of alerts/, and the dashboards' queries run against
// that Prometheus.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/prometheus"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipp"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipproxy"
)

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// cdrSet collects CDRs (SIPhon JSON) from one output.
type cdrSet struct {
	mu  sync.Mutex
	ids map[string]int // INVITE Call-ID -> times seen
	all int
}

func newCDRSet() *cdrSet { return &cdrSet{ids: map[string]int{}} }

func (s *cdrSet) add(t testing.TB, raw []byte) {
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Errorf("not a CDR: %q: %v", raw, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all++
	if rec["method"] == "INVITE" {
		s.ids[rec["call_id"].(string)]++
	}
}

func (s *cdrSet) invites() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.ids))
	for k, v := range s.ids {
		out[k] = v
	}
	return out
}

// appliance is everything the test runs.
type appliance struct {
	t                      testing.TB
	dir                    string
	sipPort                int
	proxyMetrics           string
	collectorHEP, cdrHTTP  string
	rtpengine              string
	kpi, telemetry         string
	collector              *collector.Process
	collectorOpts          collector.Options
	proxy                  *sipproxy.Proxy
	syslogAddr             string
	syslogMu               sync.Mutex
	syslogLn               net.Listener
	syslogConns            map[net.Conn]bool
	prom                   *prometheus.Server
	billing, syslog, kafka *cdrSet
	billingDown            atomic.Bool
	billingRefused         atomic.Int64
	brokers                []string
}

// options vary the appliance per test.
type options struct {
	// compressRules loads a time-compressed copy of alerts/ (see compress).
	compressRules bool
	// rtpengine is the NG address the proxy pings (default: one where
	// nothing listens).
	rtpengine string
	// proxy is the proxy binary and leading arguments (default:
	// sipproxy); proxyConfig is added to its configuration.
	proxy       []string
	proxyConfig string
}

func startAppliance(t *testing.T, o options) *appliance {
	a := &appliance{t: t, dir: t.TempDir(), billing: newCDRSet(), syslog: newCDRSet(), kafka: newCDRSet(),
		syslogConns: map[net.Conn]bool{}}

	// billing: SIPhon's one record per POST; refuses while billingDown
	bill := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if a.billingDown.Load() {
			a.billingRefused.Add(1)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		a.billing.add(t, body)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(bill.Close)

	// syslog over TCP, newline framed: `<134>1 ts host cdr - - - {json}`
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a.syslogAddr = sl.Addr().String()
	a.serveSyslog(sl)
	t.Cleanup(func() { a.pauseSyslog() })

	kport := ports.Port(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(kport), kfake.SeedTopics(2, "siphon-cdr", "siphon-sip"))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	a.brokers = []string{addr(kport)}
	go a.consumeKafka()

	// otelcol-siphon on its default config plus the CDR outputs
	a.collectorHEP, a.cdrHTTP = addr(ports.Port(t)), addr(ports.Port(t))
	a.kpi, a.telemetry = addr(ports.Port(t)), strconv.Itoa(ports.Port(t))
	health := addr(ports.Port(t))
	a.sipPort = ports.Port(t)
	a.proxyMetrics = addr(ports.Port(t))
	// an RTPEngine the proxy pings that does not answer (nothing listens)
	a.rtpengine = o.rtpengine
	if a.rtpengine == "" {
		a.rtpengine = addr(ports.Port(t))
	}
	overlay, err := filepath.Abs("testdata/outputs.yaml")
	require.NoError(t, err)
	a.collectorOpts = collector.Options{
		Config: "siphon:config.yaml", Overlays: []string{overlay},
		Env: map[string]string{
			"SIPHON_HEP_ENDPOINT": a.collectorHEP, "SIPHON_CDR_HTTP_ENDPOINT": a.cdrHTTP,
			"SIPHON_CDR_SYSLOG_ENDPOINT": addr(ports.Port(t)), "SIPHON_HEALTH_ENDPOINT": health,
			"SIPHON_TELEMETRY_PORT": a.telemetry, "SIPHON_STATE_DIR": filepath.Join(a.dir, "collector"),
			"SIPHON_KPI_ENDPOINT": a.kpi, "SIPHON_KPI_FLUSH_INTERVAL": "1s",
			"SIPHON_SCRAPE_TARGETS": fmt.Sprintf(`["%s"]`, a.proxyMetrics), "SIPHON_SCRAPE_INTERVAL": "1s",
			"SIPHON_HOMER_ENDPOINT": ports.Addr(t),
			"E2E_BILLING_URL":       bill.URL + "/cdr", "E2E_SYSLOG_ENDPOINT": a.syslogAddr,
			"E2E_KAFKA_BROKERS": a.brokers[0],
		},
		HealthAddr: health, TelemetryPort: a.telemetry,
	}
	a.collector = collector.Start(t, a.collectorOpts)

	// sipproxy: CDRs over HTTP with retries, HEP over TCP
	proxyAdmin := addr(ports.Port(t))
	cfg := fmt.Sprintf(`listen:
  udp: ["%[1]s"]
  tcp: ["%[1]s"]
domain:
  local: ["127.0.0.1"]
metrics:
  prometheus: {listen: "%[2]s"}
admin:
  listen: "%[3]s"
cdr:
  enabled: true
  auto_emit: true
  include_register: true
  backend: http
  http: {url: "http://%[4]s/v1/cdr", retry: true}
tracing:
  hep: {endpoint: "%[5]s", version: 3, transport: tcp, agent_id: "e2e-node"}
registrar: {min_expires: 1, default_expires: 300}
proxy:
  invite_timeout: 10s
rtpengine:
  instances: ["%[6]s"]
  ping_interval: 1s
%[7]s
`, addr(a.sipPort), a.proxyMetrics, proxyAdmin, a.cdrHTTP, a.collectorHEP, a.rtpengine, o.proxyConfig)
	a.proxy = sipproxy.Start(t, sipproxy.Options{Config: cfg, Admin: proxyAdmin, Metrics: a.proxyMetrics, Command: o.proxy})

	rules, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "alerts", "*.rules.yml"))
	require.NoError(t, err)
	if o.compressRules {
		rules = compress(t, rules)
	}
	a.prom = prometheus.Start(t, prometheus.Options{Config: fmt.Sprintf(`
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: %s
scrape_configs:
  - job_name: otelcol-siphon-kpi
    honor_labels: true
    static_configs: [{targets: [%q]}]
  - job_name: otelcol-siphon
    static_configs: [{targets: ["127.0.0.1:%s"]}]
`, jsonList(rules), a.kpi, a.telemetry)})
	return a
}

func jsonList(ss []string) string {
	b, _ := json.Marshal(ss)
	return string(b)
}

func (a *appliance) consumeKafka() {
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.brokers...), kgo.ConsumeTopics("siphon-cdr"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		a.t.Errorf("kafka client: %v", err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		for _, r := range fs.Records() {
			a.kafka.add(a.t, r.Value)
			if rec := string(r.Key); rec == "" {
				a.t.Errorf("kafka record without a key")
			}
		}
	}
}

// fileCDRs reads the CDR file the collector writes.
func (a *appliance) fileCDRs() *cdrSet {
	s := newCDRSet()
	f, err := os.Open(filepath.Join(a.dir, "collector", "cdr.jsonl"))
	if err != nil {
		return s
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		s.add(a.t, sc.Bytes())
	}
	return s
}

// sipp runs a scenario (a name of proxy/testdata/sipp, or a path) over UDP.
func (a *appliance) sipp(scenario string, localPort int, args ...string) *sipp.Sipp {
	a.t.Helper()
	return sipp.Start(a.t, scenario, "u1", localPort, args...)
}

// finish requires sipp to succeed and returns its call statistics.
func finish(s *sipp.Sipp) (ok, failed int) {
	s.Wait()
	return s.Stats()
}

// compression maps the shipped rules' durations to seconds, so that an alert
// that needs minutes of a fault fires in seconds: the same expressions over
// shorter windows (rates need >= 2 samples of the 1 s scrapes per window).
var compression = []struct{ from, to string }{
	{"for: 1h", "for: 20s"}, {"for: 30m", "for: 15s"}, {"for: 15m", "for: 8s"}, {"for: 10m", "for: 6s"},
	{"for: 5m", "for: 4s"}, {"for: 2m", "for: 3s"}, {"for: 1m", "for: 2s"},
	{"[1d]", "[5m]"}, {"[30m]", "[30s]"}, {"offset 30m", "offset 30s"}, {"[15m]", "[20s]"},
	{"[10m]", "[15s]"}, {"[5m]", "[10s]"},
}

func compress(t *testing.T, rules []string) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for _, r := range rules {
		b, err := os.ReadFile(r)
		require.NoError(t, err)
		s := string(b)
		for _, c := range compression {
			s = strings.ReplaceAll(s, c.from, c.to)
		}
		p := filepath.Join(dir, filepath.Base(r))
		require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
		out = append(out, p)
	}
	return out
}

func (a *appliance) serveSyslog(ln net.Listener) {
	a.syslogMu.Lock()
	a.syslogLn = ln
	a.syslogMu.Unlock()
	t := a.t
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.syslogMu.Lock()
			a.syslogConns[c] = true
			a.syslogMu.Unlock()
			go func() {
				defer func() {
					a.syslogMu.Lock()
					delete(a.syslogConns, c)
					a.syslogMu.Unlock()
					c.Close()
				}()
				sc := bufio.NewScanner(c)
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				for sc.Scan() {
					line := sc.Text()
					i := strings.Index(line, " - - - ")
					if i < 0 {
						t.Errorf("not SIPhon's syslog line: %q", line)
						continue
					}
					a.syslog.add(t, []byte(line[i+7:]))
				}
			}()
		}
	}()
}

// pauseSyslog takes the syslog server down: its connections are closed
// and new ones refused until resumeSyslog.
func (a *appliance) pauseSyslog() {
	a.syslogMu.Lock()
	defer a.syslogMu.Unlock()
	if a.syslogLn != nil {
		a.syslogLn.Close()
		a.syslogLn = nil
	}
	for c := range a.syslogConns {
		c.Close()
	}
}

func (a *appliance) resumeSyslog() {
	ln, err := net.Listen("tcp", a.syslogAddr)
	require.NoError(a.t, err)
	a.serveSyslog(ln)
}
