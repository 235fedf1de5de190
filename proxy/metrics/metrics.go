// Package metrics is sipproxy's Prometheus surface: every SIPhon series
// that applies to this proxy, with SIPhon's names, types, labels and
// buckets (docs/siphon-formats.md#metrics), plus Go runtime and process
// collectors and a custom-metrics API for handler code.
package metrics

import (
	"runtime/metrics"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/siphon-otel/siphon-otel/proxy/cdrsink"
	"github.com/siphon-otel/siphon-otel/proxy/heptrace"
)

// Set holds the series.
type Set struct {
	Registry *prometheus.Registry
	start    time.Time
	names    []string

	Requests            *prometheus.CounterVec // method
	Responses           *prometheus.CounterVec // code
	TransactionsActive  prometheus.Gauge
	DialogsActive       prometheus.Gauge
	RegistrationsActive prometheus.Gauge
	ConnectionsActive   *prometheus.GaugeVec     // transport
	RequestDuration     *prometheus.HistogramVec // method
	TransactionDuration *prometheus.HistogramVec // method, type

	UACPendingRequests  prometheus.Gauge
	ProxyDialogSessions prometheus.Gauge
	CDRSessions         prometheus.Gauge
	SubscribeDialogs    prometheus.Gauge
	RfSessions          prometheus.Gauge
	RoSessions          prometheus.Gauge

	PoolSize      prometheus.Gauge
	PoolMax       prometheus.Gauge
	PoolInflight  prometheus.Gauge
	PoolQueue     prometheus.Gauge
	JobsCompleted prometheus.Counter
	JobsShed      prometheus.Counter
	ScriptExec    *prometheus.CounterVec // handler
	ScriptErrors  prometheus.Counter

	AuthFailures      prometheus.Counter
	HandshakeFailures prometheus.Counter
	MalformedMessages prometheus.Counter
	RateLimited       prometheus.Counter
	ScannerBlocked    prometheus.Counter
	BannedIPs         prometheus.Gauge

	RTPEngineUp       prometheus.Gauge
	RTPEngineTotal    prometheus.Gauge
	RTPEngineInstance *prometheus.GaugeVec // address

	// ours, in SIPhon's namespace
	CDRDropped *prometheus.CounterVec // reason
	CDRWritten prometheus.Counter
	HEPSent    prometheus.Counter
	HEPDropped *prometheus.CounterVec // reason

	// sipproxy's own, outside SIPhon's namespace: a SIPhon node has no
	// such series (proxy/README.md#limits-and-security)
	Loops        *prometheus.CounterVec // check
	SendFailures *prometheus.CounterVec // message, reason
	// media anchoring (proxy/README.md#media-anchoring-rtpengine)
	RTPEngineCommands   *prometheus.CounterVec   // command, result
	RTPEngineLatency    *prometheus.HistogramVec // command
	RTPEngineUnanchored *prometheus.CounterVec   // command, action
	ConnectionsRefused  *prometheus.CounterVec   // transport
	ConnectionsIdle     *prometheus.CounterVec   // transport

	Custom *Custom
}

