//go:build integration

package distro_test

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/jaeger"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// The parties of the calls the trace tests send as HEP: caller A, proxy or
// B2BUA P (the capturing node), callee B. Only loopback.
var (
	partyA = netip.MustParseAddrPort("127.0.0.1:5061")
	partyP = netip.MustParseAddrPort("127.0.0.10:5060")
	partyB = netip.MustParseAddrPort("127.0.0.2:5062")
)

// hepCall writes the SIP messages of one Call-ID, as P captured them, as
// HEP3 packets with capture times of the test's choosing.
type hepCall struct {
	t       *testing.T
	base    time.Time
	callID  string
	fromTag string
	ua      string // the initial INVITE's User-Agent ("": sipp-uac)
	wire    []byte
}

func newHEPCall(t *testing.T, base time.Time, callID string) *hepCall {
	return &hepCall{t: t, base: base, callID: callID, fromTag: "ft-" + callID}
}

func (c *hepCall) branch(src netip.AddrPort, cseq int, method string) string {
	if method == "ACK" && cseq < 0 { // the ACK of a non-2xx: its INVITE's branch
		return fmt.Sprintf("z9hG4bK-%s-%d-%d-INVITE", c.callID, src.Port(), -cseq)
	}
	return fmt.Sprintf("z9hG4bK-%s-%d-%d-%s", c.callID, src.Port(), cseq, method)
}

// packet appends a message sent at base+at from src to dst.
func (c *hepCall) packet(at float64, src, dst netip.AddrPort, msg string) {
	p := hep.Packet{Version: 3, ProtoType: hep.TypeSIP, Family: hep.FamilyIPv4, Protocol: hep.ProtoUDP,
		SrcIP: src.Addr(), DstIP: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(), CaptureID: 7, Payload: []byte(msg),
		Fields: hep.HasProtoType | hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort |
			hep.HasDstPort | hep.HasCaptureID | hep.HasTimeSec | hep.HasTimeUsec}
	p.SetTime(c.base.Add(time.Duration(at * float64(time.Second))))
	var err error
	c.wire, err = p.AppendV3(c.wire)
	require.NoError(c.t, err)
}

// req sends a request; cseq < 0 is the ACK of a non-2xx final response to
// INVITE -cseq. headers are added (X-CID, ...).
func (c *hepCall) req(at float64, src, dst netip.AddrPort, method string, cseq int, toTag string, headers ...string) {
	to := "<sip:bob@127.0.0.2>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	ua := c.ua
	if ua == "" {
		ua = "sipp-uac"
	}
	lines := append([]string{method + " sip:bob@127.0.0.2:5062 SIP/2.0",
		"Via: SIP/2.0/UDP " + src.String() + ";branch=" + c.branch(src, cseq, method),
		"From: <sip:alice@127.0.0.1>;tag=" + c.fromTag, "To: " + to, "Call-ID: " + c.callID,
		fmt.Sprintf("CSeq: %d %s", max(cseq, -cseq), method), "Max-Forwards: 70", "User-Agent: " + ua}, headers...)
	c.packet(at, src, dst, strings.Join(lines, "\r\n")+"\r\nContent-Length: 0\r\n\r\n")
}

// resp answers the request that src's peer dst sent (src answers).
func (c *hepCall) resp(at float64, src, dst netip.AddrPort, code int, method string, cseq int, toTag string) {
	to := "<sip:bob@127.0.0.2>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	c.packet(at, src, dst, strings.Join([]string{fmt.Sprintf("SIP/2.0 %d Whatever", code),
		"Via: SIP/2.0/UDP " + dst.String() + ";branch=" + c.branch(dst, cseq, method),
		"From: <sip:alice@127.0.0.1>;tag=" + c.fromTag, "To: " + to, "Call-ID: " + c.callID,
		fmt.Sprintf("CSeq: %d %s", cseq, method)}, "\r\n")+"\r\nContent-Length: 0\r\n\r\n")
}

