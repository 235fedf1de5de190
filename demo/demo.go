// Package demo runs the whole appliance on loopback: sipproxy, otelcol-siphon
// on its default config, a Homer stand-in that counts HEP, and a call
// generator placing a steady mix of calls. `make run` starts it through
// cmd/siphon-demo; tests start it the same way.
package demo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/siphon-otel/siphon-otel/demo/callgen"
	"github.com/siphon-otel/siphon-otel/internal/hep"
)

// Ports are the loopback ports the demo uses.
type Ports struct {
	ProxySIP, ProxyMetrics, ProxyAdmin         int
	HEP, CDRHTTP, CDRSyslog, Health, Telemetry int
	KPI, Homer                                 int
}

// DefaultPorts keep clear of SIPhon's and Prometheus's usual ones, so the
// demo runs next to them.
var DefaultPorts = Ports{ProxySIP: 5070, ProxyMetrics: 9190, ProxyAdmin: 9191,
	HEP: 9060, CDRHTTP: 8082, CDRSyslog: 5514, Health: 13133, Telemetry: 8888, KPI: 9464, Homer: 9070}

// Options configure a demo.
type Options struct {
	Collector, Proxy string // binaries
	StateDir         string // logs, configs, CDR and SIP files
	Ports            Ports
	Rate             float64                 // calls per second
	Hold, Ring       time.Duration           // talk and ring times
	Mix              map[callgen.Outcome]int // default callgen.DefaultMix
	Logger           *slog.Logger
}

// Demo is a running demo.
type Demo struct {
	opts      Options
	collector *process
	proxy     *process
	gen       *callgen.Generator
	homer     *hepSink
	final     Status
}

