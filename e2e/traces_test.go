//go:build integration

package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/hepsink"
	"github.com/siphon-otel/siphon-otel/internal/testenv/jaeger"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/prometheus"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipp"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipproxy"
)

// traceRig is what the call-trace tests run: Jaeger; otelcol-siphon on its
// default config with its traces sent to Jaeger (the shipped OTLP exporter,
// sipcall's waits short); sipproxy sending it HEP of every message (TCP)
// and its CDRs (HTTP); a HEP sink standing in for Homer, to which the
// collector relays every message with its capture time; Prometheus
// scraping the KPIs with exemplars stored.
type traceRig struct {
	t        *testing.T
	jaeger   *jaeger.Server
	col      *collector.Process
	proxy    *sipproxy.Proxy
	homer    *hepsink.Server
	prom     *prometheus.Server
	sipPort  int
	hep, kpi string
	state    string // SIPHON_STATE_DIR: traces.jsonl when an overlay writes the span file
}

// startTraceRig starts the rig; overlays go over config.yaml after the
// Jaeger one. withProxy starts sipproxy and Prometheus too.
func startTraceRig(t *testing.T, withProxy bool, overlays ...string) *traceRig {
	r := &traceRig{t: t, jaeger: jaeger.Start(t), homer: hepsink.NewUDP(t, "127.0.0.1:0")}
	overlay, env := r.jaeger.Collector(t)
	r.hep, r.kpi, r.state = ports.Addr(t), ports.Addr(t), t.TempDir()
	health, telemetry, cdrHTTP := ports.Addr(t), strconv.Itoa(ports.Port(t)), ports.Addr(t)
	for k, v := range map[string]string{
		"SIPHON_HEP_ENDPOINT": r.hep, "SIPHON_CDR_HTTP_ENDPOINT": cdrHTTP, "SIPHON_CDR_SYSLOG_ENDPOINT": ports.Addr(t),
		"SIPHON_HEALTH_ENDPOINT": health, "SIPHON_TELEMETRY_PORT": telemetry, "SIPHON_STATE_DIR": r.state,
		// an exemplar is served until the next flush replaces its point:
		// long enough for several scrapes
		"SIPHON_KPI_ENDPOINT": r.kpi, "SIPHON_KPI_FLUSH_INTERVAL": "5s", "SIPHON_HOMER_ENDPOINT": r.homer.Addr(),
	} {
		env[k] = v
	}
	r.col = collector.Start(t, collector.Options{Config: "siphon:config.yaml", Overlays: append([]string{overlay}, overlays...),
		Env: env, HealthAddr: health, TelemetryPort: telemetry})
	if !withProxy {
		return r
	}
	r.sipPort = ports.Port(t)
	admin := ports.Addr(t)
	r.proxy = sipproxy.Start(t, sipproxy.Options{Admin: admin, Config: fmt.Sprintf(`listen:
  udp: ["%[1]s"]
  tcp: ["%[1]s"]
domain:
  local: ["127.0.0.1"]
admin:
  listen: "%[2]s"
cdr:
  enabled: true
  auto_emit: true
  backend: http
  http: {url: "http://%[3]s/v1/cdr", retry: true}
tracing:
  hep: {endpoint: "%[4]s", version: 3, transport: tcp, agent_id: "trace-node"}
registrar: {min_expires: 1, default_expires: 300}
proxy:
  invite_timeout: 2s
`, addr(r.sipPort), admin, cdrHTTP, r.hep)})
	r.prom = prometheus.Start(t, prometheus.Options{Flags: []string{"--enable-feature=exemplar-storage"},
		Config: fmt.Sprintf(`
global: {scrape_interval: 500ms}
scrape_configs:
  - job_name: otelcol-siphon-kpi
    honor_labels: true
    static_configs: [{targets: [%q]}]
`, r.kpi)})
	return r
}

// traceOf waits for the trace of the call with correlation key key to hold
// its root, and returns it.
func (r *traceRig) traceOf(key string) jaeger.Trace {
	r.t.Helper()
	id := calltrace.TraceID(key).String()
	var tr jaeger.Trace
	require.EventuallyWithT(r.t, func(c *assert.CollectT) {
		var err error
		tr, err = r.jaeger.Trace(id)
		if assert.NoError(c, err, "trace %s of %s", id, key) {
			assert.Len(c, tr.Find("SIP call"), 1, "the root of %s", key)
		}
	}, 60*time.Second, 200*time.Millisecond)
	return tr
}