// New registers the series on a new registry.
func New() *Set {
	r := prometheus.NewRegistry()
	s := &Set{Registry: r, start: time.Now()}
	f := factory{r, &s.names}
	s.Requests = f.counterVec("siphon_requests_total", "Total SIP requests received", "method")
	s.Responses = f.counterVec("siphon_responses_total", "Total SIP responses sent", "code")
	s.TransactionsActive = f.gauge("siphon_transactions_active", "Active SIP transactions")
	s.DialogsActive = f.gauge("siphon_dialogs_active", "Active SIP dialogs")
	s.RegistrationsActive = f.gauge("siphon_registrations_active", "Active registrations (AoR bindings)")
	s.ConnectionsActive = f.gaugeVec("siphon_connections_active", "Active transport connections", "transport")
	s.RequestDuration = f.histogramVec("siphon_request_duration_seconds", "SIP request processing duration",
		[]float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}, "method")
	s.TransactionDuration = f.histogramVec("siphon_transaction_duration_seconds", "SIP transaction duration",
		[]float64{.01, .05, .1, .5, 1, 5, 16, 32}, "method", "type")
	s.UACPendingRequests = f.gauge("siphon_uac_pending_requests", "Requests sent by the proxy awaiting a final response")
	s.ProxyDialogSessions = f.gauge("siphon_proxy_dialog_sessions", "INVITEs inside their 2xx/ACK window")
	s.CDRSessions = f.gauge("siphon_cdr_sessions", "Calls with an open CDR")
	s.SubscribeDialogs = f.gauge("siphon_subscribe_dialogs", "Active SUBSCRIBE dialogs")
	s.RfSessions = f.gauge("siphon_rf_sessions", "Active Diameter Rf sessions")
	s.RoSessions = f.gauge("siphon_ro_sessions", "Active Diameter Ro sessions")
	s.PoolSize = f.gauge("siphon_pyexec_pool_size", "Handler pool workers")
	s.PoolMax = f.gauge("siphon_pyexec_pool_max", "Handler pool ceiling")
	s.PoolInflight = f.gauge("siphon_pyexec_inflight", "Handler jobs running")
	s.PoolQueue = f.gauge("siphon_pyexec_queue_depth", "Handler jobs waiting")
	s.JobsCompleted = f.counter("siphon_pyexec_jobs_completed_total", "Handler jobs completed")
	s.JobsShed = f.counter("siphon_pyexec_jobs_shed_total", "Handler jobs shed with the pool at its ceiling and the queue full")
	s.ScriptExec = f.counterVec("siphon_script_executions_total", "Handler executions", "handler")
	s.ScriptErrors = f.counter("siphon_script_errors_total", "Handler errors")
	s.AuthFailures = f.counter("siphon_auth_failures_total", "Digest authentication failures")
	s.HandshakeFailures = f.counter("siphon_handshake_failures_total", "TLS handshakes of accepted connections that failed or timed out")
	s.MalformedMessages = f.counter("siphon_malformed_messages_total", "Messages that could not be parsed or were refused as malformed")
	s.RateLimited = f.counter("siphon_rate_limited_total", "Requests refused by the per-source rate limit")
	s.ScannerBlocked = f.counter("siphon_scanner_blocked_total", "Requests from known SIP scanners refused")
	s.BannedIPs = f.gauge("siphon_banned_ips", "Source addresses currently banned")
	s.RTPEngineUp = f.gauge("siphon_rtpengine_instances_up", "RTPEngine instances answering ping")
	s.RTPEngineTotal = f.gauge("siphon_rtpengine_instances_total", "Configured RTPEngine instances")
	s.RTPEngineInstance = f.gaugeVec("siphon_rtpengine_instance_up", "RTPEngine instance health (1 up, 0 down)", "address")
	s.CDRDropped = f.counterVec("siphon_cdr_dropped_total", "CDRs not delivered, by reason ("+strings.Join(cdrsink.DropReasons(), ", ")+")", "reason")
	s.CDRWritten = f.counter("siphon_cdr_written_total", "CDRs handed to the backend")
	s.HEPSent = f.counter("siphon_hep_packets_sent_total", "HEP packets sent")
	s.HEPDropped = f.counterVec("siphon_hep_packets_dropped_total", "HEP packets not sent, by reason ("+strings.Join(heptrace.DropReasons(), ", ")+")", "reason")

	s.Loops = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sipproxy_loops_detected_total",
		Help: "Requests not forwarded because they would loop: check=via (came back unchanged with our Via: 482), request_uri (in a dialog, addressed to the proxy itself: 404), target (the next hop is the proxy's own address: 482)"},
		[]string{"check"})
	s.SendFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sipproxy_send_failures_total",
		Help: "SIP messages the proxy could not write: message=request|response, reason=too_large|transport"},
		[]string{"message", "reason"})
	s.RTPEngineCommands = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sipproxy_rtpengine_commands_total",
		Help: "NG commands sent to RTPEngine instances, one per instance tried: command=offer|answer|delete, result=ok|error (the engine refused it)|timeout (no answer)"},
		[]string{"command", "result"})
	s.RTPEngineLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sipproxy_rtpengine_command_duration_seconds",
		Help:    "Time from sending an NG command to its answer (answered commands only)",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}},
		[]string{"command"})
	s.RTPEngineUnanchored = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sipproxy_rtpengine_unanchored_total",
		Help: "SDP bodies RTPEngine did not rewrite for a call that asked for anchoring (no instance answered, or it refused): action=passed (relayed unchanged) or rejected (the INVITE answered 500)"},
		[]string{"command", "action"})
	s.ConnectionsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sipproxy_connections_refused_total",
		Help: "TCP/TLS connections reset as soon as accepted: the listener had limits.<transport>.max_connections open"},
		[]string{"transport"})
	s.ConnectionsIdle = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sipproxy_connections_idle_closed_total",
		Help: "TCP/TLS connections closed after limits.<transport>.idle_timeout without a SIP message or keep-alive"},
		[]string{"transport"})
	r.MustRegister(s.Loops, s.SendFailures, s.RTPEngineCommands, s.RTPEngineLatency, s.RTPEngineUnanchored,
		s.ConnectionsRefused, s.ConnectionsIdle)

	f.gaugeFunc("siphon_uptime_seconds", "Seconds since start", func() float64 { return time.Since(s.start).Seconds() })
	// Go's heap in use is this proxy's allocation signal (SIPhon: jemalloc allocated)
	f.gaugeFunc("siphon_memory_allocated_bytes", "Heap bytes in use", func() float64 { return readMetric("/memory/classes/heap/objects:bytes") })
	f.gaugeFunc("siphon_memory_resident_bytes", "Resident set size", residentBytes)
	f.gaugeFunc("siphon_memory_active_bytes", "Heap bytes in spans in use", func() float64 {
		return readMetric("/memory/classes/heap/objects:bytes") + readMetric("/memory/classes/heap/unused:bytes")
	})
	f.gaugeFunc("siphon_memory_retained_bytes", "Heap bytes released or free, held by the runtime", func() float64 {
		return readMetric("/memory/classes/heap/free:bytes") + readMetric("/memory/classes/heap/released:bytes")
	})
	f.gaugeFunc("siphon_memory_mapped_bytes", "Bytes mapped by the Go runtime", func() float64 { return readMetric("/memory/classes/total:bytes") })

	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.Custom = newCustom(r)
	s.RTPEngineTotal.Set(0)
	// drop counters exist at 0 from the start, so rate() and the alerts see
	// the first drop
	for _, r := range cdrsink.DropReasons() {
		s.CDRDropped.WithLabelValues(r)
	}
	for _, r := range heptrace.DropReasons() {
		s.HEPDropped.WithLabelValues(r)
	}
	for _, c := range []string{"via", "request_uri", "target"} {
		s.Loops.WithLabelValues(c)
	}
	for _, m := range []string{"request", "response"} {
		for _, r := range []string{"too_large", "transport"} {
			s.SendFailures.WithLabelValues(m, r)
		}
	}
	return s
}