// setup is a call's INVITE from A through P to B: the INVITE on both hops
// at 0, P's 100, a 180 from B at ring and the final code from B at final
// (relayed 1 ms later), the ACK(s). headers go on the INVITEs.
func (c *hepCall) setup(ring, final float64, code int, headers ...string) {
	c.req(0, partyA, partyP, "INVITE", 1, "", headers...)
	c.resp(0.0005, partyP, partyA, 100, "INVITE", 1, "")
	c.req(0.001, partyP, partyB, "INVITE", 1, "", headers...)
	if ring > 0 {
		c.resp(ring, partyB, partyP, 180, "INVITE", 1, "b1")
		c.resp(ring+0.001, partyP, partyA, 180, "INVITE", 1, "b1")
	}
	c.resp(final, partyB, partyP, code, "INVITE", 1, "b1")
	c.resp(final+0.001, partyP, partyA, code, "INVITE", 1, "b1")
	if code < 300 {
		c.req(final+0.1, partyA, partyP, "ACK", 1, "b1")
		c.req(final+0.101, partyP, partyB, "ACK", 1, "b1")
		return
	}
	c.req(final+0.002, partyP, partyB, "ACK", -1, "b1")
	c.req(final+0.003, partyA, partyP, "ACK", -1, "b1")
}

// cancel is A giving up at at: CANCEL on both hops, 200s, then B's 487.
func (c *hepCall) cancel(at float64) {
	c.req(at, partyA, partyP, "CANCEL", 1, "")
	c.resp(at+0.001, partyP, partyA, 200, "CANCEL", 1, "")
	c.req(at+0.002, partyP, partyB, "CANCEL", 1, "")
	c.resp(at+0.003, partyB, partyP, 200, "CANCEL", 1, "")
}

// bye is A hanging up at at.
func (c *hepCall) bye(at float64) {
	c.req(at, partyA, partyP, "BYE", 2, "b1")
	c.req(at+0.001, partyP, partyB, "BYE", 2, "b1")
	c.resp(at+0.05, partyB, partyP, 200, "BYE", 2, "b1")
	c.resp(at+0.051, partyP, partyA, 200, "BYE", 2, "b1")
}

// send writes the packets to a HEP endpoint over TCP and forgets them.
func (c *hepCall) send(addr string) {
	c.t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(c.t, err)
	defer conn.Close()
	_, err = conn.Write(c.wire)
	require.NoError(c.t, err)
	c.wire = nil
}

// traceOf waits until Jaeger holds the trace of key with its root, and
// returns it.
func traceOf(t *testing.T, j *jaeger.Server, key string) jaeger.Trace {
	t.Helper()
	var tr jaeger.Trace
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var err error
		tr, err = j.Trace(calltrace.TraceID(key).String())
		if assert.NoError(c, err, "the trace of %s", key) {
			assert.Len(c, tr.Find("SIP call"), 1, "the root of %s", key)
		}
	}, 60*time.Second, 200*time.Millisecond)
	return tr
}

// spanNames lists a trace's spans as "name kind", sorted by start.
func spanNames(tr jaeger.Trace) []string {
	var out []string
	for _, s := range tr.Spans {
		out = append(out, s.Name+" "+s.Kind)
	}
	return out
}

// startTracing runs config.yaml with overlays, its call traces going to j,
// and returns it with its HEP address.
func startTracing(t *testing.T, j *jaeger.Server, env map[string]string, overlays ...string) (*collector.Process, string) {
	t.Helper()
	overlay, jenv := j.Collector(t)
	hepAddr, health, telemetry := ports.Addr(t), ports.Addr(t), port(ports.Addr(t))
	for k, v := range map[string]string{
		"SIPHON_HEP_ENDPOINT": hepAddr, "SIPHON_CDR_HTTP_ENDPOINT": ports.Addr(t), "SIPHON_CDR_SYSLOG_ENDPOINT": ports.Addr(t),
		"SIPHON_HEALTH_ENDPOINT": health, "SIPHON_TELEMETRY_PORT": telemetry, "SIPHON_STATE_DIR": t.TempDir(),
		"SIPHON_KPI_ENDPOINT": ports.Addr(t), "SIPHON_HOMER_ENDPOINT": ports.Addr(t),
	} {
		jenv[k] = v
	}
	for k, v := range env {
		jenv[k] = v
	}
	p := collector.Start(t, collector.Options{Config: "siphon:config.yaml", Overlays: append([]string{overlay}, overlays...),
		Env: jenv, HealthAddr: health, TelemetryPort: telemetry})
	return p, hepAddr
}