// captured is one message as the collector relayed it to Homer: its
// capture time and what it is.
type captured struct {
	at       time.Time
	sum      sipmsg.Summary
	src, dst string // host:port
}

// captures returns the relayed messages of a Call-ID.
func (r *traceRig) captures(callID string) []captured {
	var out []captured
	for _, p := range r.homer.Packets() {
		s, err := sipmsg.Parse(string(p.Payload))
		if err != nil || s.CallID != callID {
			continue
		}
		out = append(out, captured{at: p.Time(), sum: s,
			src: net.JoinHostPort(p.SrcIP.String(), strconv.Itoa(int(p.SrcPort))),
			dst: net.JoinHostPort(p.DstIP.String(), strconv.Itoa(int(p.DstPort)))})
	}
	return out
}

// name is a message's event name on its span: the method or the code.
func (c captured) name() string {
	if c.sum.IsRequest() {
		return c.sum.Method
	}
	return strconv.Itoa(c.sum.StatusCode)
}

// spanEnd returns a span's endpoints as "host:port".
func spanEnds(s jaeger.Span) (src, dst string) {
	src = net.JoinHostPort(fmt.Sprint(s.Tags["source.address"]), fmt.Sprint(s.Tags["source.port"]))
	dst = net.JoinHostPort(fmt.Sprint(s.Tags["destination.address"]), fmt.Sprint(s.Tags["destination.port"]))
	return src, dst
}

// checkCaptureTimes holds every transaction span of a call to the
// messages the collector captured: its events are exactly the messages of
// its transaction on its hop (request one way, responses the other, the
// same Via branch and CSeq, and for an INVITE the ACK of its non-2xx final
// response, which has its branch), each at its capture time; the span
// starts at its request's capture and ends at its final response's (at the
// ACK for a non-2xx INVITE, at the request for an ACK); the root runs from
// the earliest to the latest of them.
func checkCaptureTimes(t *testing.T, tr jaeger.Trace, caps []captured) {
	t.Helper()
	root := tr.Find("SIP call")[0]
	var first, last time.Time
	for _, s := range tr.Spans {
		if s.ParentID == "" {
			continue
		}
		src, dst := spanEnds(s)
		var want []string
		for _, c := range caps {
			method := c.sum.CSeqMethod
			if method == "ACK" && s.Name == "INVITE" {
				method = "INVITE" // the same branch: the ACK of a non-2xx
			}
			if c.sum.ViaBranch != s.Tags["sip.via.branch"] || int64(c.sum.CSeqNumber) != s.Tags["sip.cseq.number"] || method != s.Name ||
				(c.sum.IsRequest() && (c.src != src || c.dst != dst)) || (!c.sum.IsRequest() && (c.src != dst || c.dst != src)) {
				continue
			}
			want = append(want, fmt.Sprintf("%s@%d", c.name(), c.at.UnixMicro()))
		}
		var got []string
		for _, l := range s.Logs {
			got = append(got, fmt.Sprintf("%s@%d", l.Fields["event"], l.At.UnixMicro()))
		}
		sort.Strings(want)
		sort.Strings(got)
		assert.Equal(t, want, got, "%s %s %s->%s: its events are its messages at their capture times", s.Name, s.Kind, src, dst)
		// The node stamps a message it sends when it has sent it: a fast
		// answer can be stamped before its request. A span never ends
		// before it starts, and starts with the first of its messages
		// sipcall got (the request, unless a response came before it).
		var reqAt, firstMsg, end time.Time
		for _, l := range s.Logs {
			name := fmt.Sprint(l.Fields["event"])
			if name == s.Name && reqAt.IsZero() {
				reqAt = l.At
			}
			if firstMsg.IsZero() || l.At.Before(firstMsg) {
				firstMsg = l.At
			}
		}
		for _, l := range s.Logs {
			name := fmt.Sprint(l.Fields["event"])
			code, _ := strconv.Atoi(name)
			if code >= 200 || (s.Name == "INVITE" && name == "ACK") {
				end = l.At // the last of the final response and the non-2xx ACK (its ACK comes after)
			}
			if code >= 200 && !(s.Name == "INVITE" && code >= 300) {
				break // the first final response ends a transaction
			}
		}
		if end.Before(s.Start) {
			end = s.Start
		}
		assert.False(t, reqAt.IsZero(), "%s %s has its request", s.Name, s.Kind)
		assert.True(t, s.Start.Equal(reqAt) || s.Start.Equal(firstMsg), "%s %s starts at its request's capture %s (or its first message's %s), not %s",
			s.Name, s.Kind, reqAt, firstMsg, s.Start)
		assert.Equal(t, end, s.End(), "%s %s ends at its final response's capture", s.Name, s.Kind)
		if first.IsZero() || s.Start.Before(first) {
			first = s.Start
		}
		if s.End().After(last) {
			last = s.End()
		}
	}
	assert.Equal(t, first, root.Start, "the root starts with its first transaction")
	assert.Equal(t, last, root.End(), "the root ends with its last transaction")
}