// RTPEngineSeries creates the anchoring series at 0, for a proxy with
// RTPEngine instances (a proxy without has none of them).
func (s *Set) RTPEngineSeries() {
	for _, c := range []string{"offer", "answer", "delete"} {
		for _, r := range []string{"ok", "error", "timeout"} {
			s.RTPEngineCommands.WithLabelValues(c, r)
		}
	}
	for _, c := range []string{"offer", "answer"} {
		s.RTPEngineUnanchored.WithLabelValues(c, "passed")
	}
	s.RTPEngineUnanchored.WithLabelValues("offer", "rejected")
}

// Names lists the SIPhon series this set registers (histograms by their
// base name), whether or not they have been observed yet.
func (s *Set) Names() []string { return slices.Clone(s.names) }

// Uptime returns the time since New.
func (s *Set) Uptime() time.Duration { return time.Since(s.start) }

// factory registers the series and remembers their names (for Names).
type factory struct {
	r     *prometheus.Registry
	names *[]string
}

func (f factory) register(name string, c prometheus.Collector) {
	f.r.MustRegister(c)
	*f.names = append(*f.names, name)
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.register(name, c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.register(name, c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.register(name, g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.register(name, g)
	return g
}

func (f factory) gaugeFunc(name, help string, fn func() float64) {
	f.register(name, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.register(name, h)
	return h
}

func readMetric(name string) float64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		return float64(s[0].Value.Uint64())
	}
	return 0
}
