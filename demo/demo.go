// Package demo runs the whole appliance on loopback: sipproxy, otelcol-siphon
// on its default config, a Homer stand-in that counts HEP, a call
// generator placing a steady mix of calls and, when rtpengine-daemon is
// installed, rtpengine anchoring their media (media.go). `make run` starts it through
// cmd/siphon-demo; tests start it the same way.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/siphon-otel/siphon-otel/demo/callgen"
	"github.com/siphon-otel/siphon-otel/distro"
	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/hep"
)

// Ports are the loopback ports the demo uses.
type Ports struct {
	ProxySIP, ProxyMetrics, ProxyAdmin         int
	HEP, CDRHTTP, CDRSyslog, Health, Telemetry int
	KPI, Homer                                 int
	// rtpengine's control ports and media port range (media.go)
	RTPEngineNG, RTPEngineCLI, MediaMin, MediaMax int
	// Jaeger's query service (HTTP, gRPC) and OTLP (gRPC, HTTP)
	JaegerQuery, JaegerQueryGRPC, JaegerOTLP, JaegerOTLPHTTP int
}

// DefaultPorts keep clear of SIPhon's and Prometheus's usual ones, so the
// demo runs next to them.
var DefaultPorts = Ports{ProxySIP: 5070, ProxyMetrics: 9190, ProxyAdmin: 9191,
	HEP: 9060, CDRHTTP: 8082, CDRSyslog: 5514, Health: 13133, Telemetry: 8888, KPI: 9464, Homer: 9070,
	RTPEngineNG: 9192, RTPEngineCLI: 9193, MediaMin: 16384, MediaMax: 17383,
	JaegerQuery: 9194, JaegerQueryGRPC: 9195, JaegerOTLP: 4327, JaegerOTLPHTTP: 4328}

// Options configure a demo.
type Options struct {
	Collector, Proxy string // binaries
	StateDir         string // logs, configs, CDR and SIP files
	Ports            Ports
	Rate             float64                 // calls per second
	Hold, Ring       time.Duration           // talk and ring times
	Mix              map[callgen.Outcome]int // default callgen.DefaultMix
	Logger           *slog.Logger
	// RTPEngine is the rtpengine-daemon binary (default: rtpengine in
	// PATH, when there; NoRTPEngine: none, no media)
	RTPEngine string
	// Jaeger is a jaeger binary (`make jaeger`): when it exists, the demo
	// runs it and sends the call traces there too (traces.go)
	Jaeger string
}

// Demo is a running demo.
type Demo struct {
	opts      Options
	collector *childproc.Process
	proxy     *childproc.Process
	jaeger    *childproc.Process
	gen       *callgen.Generator
	homer     *hepSink
	final     Status
	rtpengine *childproc.Process // nil: no media
	noMedia   string             // why not
	media     *mediaTail
}

// startupTimeout is how long each process may take to come up.
const startupTimeout = 60 * time.Second

// start runs one part of the demo and waits until ready passes. Each runs
// in its own process group, so that Ctrl-C reaches the demo alone, which
// stops the parts in order.
func start(ctx context.Context, s childproc.Spec, ready func() error) (*childproc.Process, error) {
	p, err := childproc.Start(s)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := p.WaitReady(ctx, startupTimeout, ready); err != nil {
		return p, fmt.Errorf("demo: %w (its log: %s)", err, s.Log)
	}
	return p, nil
}

// stop ends a part: SIGTERM, SIGKILL after timeout.
func stop(p *childproc.Process, timeout time.Duration) error {
	if p == nil {
		return nil
	}
	if err := p.Stop(timeout); err != nil {
		return fmt.Errorf("demo: %s: %w", p.Name(), err)
	}
	return nil
}

// kpiFlush is how often the demo's collector updates the KPIs.
const kpiFlush = 2 * time.Second