// earliest is the first capture of a message of the initial INVITE
// transaction (CSeq 1) that match says, on any hop.
func earliest(caps []captured, match func(sipmsg.Summary) bool) time.Time {
	var at time.Time
	for _, c := range caps {
		if c.sum.CSeqNumber == 1 && match(c.sum) && (at.IsZero() || c.at.Before(at)) {
			at = c.at
		}
	}
	return at
}

func seconds(from, to time.Time) float64 { return to.Sub(from).Seconds() }

// TestCallTraces: sipp calls through sipproxy (over UDP and TCP: answered,
// busy, cancelled, timed out) become one trace each in Jaeger, through
// otelcol-siphon on its default config. Each trace has its root and one
// span per transaction and hop, under the root, of the right kind, with the
// messages' capture times; errors where a 408 was; the setup measures of
// the root computed from the captures; the CDR's fields on the root.
// Prometheus, scraping the KPIs, stores exemplars whose trace ids open
// those traces at their roots.
func TestCallTraces(t *testing.T) {
	r := startTraceRig(t, true)
	target := addr(r.sipPort)
	phones := map[string]struct {
		scenario string
		calls    int
	}{"alice": {"uas-answer", 2}, "bob": {"uas-busy", 2}, "carol": {"uas-ring", 4}} // a call of each row
	var uas []*sipp.Sipp
	for user, ph := range phones {
		port := ports.Port(t)
		uas = append(uas, sipp.Start(t, ph.scenario, "u1", port, "-m", strconv.Itoa(ph.calls)))
		sipp.Start(t, "register", "u1", ports.Port(t), "-m", "1", "-key", "user", user, "-key", "contact_port",
			strconv.Itoa(port), "-key", "expires", "300", target).Wait()
	}

	type txKind struct{ name, kind string }
	server, client := "server", "client"
	tests := []struct {
		name, transport, callee, scenario string
		args                              []string
		result                            string
		code                              int64
		error                             bool
		spans                             map[txKind]int
	}{
		{"answered over UDP", "u1", "alice", "uac-call", []string{"-d", "500"}, "answered", 200, false,
			map[txKind]int{{"INVITE", server}: 1, {"INVITE", client}: 1, {"ACK", server}: 1, {"ACK", client}: 1, {"BYE", server}: 1, {"BYE", client}: 1}},
		{"answered over TCP", "t1", "alice", "uac-call", []string{"-d", "500"}, "answered", 200, false,
			map[txKind]int{{"INVITE", server}: 1, {"INVITE", client}: 1, {"ACK", server}: 1, {"ACK", client}: 1, {"BYE", server}: 1, {"BYE", client}: 1}},
		{"busy over UDP", "u1", "bob", sipp.Expect(t, "uac-fail", 486), nil, "busy", 486, false,
			map[txKind]int{{"INVITE", server}: 1, {"INVITE", client}: 1}},
		{"busy over TCP", "t1", "bob", sipp.Expect(t, "uac-fail", 486), nil, "busy", 486, false,
			map[txKind]int{{"INVITE", server}: 1, {"INVITE", client}: 1}},
		{"cancelled while ringing over UDP", "u1", "carol", "uac-cancel", nil, "cancelled", 487, false,
			map[txKind]int{{"INVITE", server}: 1, {"INVITE", client}: 1, {"CANCEL", server}: 1, {"CANCEL", client}: 1}},
		{"cancelled while ringing over TCP", "t1", "carol", "uac-cancel", nil, "cancelled", 487, false,
			map[txKind]int{{"INVITE", server}: 1, {"INVITE", client}: 1, {"CANCEL", server}: 1, {"CANCEL", client}: 1}},
		// nobody answers within the proxy's invite_timeout: it cancels the
		// callee's INVITE and answers the caller 408
		{"timeout over UDP", "u1", "carol", sipp.Expect(t, "uac-fail", 408), nil, "failed", 408, true,
			map[txKind]int{{"INVITE", server}: 1, {"INVITE", client}: 1, {"CANCEL", client}: 1}},
		{"timeout over TCP", "t1", "carol", sipp.Expect(t, "uac-fail", 408), nil, "failed", 408, true,
			map[txKind]int{{"INVITE", server}: 1, {"INVITE", client}: 1, {"CANCEL", client}: 1}},
	}
	results := map[string]string{} // trace id -> result
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			uac := sipp.Start(t, tt.scenario, tt.transport, ports.Port(t), append([]string{"-m", "1", "-s", tt.callee}, append(tt.args, target)...)...)
			uac.Wait()
			callID := uac.CallID()
			tr := r.traceOf(callID)
			t.Logf("%s: %d spans, %s after the call began\n%s", callID, len(tr.Spans), time.Since(start).Round(time.Millisecond), tr.Tree())
			root := tr.Find("SIP call")[0]
			assert.Empty(t, root.ParentID)
			assert.Equal(t, calltrace.RootSpanID(callID).String(), root.SpanID)
			assert.Equal(t, "internal", root.Kind)
			assert.Equal(t, callID, root.Tags["sip.call_id"])
			assert.Equal(t, tt.result, root.Tags["sip.call.result"])
			assert.Equal(t, tt.code, root.Tags["sip.response.status_code"])
			assert.Equal(t, tt.error, root.Error(), "the root's status: %v", root.Tags)
			got := map[txKind]int{}
			for _, s := range tr.Spans {
				if s.ParentID == "" {
					continue
				}
				got[txKind{s.Name, s.Kind}]++
				assert.Equal(t, root.SpanID, s.ParentID, "%s %s under the root", s.Name, s.Kind)
				assert.Equal(t, callID, s.Tags["sip.call_id"])
				wantErr := s.Name == "INVITE" && s.Kind == server && tt.error
				assert.Equal(t, wantErr, s.Error(), "%s %s status: %v", s.Name, s.Kind, s.Tags)
				if s.Kind == server {
					transport := map[string]string{"u1": "udp", "t1": "tcp"}[tt.transport]
					assert.Equal(t, transport, s.Tags["network.transport"], "%s from the caller", s.Name)
				}
			}
			assert.Equal(t, tt.spans, got, "the spans of the call")

			// the times, against what the collector captured
			caps := r.captures(callID)
			checkCaptureTimes(t, tr, caps)
			invite := earliest(caps, func(s sipmsg.Summary) bool { return s.Method == "INVITE" })
			resp := earliest(caps, func(s sipmsg.Summary) bool { return s.CSeqMethod == "INVITE" && s.StatusCode > 100 })
			assert.InDelta(t, seconds(invite, resp), root.Tags["sip.call.post_dial_delay"], 1e-9, "PDD from the captures")
			if tt.result == "answered" {
				ok := earliest(caps, func(s sipmsg.Summary) bool { return s.CSeqMethod == "INVITE" && s.StatusCode == 200 })
				var bye time.Time
				for _, c := range caps {
					if c.sum.Method == "BYE" && (bye.IsZero() || c.at.Before(bye)) {
						bye = c.at
					}
				}
				assert.InDelta(t, seconds(invite, ok), root.Tags["sip.call.setup_duration"], 1e-9)
				assert.InDelta(t, seconds(ok, bye), root.Tags["sip.call.duration"], 1e-9)
				assert.InDelta(t, 0.5, root.Tags["sip.call.duration"], 0.3, "sipp held the call 500 ms")
				// the CDR's account of it, on the root
				assert.InDelta(t, root.Tags["sip.call.duration"], root.Tags["cdr.duration_secs"], 0.05, "the CDR's duration")
			}
			if tt.result == "cancelled" {
				assert.Equal(t, "caller", root.Tags["sip.call.disconnect_initiator"])
			}
			for _, k := range []string{"cdr.timestamp_start", "cdr.timestamp_end", "cdr.transport"} {
				assert.Contains(t, root.Tags, k, "the CDR's fields on the root")
			}
			results[tr.ID] = tt.result
		})
	}
	for _, u := range uas {
		u.Wait()
	}

	// The KPIs' exemplars, as Prometheus scraped them (OpenMetrics), open
	// those traces at their roots, of the same result: every call of the
	// CDRs' series (each call has a series of its own: result, code,
	// transport), some of the PDD histogram's (from the messages; a bucket
	// keeps the last call of each flush).
	for _, series := range []struct {
		name  string
		calls int
	}{{"sip_calls_total", len(results)}, {"sip_call_post_dial_delay_seconds_bucket", 1}} {
		var ex []prometheus.Exemplar
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			var err error
			ex, err = r.prom.Exemplars(series.name, time.Hour)
			assert.NoError(c, err)
			seen := map[string]bool{}
			for _, e := range ex {
				seen[e.Labels["trace_id"]] = true
			}
			assert.GreaterOrEqual(c, len(seen), series.calls, "calls the exemplars of %s name: %v", series.name, ex)
		}, 60*time.Second, 500*time.Millisecond)
		for _, e := range ex {
			tr, err := r.jaeger.Trace(e.Labels["trace_id"])
			if !assert.NoError(t, err, "the trace of exemplar %v", e) {
				continue
			}
			root := tr.Find("SIP call")
			require.Len(t, root, 1)
			assert.Equal(t, root[0].SpanID, e.Labels["span_id"], "the exemplar opens the root")
			if r, ok := e.SeriesLabels["sip_call_result"]; ok {
				assert.Equal(t, r, root[0].Tags["sip.call.result"], "a %s series points at a %s call", r, r)
			}
			assert.Contains(t, results, tr.ID)
		}
		t.Logf("%s: %d exemplars, each a trace in Jaeger", series.name, len(ex))
	}
}