// TestCallTracesSampling: config.yaml with the call-traces.yaml overlay
// (its decision wait shortened) keeps the calls section 7 of
// docs/call-traces.md names, whole: a 503 (an error), a 404 (failed, no
// error), a call cancelled after 29.5 s of ringing, one with a post-dial
// delay of 7 s, one from a scanner's User-Agent. With no share of the other
// calls, calls answered, busy or cancelled after 5 s are dropped; with all
// of it, they are kept, by share-of-the-rest. The spans of a kept call that
// leave after the decision (its BYE and its root, when it ends later)
// follow it through the decision cache, as those of a dropped call do.
func TestCallTracesSampling(t *testing.T) {
	type kept struct {
		spans  []string
		policy string
	}
	whole := []string{"SIP call internal", "INVITE server", "INVITE client", "ACK server", "ACK client", "BYE server", "BYE client"}
	failed := []string{"SIP call internal", "INVITE server", "INVITE client"}
	cancelled := []string{"SIP call internal", "INVITE server", "INVITE client", "CANCEL server", "CANCEL client"}
	always := map[string]kept{
		"failed-503":   {failed, "setup-or-call-error"},
		"failed-404":   {failed, "failed-call"},
		"long-ringing": {cancelled, "cancelled-after-long-ringing"},
		"long-pdd":     {whole, "long-post-dial-delay"},
		"scanner":      {failed, "scanner"},
	}
	tests := []struct {
		name, percent string
		kept          map[string]kept // beyond always
		dropped       []string
	}{
		{"no share of the rest", "0", nil, []string{"answered", "busy", "short-ringing"}},
		{"all of the rest", "100", map[string]kept{"answered": {whole, "share-of-the-rest"},
			"busy": {failed, "share-of-the-rest"}, "short-ringing": {cancelled, "share-of-the-rest"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := map[string]kept{}
			for id, k := range always {
				want[id] = k
			}
			for id, k := range tt.kept {
				want[id] = k
			}
			j := jaeger.Start(t)
			col, hepAddr := startTracing(t, j, map[string]string{"SIPHON_TRACE_DECISION_WAIT": "3s", "SIPHON_TRACE_SAMPLE_PERCENT": tt.percent},
				"siphon:call-traces.yaml")
			base := time.Now().Add(-time.Minute) // capture times of the test's choosing, all in the past
			calls := map[string]*hepCall{}
			call := func(id string) *hepCall {
				calls[id] = newHEPCall(t, base, id)
				return calls[id]
			}
			call("answered").setup(1, 2, 200)
			call("long-pdd").setup(7, 8, 200)
			call("failed-503").setup(0, 0.5, 503)
			call("failed-404").setup(0, 0.3, 404)
			call("busy").setup(0.3, 0.5, 486)
			call("long-ringing").setup(0.5, 30.003, 487)
			calls["long-ringing"].cancel(30)
			call("short-ringing").setup(0.5, 5.503, 487)
			calls["short-ringing"].cancel(5.5)
			scan := call("scanner")
			scan.ua = "friendly-scanner"
			scan.setup(0, 0.2, 404)
			for _, c := range calls {
				c.send(hepAddr)
			}
			// every call decided (on its setup spans), then the two answered calls end
			col.WaitMetric(60*time.Second, float64(len(calls)), "otelcol_processor_tail_sampling_global_count_traces_sampled", nil)
			calls["answered"].bye(40)
			calls["long-pdd"].bye(40)
			calls["answered"].send(hepAddr)
			calls["long-pdd"].send(hepAddr)

			for id, w := range want {
				tr := traceOf(t, j, id)
				// a late span may still be on its way to Jaeger
				require.EventuallyWithT(t, func(c *assert.CollectT) {
					var err error
					tr, err = j.Trace(calltrace.TraceID(id).String())
					if assert.NoError(c, err) {
						assert.ElementsMatch(c, w.spans, spanNames(tr), "%s kept whole", id)
					}
				}, 30*time.Second, 200*time.Millisecond)
				n, err := col.Value("otelcol_processor_tail_sampling_count_traces_sampled", exposition.Labels{"policy": w.policy, "sampled": "true"})
				require.NoError(t, err, "the series of policy %s", w.policy)
				assert.Positive(t, n, "%s kept by %s", id, w.policy)
			}
			root := traceOf(t, j, "long-pdd").Find("SIP call")[0]
			assert.InDelta(t, 7.0, root.Tags["sip.call.post_dial_delay"], 1e-6)
			assert.InDelta(t, 29.5, traceOf(t, j, "long-ringing").Find("INVITE")[0].Tags["sip.call.ringing_duration"], 0.01)
			assert.Equal(t, true, traceOf(t, j, "scanner").Find("SIP call")[0].Tags["sip.scanner"])
			for _, s := range traceOf(t, j, "failed-404").Find("INVITE") {
				assert.Equal(t, "failed", s.Tags["sip.call.result"], "the 404's %s INVITE span, what failed-call keeps it by", s.Kind)
				assert.False(t, s.Error(), "a 404 is no error")
			}

			// every call was decided once, by its setup spans: with all of
			// the rest kept, share-of-the-rest sampled each
			share, err := col.Value("otelcol_processor_tail_sampling_count_traces_sampled",
				exposition.Labels{"policy": "share-of-the-rest", "sampled": map[string]string{"0": "false", "100": "true"}[tt.percent]})
			require.NoError(t, err, "share-of-the-rest's series")
			assert.Equal(t, float64(len(calls)), share, "share-of-the-rest's decisions at %s %%", tt.percent)
			kept, err := col.Value("otelcol_processor_tail_sampling_early_releases_from_cache_decision", exposition.Labels{"sampled": "true"})
			require.NoError(t, err)
			assert.GreaterOrEqual(t, kept, 2.0, "the long-PDD call's BYE and root followed its decision")
			if len(tt.dropped) == 0 {
				return
			}
			// The dropped calls are decided before a call sent after all of
			// them: once its root is in Jaeger, theirs would have been too.
			col.WaitMetric(60*time.Second, float64(len(calls)), "otelcol_sipcall_spans", exposition.Labels{"span": "call"})
			sentinel := newHEPCall(t, base, "sentinel")
			sentinel.setup(0, 0.1, 503)
			sentinel.send(hepAddr)
			traceOf(t, j, "sentinel")
			for _, id := range tt.dropped {
				_, err := j.Trace(calltrace.TraceID(id).String())
				assert.ErrorIs(t, err, jaeger.ErrNotFound, "%s was not kept", id)
			}
			dropped, err := col.Value("otelcol_processor_tail_sampling_early_releases_from_cache_decision", exposition.Labels{"sampled": "false"})
			require.NoError(t, err)
			assert.GreaterOrEqual(t, dropped, 2.0, "the answered call's BYE and root followed its decision")
		})
	}
}

// TestCallTracesThroughTiers: two agents (agent.yaml) in front of two
// gateways (gateway.yaml) sending their call traces to Jaeger. A B2BUA's
// legs captured by different agents (the b-leg's INVITE naming the a-leg in
// X-CID) are one trace, the b-leg under its leg span; calls through a
// proxy, each one trace, keep their trace through a restart of the
// gateways between their setup and their BYE: the spans from before and
// after hang under one root, of the same id, marked partial.
func TestCallTracesThroughTiers(t *testing.T) {
	j := jaeger.Start(t)
	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "siphon-cdr", "siphon-sip"))
	require.NoError(t, err)
	defer k.Close()
	brokers := k.ListenAddrs()[0]
	overlay, env := j.Collector(t)
	toJaeger := func(o *collector.Options) {
		o.Overlays = append(o.Overlays, overlay)
		for key, v := range env {
			o.Env[key] = v
		}
	}
	gws := []*tier{startGateway(t, "gw-0", brokers, "siphon-cdr", "siphon-sip", t.TempDir(), toJaeger),
		startGateway(t, "gw-1", brokers, "siphon-cdr", "siphon-sip", t.TempDir(), toJaeger)}
	agents := []*tier{startAgent(t, gws...), startAgent(t, gws...)}
	base := time.Now().Add(-time.Minute)

	// the B2BUA: A -> P on the a-leg (agent 0), P -> B on the b-leg (agent 1)
	a, b := newHEPCall(t, base, "a-leg@127.0.0.10"), newHEPCall(t, base, "b-leg@127.0.0.10")
	a.req(0, partyA, partyP, "INVITE", 1, "")
	b.req(0.002, partyP, partyB, "INVITE", 1, "", "X-CID: a-leg@127.0.0.10")
	b.send(agents[1].hep) // the b-leg's INVITE first, so that its key is set
	agents[1].WaitMetric(30*time.Second, 1, "otelcol_sip_correlation_records", exposition.Labels{"source": "header"})
	b.resp(1, partyB, partyP, 180, "INVITE", 1, "b1")
	a.resp(1.001, partyP, partyA, 180, "INVITE", 1, "p1")
	b.resp(3, partyB, partyP, 200, "INVITE", 1, "b1")
	a.resp(3.001, partyP, partyA, 200, "INVITE", 1, "p1")
	a.req(3.1, partyA, partyP, "ACK", 1, "p1")
	b.req(3.101, partyP, partyB, "ACK", 1, "b1")
	a.req(30, partyA, partyP, "BYE", 2, "p1")
	a.resp(30.001, partyP, partyA, 200, "BYE", 2, "p1")
	b.req(30.002, partyP, partyB, "BYE", 2, "b1")
	b.resp(30.05, partyB, partyP, 200, "BYE", 2, "b1")
	a.send(agents[0].hep)
	b.send(agents[1].hep)
	tr := traceOf(t, j, "a-leg@127.0.0.10")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		tr, err = j.Trace(calltrace.TraceID("a-leg@127.0.0.10").String())
		if assert.NoError(c, err) {
			assert.Len(c, tr.Spans, 8, "root, leg, three transactions per leg: %v", spanNames(tr))
		}
	}, 30*time.Second, 200*time.Millisecond)
	t.Logf("the B2BUA call through two agents and a gateway:\n%s", tr.Tree())
	root, leg := tr.Find("SIP call"), tr.Find("SIP leg")
	require.Len(t, root, 1)
	require.Len(t, leg, 1)
	assert.Equal(t, root[0].SpanID, leg[0].ParentID, "the leg under the root")
	assert.Equal(t, calltrace.LegSpanID("a-leg@127.0.0.10", "b-leg@127.0.0.10").String(), leg[0].SpanID)
	assert.Equal(t, "b-leg@127.0.0.10", leg[0].Tags["sip.call_id"])
	assert.Equal(t, "a-leg@127.0.0.10", root[0].Tags["sip.correlation_id"])
	for _, s := range tr.Spans {
		switch s.Tags["sip.call_id"] {
		case "a-leg@127.0.0.10":
			if s.Name != "SIP call" {
				assert.Equal(t, root[0].SpanID, s.ParentID, "%s of the a-leg under the root", s.Name)
			}
		case "b-leg@127.0.0.10":
			if s.Name != "SIP leg" {
				assert.Equal(t, leg[0].SpanID, s.ParentID, "%s of the b-leg under its leg", s.Name)
			}
		default:
			t.Errorf("span %s of no leg: %v", s.Name, s.Tags)
		}
	}

	// calls through a proxy, set up through agent 0; their INVITE and ACK
	// spans leave from whichever gateway had the call, before the restart
	const n = 6
	var proxied []*hepCall
	for i := range n {
		c := newHEPCall(t, base, fmt.Sprintf("restart-%d@127.0.0.10", i))
		c.setup(1, 2, 200)
		c.send(agents[0].hep)
		proxied = append(proxied, c)
	}
	for _, c := range proxied {
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			tr, err := j.Trace(calltrace.TraceID(c.callID).String())
			if assert.NoError(ct, err, c.callID) {
				assert.Len(ct, tr.Spans, 4, "INVITE and ACK on both hops of %s", c.callID)
			}
		}, 60*time.Second, 200*time.Millisecond)
	}
	for _, g := range gws { // a graceful restart: the calls in flight are counted
		require.NoError(t, g.Stop(30*time.Second))
	}
	for _, g := range gws {
		g.Process = collector.Start(t, g.opts)
	}
	for _, c := range proxied {
		c.bye(40)
		c.send(agents[0].hep)
	}
	for _, c := range proxied {
		tr := traceOf(t, j, c.callID)
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			var err error
			tr, err = j.Trace(calltrace.TraceID(c.callID).String())
			if assert.NoError(ct, err) {
				assert.ElementsMatch(ct, []string{"SIP call internal", "INVITE server", "INVITE client", "ACK server",
					"ACK client", "BYE server", "BYE client"}, spanNames(tr), c.callID)
			}
		}, 30*time.Second, 200*time.Millisecond)
		if c == proxied[0] {
			t.Logf("a call across the gateways' restart:\n%s", tr.Tree())
		}
		root := tr.Find("SIP call")[0]
		assert.Equal(t, calltrace.RootSpanID(c.callID).String(), root.SpanID)
		assert.Equal(t, true, root.Tags["sip.call.partial"], "the restarted gateway saw the BYE only")
		for _, s := range tr.Spans {
			if s.Name != "SIP call" {
				assert.Equal(t, root.SpanID, s.ParentID, "%s of %s under the one root", s.Name, c.callID)
			}
		}
	}
}