// settleTimeout bounds the wait for the KPIs to count the last calls.
const settleTimeout = 10 * kpiFlush

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
	env := map[string]string{
		"SIPHON_HEP_ENDPOINT": loop(p.HEP), "SIPHON_CDR_HTTP_ENDPOINT": loop(p.CDRHTTP),
		"SIPHON_CDR_SYSLOG_ENDPOINT": loop(p.CDRSyslog), "SIPHON_HEALTH_ENDPOINT": loop(p.Health),
		"SIPHON_TELEMETRY_PORT": strconv.Itoa(p.Telemetry), "SIPHON_KPI_ENDPOINT": loop(p.KPI),
		"SIPHON_STATE_DIR":      filepath.Join(o.StateDir, "collector"),
		"SIPHON_SCRAPE_TARGETS": fmt.Sprintf(`["%s"]`, loop(p.ProxyMetrics)), "SIPHON_SCRAPE_INTERVAL": "5s",
		"SIPHON_HOMER_ENDPOINT": loop(p.Homer), "SIPHON_KPI_FLUSH_INTERVAL": kpiFlush.String(),
	}
	traceArgs, traceEnv, err := d.startTraces(ctx)
	if err != nil {
		return nil, err
	}
	maps.Copy(env, traceEnv)
	d.collector, err = start(ctx, childproc.Spec{Name: "otelcol-siphon", Path: o.Collector,
		Args: append([]string{distro.HealthGate, "--config", "siphon:config.yaml"}, traceArgs...),
		Env:  env, Log: filepath.Join(o.StateDir, "otelcol-siphon.log")}, childproc.HTTPOK("http://"+loop(p.Health)+"/"))
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(o.StateDir, "siphon.yaml")
	if err := d.startRTPEngine(ctx); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(proxyConfig, loop(p.ProxySIP), loop(p.ProxyMetrics), loop(p.ProxyAdmin), loop(p.CDRHTTP), loop(p.HEP)) +
		d.proxyMediaConfig()
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	d.proxy, err = start(ctx, childproc.Spec{Name: "sipproxy", Path: o.Proxy, Args: []string{"-config", cfgPath},
		Log: filepath.Join(o.StateDir, "sipproxy.log")}, childproc.HTTPOK("http://"+loop(p.ProxyAdmin)+"/admin/ready"))
	if err != nil {
		return nil, err
	}
	d.gen, err = callgen.Start(ctx, callgen.Config{Proxy: loop(p.ProxySIP), Listen: "127.0.0.1:0",
		Rate: o.Rate, Hold: o.Hold, Ring: o.Ring, Mix: o.Mix, Media: d.callMedia(), Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	return d, nil
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
		d.mediaWhere(),
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
	Media                                                               MediaStatus
}

// String is the one-line status.
func (s Status) String() string {
	return fmt.Sprintf("calls %d (answered %d, busy %d, cancelled %d, failed %d, not found %d, errors %d, up %d) | CDRs %d | HEP in %.0f, to Homer %d | ASR %.2f | drops %.0f",
		s.Placed, s.Answered, s.Busy, s.Cancelled, s.Failed, s.NotFound, s.Errors, s.Active, s.CDRs, s.HEPIn, s.HEPToHomer, s.ASR, s.Drops) +
		s.Media.suffix()
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
	s.HEPIn = sum(col, "otelcol_hep_receiver_packets_received", nil)
	prx := scrape("http://" + loop(p.ProxyMetrics) + "/metrics")
	for _, m := range []struct {
		f    exposition.Families
		name string
	}{{col, "otelcol_hep_receiver_packets_dropped"}, {col, "otelcol_siphon_cdr_receiver_records_dropped"},
		{col, "otelcol_exporter_enqueue_failed_log_records"}, {col, "otelcol_homer_exporter_records_dropped"},
		{col, "otelcol_siphon_file_exporter_records_dropped"},
		{prx, "siphon_cdr_dropped_total"}, {prx, "siphon_hep_packets_dropped_total"}} {
		s.Drops += sum(m.f, m.name, nil)
	}
	kpi := scrape("http://" + loop(p.KPI) + "/metrics")
	s.KPICalls = sum(kpi, "sip_calls_total", nil)
	s.ASR = sum(kpi, "sip_calls_total", exposition.Labels{"sip_call_result": "answered"}) / s.KPICalls
	s.Media = d.mediaStatus()
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
	errs = append(errs, stop(d.proxy, 30*time.Second))
	// after sipproxy's deletes, before the collector: its last reports
	// reach the collector
	errs = append(errs, stop(d.rtpengine, 10*time.Second))
	if d.collector != nil && d.proxy != nil && d.gen != nil {
		// sipproxy has sent the last CDRs; the totals are final once the
		// KPIs count every call placed (a flush or two), or never when
		// some were lost: the status then shows how many
		d.final = d.Status()
		for deadline := time.Now().Add(settleTimeout); d.final.KPICalls < float64(d.final.Placed) && time.Now().Before(deadline); {
			time.Sleep(kpiFlush / 4)
			d.final = d.Status()
		}
	}
	errs = append(errs, stop(d.collector, 60*time.Second))
	errs = append(errs, stop(d.jaeger, 10*time.Second)) // after the collector sent it the last spans
	d.final.CDRs = countLines(filepath.Join(d.opts.StateDir, "collector", "cdr.jsonl"))
	d.final.Media = d.mediaStatus()
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

// scrape reads a Prometheus text endpoint; an error (a part not up,
// stopping) reads as no series, which the status shows as zeros.
func scrape(url string) exposition.Families {
	f, err := exposition.Scrape(context.Background(), url)
	if err != nil {
		return nil
	}
	return f
}

// sum is a status figure: a counter that was never incremented has no
// series and reads 0.
func sum(f exposition.Families, name string, labels exposition.Labels) float64 {
	v, _ := f.Sum(name, labels)
	return v
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