// TestCallTracesBadInput: what no call can be made of, sent to the
// collector's HEP port: a message without a Call-ID, one without a CSeq, a
// response without its request, a BYE of a dialog never seen, and 10,000
// calls whose INVITE is never answered, with room for 500. Each is counted
// in the collector's own metrics; the calls in flight stay at the bound
// (the rest evicted and counted) and so does the memory; the collector goes
// on tracing the next call.
func TestCallTracesBadInput(t *testing.T) {
	bound := filepath.Join(t.TempDir(), "bound.yaml")
	require.NoError(t, writeFile(bound, "connectors:\n  sipcall:\n    max_calls: 500\n    idle_timeout: 1h\n"))
	r := startTraceRig(t, false, bound)

	conn, err := net.Dial("tcp", r.hep)
	require.NoError(t, err)
	defer conn.Close()
	send := func(msgs ...string) {
		var b []byte
		for _, m := range msgs {
			p := hep.Packet{Version: 3, ProtoType: hep.TypeSIP, Family: hep.FamilyIPv4, Protocol: hep.ProtoUDP,
				SrcIP: loopback, DstIP: loopback2, SrcPort: 5060, DstPort: 5080, CaptureID: 7, Payload: []byte(m),
				Fields: hep.HasProtoType | hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort | hep.HasDstPort | hep.HasCaptureID}
			p.SetTime(time.Now())
			b, err = p.AppendV3(b)
			require.NoError(t, err)
		}
		_, err := conn.Write(b)
		require.NoError(t, err)
	}
	rss := func() float64 {
		v, err := r.col.Value("otelcol_process_memory_rss", nil)
		require.NoError(t, err)
		return v
	}
	send(sipMsg("INVITE", "1 INVITE", "", ""), // no Call-ID
		sipMsg("OPTIONS", "", "no-cseq", ""),
		sipMsg("200", "1 INVITE", "orphan", "t1"),
		sipMsg("BYE", "2 BYE", "ghost", "t9"))
	for reason, n := range map[string]float64{"no_call_id": 1, "no_cseq": 1, "response_without_request": 1, "unknown_dialog": 2} {
		r.col.WaitMetric(30*time.Second, n, "otelcol_sipcall_records_malformed", map[string]string{"reason": reason})
	}
	// the BYE of the dialog never seen is traced as a partial call, which
	// its BYE ended; the orphan 200 answered a partial call, which waits
	// for its BYE
	ghost := r.traceOf("ghost").Find("SIP call")[0]
	assert.Equal(t, true, ghost.Tags["sip.call.partial"])
	before := rss()

	const calls, room = 10_000, 500
	never := func(i int) string { return fmt.Sprintf("never-%05d", i) }
	flood := time.Now()
	for i := 0; i < calls; i += 100 {
		var batch []string
		for j := i; j < i+100; j++ {
			batch = append(batch, sipMsg("INVITE", "1 INVITE", never(j), ""))
		}
		send(batch...)
	}
	// the orphan and the first 9,500 go, least recently active first
	r.col.WaitMetric(120*time.Second, calls+1-room, "otelcol_sipcall_evictions", map[string]string{"reason": "max_calls"})
	t.Logf("%d unanswered calls sent and evicted down to %d in %s", calls, room, time.Since(flood).Round(time.Millisecond))
	inFlight, err := r.col.Value("otelcol_sipcall_state_entries", map[string]string{"state": "calls"})
	require.NoError(t, err)
	assert.Equal(t, float64(room), inFlight, "calls in flight at the bound")
	evicted, err := r.col.Value("otelcol_sipcall_evictions", map[string]string{"reason": "max_calls"})
	require.NoError(t, err)
	assert.Equal(t, float64(calls+1-room), evicted, "each evicted once")
	after := rss()
	t.Logf("RSS %.1f MB before the unanswered calls, %.1f MB after; %v in flight, %v evicted", before/1e6, after/1e6, inFlight, evicted)
	// a guard against a gross leak only: the bound is the state table's
	assert.Less(t, after-before, 128e6, "memory stays bounded")

	// the evicted calls are traced as such
	for _, key := range []string{"orphan", never(0), never(calls - room - 1)} {
		root := r.traceOf(key).Find("SIP call")[0]
		assert.True(t, root.Error(), key)
		assert.Equal(t, "evicted: max_calls", root.Tags["otel.status_description"], key)
	}

	// and it goes on: a whole call after all that is traced
	send(sipMsg("INVITE", "1 INVITE", "after", ""), sipMsg("486", "1 INVITE", "after", "b1"), sipMsg("ACK", "1 ACK", "after", "b1"))
	after2 := r.traceOf("after")
	assert.Equal(t, "busy", after2.Find("SIP call")[0].Tags["sip.call.result"])
	assert.False(t, r.col.Exited(), "the collector runs")
}