type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func start(name, bin, logPath string, env []string, args ...string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	// own process group: Ctrl-C reaches the demo, which stops the children
	// in order
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM} // and die with the demo
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("demo: start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM and waits; after timeout it kills.
func (p *process) stop(timeout time.Duration) error {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("demo: %s did not exit within %s after SIGTERM", p.name, timeout)
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kpiFlush is how often the demo's collector updates the KPIs.
const kpiFlush = 2 * time.Second

func loop(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

const proxyConfig = `# written by siphon-demo
listen:
  udp: ["%[1]s"]
  tcp: ["%[1]s"]
domain:
  local: ["127.0.0.1"]
metrics:
  prometheus: {listen: "%[2]s", path: /metrics}
admin:
  listen: "%[3]s"
cdr:
  enabled: true
  auto_emit: true
  include_register: true
  backend: http
  http: {url: "http://%[4]s/v1/cdr", retry: true, retry_for: 10m}
tracing:
  hep: {endpoint: "%[5]s", version: 3, transport: udp, agent_id: "siphon-demo"}
server:
  drain_secs: 15
proxy:
  invite_timeout: 30s
registrar: {min_expires: 60, default_expires: 3600}
`

// Start runs everything and waits until each part is up.
func Start(ctx context.Context, o Options) (d *Demo, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Rate == 0 {
		o.Rate = 5
	}
	if o.Hold == 0 {
		o.Hold = 8 * time.Second
	}
	if o.Ring == 0 {
		o.Ring = 2 * time.Second
	}
	if err := os.MkdirAll(o.StateDir, 0o755); err != nil {
		return nil, err
	}
	dm := &Demo{opts: o}
	d = dm
	defer func() {
		if err != nil {
			_ = dm.Stop(context.Background())
		}
	}()
	p := o.Ports
	if d.homer, err = listenHEP(loop(p.Homer)); err != nil {
		return nil, err
	}
	env := []string{
		"SIPHON_HEP_ENDPOINT=" + loop(p.HEP), "SIPHON_CDR_HTTP_ENDPOINT=" + loop(p.CDRHTTP),
		"SIPHON_CDR_SYSLOG_ENDPOINT=" + loop(p.CDRSyslog), "SIPHON_HEALTH_ENDPOINT=" + loop(p.Health),
		fmt.Sprintf("SIPHON_TELEMETRY_PORT=%d", p.Telemetry), "SIPHON_KPI_ENDPOINT=" + loop(p.KPI),
		"SIPHON_STATE_DIR=" + filepath.Join(o.StateDir, "collector"),
		fmt.Sprintf(`SIPHON_SCRAPE_TARGETS=["%s"]`, loop(p.ProxyMetrics)), "SIPHON_SCRAPE_INTERVAL=5s",
		"SIPHON_HOMER_ENDPOINT=" + loop(p.Homer), "SIPHON_KPI_FLUSH_INTERVAL=" + kpiFlush.String(),
	}
	if d.collector, err = start("otelcol-siphon", o.Collector, filepath.Join(o.StateDir, "otelcol-siphon.log"), env,
		"--config", "siphon:config.yaml"); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, d.collector, "http://"+loop(p.Health)+"/"); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(o.StateDir, "siphon.yaml")
	cfg := fmt.Sprintf(proxyConfig, loop(p.ProxySIP), loop(p.ProxyMetrics), loop(p.ProxyAdmin), loop(p.CDRHTTP), loop(p.HEP))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if d.proxy, err = start("sipproxy", o.Proxy, filepath.Join(o.StateDir, "sipproxy.log"), nil, "-config", cfgPath); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, d.proxy, "http://"+loop(p.ProxyAdmin)+"/admin/ready"); err != nil {
		return nil, err
	}
	d.gen, err = callgen.Start(ctx, callgen.Config{Proxy: loop(p.ProxySIP), Listen: "127.0.0.1:0",
		Rate: o.Rate, Hold: o.Hold, Ring: o.Ring, Mix: o.Mix, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	return d, nil
}

func waitHTTP(ctx context.Context, p *process, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("demo: %s exited at start (%v); its log: %s\n%s", p.name, p.err, p.log, tail(p.log, 20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: %s not up at %s after 60s; its log: %s\n%s", p.name, url, p.log, tail(p.log, 20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Where lists what to look at, for the banner.
func (d *Demo) Where() [][2]string {
	p := d.opts.Ports
	return [][2]string{
		{"call KPIs and node metrics (Prometheus)", "http://" + loop(p.KPI) + "/metrics"},
		{"collector's own metrics", "http://" + loop(p.Telemetry) + "/metrics"},
		{"collector health", "http://" + loop(p.Health) + "/"},
		{"CDRs (SIPhon's file format)", filepath.Join(d.opts.StateDir, "collector", "cdr.jsonl")},
		{"SIP messages (one JSON per HEP packet)", filepath.Join(d.opts.StateDir, "collector", "sip.jsonl")},
		{"sipproxy admin API", "http://" + loop(p.ProxyAdmin) + "/admin/registrations"},
		{"sipproxy metrics", "http://" + loop(p.ProxyMetrics) + "/metrics"},
		{"HEP to Homer (a counting stand-in)", "udp://" + loop(p.Homer)},
		{"logs", d.opts.StateDir},
	}
}

// Status is one reading of the demo's counters.
type Status struct {
	Placed, Answered, Busy, Cancelled, Failed, NotFound, Errors, Active int64
	CDRs                                                                int64 // lines in the CDR file
	HEPIn                                                               float64
	HEPToHomer                                                          int64
	Drops                                                               float64 // every counted drop: proxy and collector
	KPICalls                                                            float64 // sum of sip_calls_total on the KPI endpoint
	ASR                                                                 float64 // from the KPI endpoint, NaN before the first call
}

// String is the one-line status.
func (s Status) String() string {
	return fmt.Sprintf("calls %d (answered %d, busy %d, cancelled %d, failed %d, not found %d, errors %d, up %d) | CDRs %d | HEP in %.0f, to Homer %d | ASR %.2f | drops %.0f",
		s.Placed, s.Answered, s.Busy, s.Cancelled, s.Failed, s.NotFound, s.Errors, s.Active, s.CDRs, s.HEPIn, s.HEPToHomer, s.ASR, s.Drops)
}

// Status reads the counters now.
func (d *Demo) Status() Status {
	g := d.gen.Stats()
	s := Status{Placed: g.Placed.Load(), Answered: g.Answered.Load(), Busy: g.Busy.Load(), Cancelled: g.Cancelled.Load(),
		Failed: g.Failed.Load(), NotFound: g.NotFound.Load(), Errors: g.Errors.Load(), Active: g.Active.Load(),
		HEPToHomer: d.homer.count.Load()}
	s.CDRs = countLines(filepath.Join(d.opts.StateDir, "collector", "cdr.jsonl"))
	p := d.opts.Ports
	col := scrape("http://" + loop(p.Telemetry) + "/metrics")
	s.HEPIn = col.sum("otelcol_hep_receiver_packets_received", nil)
	prx := scrape("http://" + loop(p.ProxyMetrics) + "/metrics")
	for _, m := range []struct {
		f    families
		name string
	}{{col, "otelcol_hep_receiver_packets_dropped"}, {col, "otelcol_siphon_cdr_receiver_records_dropped"},
		{col, "otelcol_exporter_enqueue_failed_log_records"}, {col, "otelcol_homer_exporter_records_dropped"},
		{col, "otelcol_siphon_file_exporter_records_dropped"},
		{prx, "siphon_cdr_dropped_total"}, {prx, "siphon_hep_packets_dropped_total"}} {
		s.Drops += m.f.sum(m.name, nil)
	}
	kpi := scrape("http://" + loop(p.KPI) + "/metrics")
	s.KPICalls = kpi.sum("sip_calls_total", nil)
	s.ASR = kpi.sum("sip_calls_total", map[string]string{"sip_call_result": "answered"}) / s.KPICalls
	return s
}

// Final is the status taken as the demo stopped: after the calls ended and
// sipproxy drained, before the collector stopped (files and the Homer count
// after it did).
func (d *Demo) Final() Status { return d.final }

// Generator exposes the call generator.
func (d *Demo) Generator() *callgen.Generator { return d.gen }

// Stop ends the calls, then drains and stops sipproxy and the collector, in
// that order, so every call's CDR and every message reach the outputs.
func (d *Demo) Stop(ctx context.Context) error {
	var errs []error
	if d.gen != nil {
		gctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		errs = append(errs, d.gen.Stop(gctx))
		cancel()
	}
	errs = append(errs, d.proxy.stop(30*time.Second))
	if d.collector != nil && d.proxy != nil && d.gen != nil {
		// the last CDRs are in; one KPI flush later the totals are final
		time.Sleep(kpiFlush + time.Second)
		d.final = d.Status()
	}
	errs = append(errs, d.collector.stop(60*time.Second))
	d.final.CDRs = countLines(filepath.Join(d.opts.StateDir, "collector", "cdr.jsonl"))
	if d.homer != nil {
		errs = append(errs, d.homer.close())
		d.final.HEPToHomer = d.homer.count.Load()
	}
	return errors.Join(errs...)
}

func countLines(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var n int64
	buf := make([]byte, 64<<10)
	for {
		k, err := f.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err != nil {
			return n
		}
	}
}

type families map[string]*samples

type samples struct {
	m []map[string]string
	v []float64
}

// scrape reads a Prometheus text endpoint; errors read as empty.
func scrape(url string) families {
	out := families{}
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return out
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bufio.NewReader(bytes.NewReader(body)))
	if err != nil && len(fams) == 0 {
		return out
	}
	for name, f := range fams {
		s := &samples{}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				v = m.GetUntyped().GetValue()
			}
			s.m, s.v = append(s.m, labels), append(s.v, v)
		}
		out[name] = s
	}
	return out
}

func (f families) sum(name string, match map[string]string) float64 {
	s := f[name]
	if s == nil {
		return 0
	}
	var t float64
next:
	for i, labels := range s.m {
		for k, v := range match {
			if labels[k] != v {
				continue next
			}
		}
		t += s.v[i]
	}
	return t
}

// hepSink stands in for Homer: it counts the valid HEP packets it gets.
type hepSink struct {
	conn  net.PacketConn
	count atomic.Int64
	done  chan struct{}
}

func listenHEP(addr string) (*hepSink, error) {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: Homer stand-in: %w", err)
	}
	s := &hepSink{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 65535)
		var p hep.Packet
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if p.Decode(buf[:n]) == nil {
				s.count.Add(1)
			}
		}
	}()
	return s, nil
}

func (s *hepSink) close() error {
	err := s.conn.Close()
	<-s.done
	return err
}