var (
	loopback  = netip.MustParseAddr("127.0.0.1")
	loopback2 = netip.MustParseAddr("127.0.0.2")
)

// sipMsg is a SIP message naming only loopback addresses: a request when
// first is a method, else a response with that status; cseq is "1 INVITE"
// style ("": no CSeq), callID "" leaves the Call-ID out. Its Via branch
// follows the CSeq number, so that the ACK of a non-2xx is in its INVITE's
// transaction.
func sipMsg(first, cseq, callID, toTag string) string {
	start := first + " sip:bob@127.0.0.2:5080 SIP/2.0"
	if first[0] >= '1' && first[0] <= '6' {
		start = "SIP/2.0 " + first + " Whatever"
	}
	num, _, _ := strings.Cut(cseq, " ")
	lines := []string{start, "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-" + callID + "-" + num,
		"From: <sip:alice@127.0.0.1>;tag=from-" + callID, "To: <sip:bob@127.0.0.2>"}
	if toTag != "" {
		lines[3] += ";tag=" + toTag
	}
	if callID != "" {
		lines = append(lines, "Call-ID: "+callID)
	}
	if cseq != "" {
		lines = append(lines, "CSeq: "+cseq)
	}
	return strings.Join(append(lines, "Max-Forwards: 70"), "\r\n") + "\r\nContent-Length: 0\r\n\r\n"
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }
