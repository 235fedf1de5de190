package sipkpiconnector

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/connectors/sipcallconnector"
	"github.com/siphon-otel/siphon-otel/internal/callmedia"
	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/testenv/mediaflow"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver"
)

// mediaMOS is the E-model MOS of G.711 (PLC) for a stream's figures, the
// one-way delay half the round trip plus twice the jitter.
func mediaMOS(loss, jitter, rtt float64) float64 {
	return mediaq.MOSFromR(mediaq.EModel(mediaq.EModelInput{LossRatio: loss, Delay: rtt/2 + 2*jitter, Ie: 0, Bpl: 25.1}))
}

// capturedRTT is the mean round-trip time of B's four reports in
// rtpengine's capture.
func capturedRTT(t *testing.T, c *mediaflow.Call) float64 {
	var sum float64
	var n int
	for _, p := range c.RTCP() {
		rep, err := mediaq.ParseRTCPJSON(p.Payload, mediaq.Options{Arrival: p.Time()})
		require.NoError(t, err)
		if len(rep.Streams) == 1 {
			sum += rep.Streams[0].RTT
			n++
		}
	}
	require.Equal(t, 4, n)
	return sum / 4
}

// TestMediaMetrics: a call whose media RTPEngine anchors and reports on,
// in both directions, whose callee sends X-RTP-Stat on its BYE: each stream
// is observed once, at its end, in every sip.media.* metric it has a
// figure for, by node, codec and direction; its exemplars open the call's
// trace as the sipcall connector builds it from the same records.
func TestMediaMetrics(t *testing.T) {
	call := mediaflow.New(t, "media-1")
	call.CorrelationID = "media-key"
	ld := call.Logs("sbc-1", call.Setup(time.Second)...)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	call.Append(lrs, call.RTCP()...)
	call.Append(lrs, call.RTCPFromA(26, 370)...)
	call.Append(lrs, call.Bye(100*time.Millisecond, false, mediaflow.RTPStat(t, "X-RTP-Stat: PS=1234,"), "")...)

	h := startConnector(t, createDefaultConfig().(*Config), new(consumertest.MetricsSink))
	require.NoError(t, h.c.ConsumeLogs(context.Background(), ld))
	assert.Equal(t, int64(10), h.counter(t, "sipkpi_media_reports", attribute.String("outcome", "accepted")), "8 report blocks, X-RTP-Stat on both hops")
	assert.Equal(t, int64(2), h.counter(t, "sipkpi_media_reports", attribute.String("outcome", "no_figures")), "the capture's two SRs without report blocks")
	assert.Equal(t, int64(10), h.counter(t, "sipkpi_records", attribute.String("reason", "hep_rtcp")))
	assert.Equal(t, int64(3), h.counter(t, "sipkpi_state_entries", attribute.String("state", "media_streams")))
	assert.Equal(t, int64(1), h.counter(t, "sipkpi_state_entries", attribute.String("state", "media_calls")))

	// nothing before the streams end: linger after the BYE's 200
	h.advance(25 * time.Second)
	ms := readMetrics(h.c.collect())
	ms.absent(t, "sip.media.mos")
	ms.absent(t, "sip.media.streams")

	h.advance(10 * time.Second)
	md := h.c.collect()
	ms = readMetrics(md)
	rtt := capturedRTT(t, call)
	type want struct {
		dir                    string
		loss, jitter, rtt, mos float64
		noRTT                  bool
	}
	streams := []want{
		{"caller_to_callee", 13.0 / 256, 37.0 / 8000, rtt, mediaMOS(13.0/256, 37.0/8000, rtt), false},
		{"callee_to_caller", 26.0 / 256, 370.0 / 8000, rtt, mediaMOS(26.0/256, 370.0/8000, rtt), false},
		// Poly's X-RTP-Stat: what B received, MOS given
		{"caller_to_callee", 0, 0.001, 0, 4.0, true},
	}
	sums := map[string]map[string]float64{}
	counts := map[string]map[string]uint64{}
	for _, w := range streams {
		for name, v := range map[string]float64{"sip.media.mos": w.mos, "sip.media.packet_loss.ratio": w.loss, "sip.media.jitter": w.jitter, "sip.media.rtt": w.rtt} {
			if name == "sip.media.rtt" && w.noRTT {
				continue
			}
			if sums[name] == nil {
				sums[name], counts[name] = map[string]float64{}, map[string]uint64{}
			}
			sums[name][w.dir] += v
			counts[name][w.dir]++
		}
	}
	for name, bounds := range map[string][]float64{"sip.media.mos": mosBounds, "sip.media.packet_loss.ratio": lossBounds,
		"sip.media.jitter": jitterBounds, "sip.media.rtt": rttBounds} {
		for dir, sum := range sums[name] {
			p := ms.point(t, name, "node", "sbc-1", labelMediaCodec, "G711", labelMediaDirection, dir)
			assert.Equal(t, counts[name][dir], p.count, "%s %s", name, dir)
			assert.InDelta(t, sum, p.sum, 1e-9, "%s %s", name, dir)
			assert.Equal(t, bounds, p.bounds, name)
			assert.NotEmpty(t, p.exemplars, "%s %s", name, dir)
		}
	}
	assert.Equal(t, []float64{1, 1.5, 2, 2.5, 3, 3.1, 3.6, 4.0, 4.3, 4.5}, mosBounds)
	classes := map[string]float64{}
	for _, w := range streams {
		classes[w.dir+"/"+mediaq.ClassOf(w.mos).String()]++
	}
	for key, n := range classes {
		dir, class, _ := strings.Cut(key, "/")
		assert.Equal(t, n, ms.sum(t, "sip.media.streams", "node", "sbc-1", labelMediaCodec, "G711", labelMediaDirection, dir, labelMediaClass, class), key)
	}
	assert.Equal(t, 3.0, ms.sum(t, "sip.media.streams"))
	assert.Zero(t, h.counter(t, "sipkpi_state_entries", attribute.String("state", "media_streams")))

	// the exemplars open the call's root span, as sipcall builds it
	traces := new(consumertest.TracesSink)
	cf := sipcallconnector.NewFactory()
	tc, err := cf.CreateLogsToTraces(context.Background(), connectortest.NewNopSettings(cf.Type()), cf.CreateDefaultConfig(), traces)
	require.NoError(t, err)
	require.NoError(t, tc.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, tc.ConsumeLogs(context.Background(), ld))
	require.NoError(t, tc.Shutdown(context.Background()))
	roots := map[pcommon.TraceID]pcommon.SpanID{}
	for _, td := range traces.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					if sp.Name() == "SIP call" {
						roots[sp.TraceID()] = sp.SpanID()
					}
				}
			}
		}
	}
	require.Len(t, roots, 1)
	var media int
	for _, r := range exemplarRefs(md) {
		if !slices.Contains([]string{"sip.media.mos", "sip.media.jitter", "sip.media.packet_loss.ratio", "sip.media.rtt", "sip.media.streams"}, r.metric) {
			continue
		}
		media++
		assert.Equal(t, calltrace.TraceID("media-key"), r.trace, r.metric)
		assert.Equal(t, roots[r.trace], r.span, "%s: the exemplar opens the call's root span", r.metric)
		assert.Equal(t, "media-1", r.callID)
	}
	assert.Positive(t, media)
}

// TestMediaDisabled: media.enabled false keeps no media state and emits
// no media metric; the records still count as records.
func TestMediaDisabled(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Media.Enabled = false
	call := mediaflow.New(t, "off")
	ld := call.Logs("sbc-1", call.Setup(time.Second)...)
	call.Append(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords(), call.RTCP()...)
	h := startConnector(t, cfg, new(consumertest.MetricsSink))
	require.NoError(t, h.c.ConsumeLogs(context.Background(), ld))
	assert.Nil(t, h.c.kpi.media)
	assert.Equal(t, int64(6), h.counter(t, "sipkpi_records", attribute.String("reason", "hep_rtcp")))
	require.NoError(t, h.c.Shutdown(context.Background()))
	readMetrics(h.c.collect()).absent(t, "sip.media.streams")
}

// TestMediaStreamsEndAtShutdown: a stream still open at shutdown ends then
// and is in the last flush.
func TestMediaStreamsEndAtShutdown(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	call := mediaflow.New(t, "open")
	ld := call.Logs("sbc-1", call.Setup(time.Second)...)
	call.Append(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords(), call.RTCP()...)
	h := startConnector(t, createDefaultConfig().(*Config), sink)
	require.NoError(t, h.c.ConsumeLogs(context.Background(), ld))
	require.NoError(t, h.c.Shutdown(context.Background()))
	all := sink.AllMetrics()
	require.NotEmpty(t, all)
	ms := readMetrics(all[len(all)-1])
	assert.Equal(t, 1.0, ms.sum(t, "sip.media.streams", labelMediaDirection, "caller_to_callee"))
}

// hepToKPI starts a real hep receiver on a loopback port feeding the
// connector, and returns a socket to it.
func hepToKPI(t *testing.T, h *harness) net.Conn {
	t.Helper()
	rf := hepreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*hepreceiver.Config)
	addr := ports.Addr(t)
	rcfg.UDP.GetOrInsertDefault().Endpoint = addr
	rcfg.UDP.Get().Readers = 1
	rcfg.Batch.Timeout = time.Millisecond
	rcv, err := rf.CreateLogs(context.Background(), receivertest.NewNopSettings(rf.Type()), rcfg, h.c)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	conn, err := net.Dial("udp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestMediaThroughHEPReceiver: the three kinds of report reach the
// connector through the real hep receiver over a loopback socket:
// rtpengine's HEP RTCP (the capture), an RFC 6035 PUBLISH (the RFC's
// example) and an X-RTP-Stat BYE (Poly's published example); and bad ones
// (malformed RTCP JSON, an absurd fraction lost, a report for a call never
// seen) are counted without a crash.
func TestMediaThroughHEPReceiver(t *testing.T) {
	h := startConnector(t, createDefaultConfig().(*Config), new(consumertest.MetricsSink))
	conn := hepToKPI(t, h)
	send := func(pkts ...hep.Packet) {
		for _, p := range pkts {
			_, err := conn.Write(mediaflow.Wire(t, p))
			require.NoError(t, err)
		}
	}
	// waits until the connector has taken n records of a reason: a call's
	// SIP is in before its reports go
	taken := func(reason string, n int64) {
		t.Helper()
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			assert.Equal(ct, n, h.counter(ct, "sipkpi_records", attribute.String("reason", reason)))
		}, 10*time.Second, 5*time.Millisecond)
	}

	rtcp := mediaflow.New(t, "rtpengine-call") // HEP RTCP, then the caller's BYE
	vq := mediaflow.New(t, "vq-call")          // the caller's PUBLISH after the BYE
	vq.Codec = "18 G729/8000"
	xrtp := mediaflow.New(t, "xrtp-call") // the callee's BYE with X-RTP-Stat
	send(rtcp.Setup(time.Second)...)
	send(vq.Setup(time.Second)...)
	send(xrtp.Setup(time.Second)...)
	taken("sip_message", 21)

	bad := rtcp.RTCP()[1]
	bad.Payload = []byte(`{"report_blocks":[{"fraction_lost":13,`)
	absurd := rtcp.RTCP()[1]
	absurd.Payload = []byte(`{"report_blocks":[{"source_ssrc":1,"fraction_lost":300}]}`)
	stranger := mediaflow.New(t, "never-seen").RTCP()[1]
	send(rtcp.RTCP()...)
	send(bad, absurd, stranger)
	taken("hep_rtcp", 9)
	send(rtcp.Bye(0, true, "", "")...)
	send(vq.Bye(0, true, "", "")...)
	send(vq.Publish(time.Second, vq.VQReport()))
	send(xrtp.Bye(0, false, mediaflow.RTPStat(t, "X-RTP-Stat: PS=1234,"), "")...)
	taken("sip_message", 21+13)
	assert.Equal(t, int64(4+1+2), h.counter(t, "sipkpi_media_reports", attribute.String("outcome", "accepted")), "RTPEngine's 4 blocks, the PUBLISH, X-RTP-Stat on both hops")
	assert.Equal(t, int64(1), h.counter(t, "sipkpi_media_reports", attribute.String("outcome", "unknown_call")))
	assert.Equal(t, int64(4), h.counter(t, "sipkpi_media_reports", attribute.String("outcome", "no_figures")), "2 SRs without blocks, the malformed and the absurd")

	h.advance(time.Minute + time.Second) // past linger, and idle_timeout for the stranger
	ms := readMetrics(h.c.collect())
	node := "2001" // the receiver's node: the capture id
	// rtpengine's RTCP: A's stream to the callee, E-model MOS
	rtt := capturedRTT(t, rtcp)
	mos := ms.point(t, "sip.media.mos", "node", node, labelMediaCodec, "G711", labelMediaDirection, "caller_to_callee")
	// the X-RTP-Stat stream goes the same way: MOS 4.0 given
	assert.Equal(t, uint64(2), mos.count)
	assert.InDelta(t, mediaMOS(13.0/256, 37.0/8000, rtt)+4.0, mos.sum, 1e-9)
	jit := ms.point(t, "sip.media.jitter", "node", node, labelMediaCodec, "G711", labelMediaDirection, "caller_to_callee")
	assert.InDelta(t, 37.0/8000+0.001, jit.sum, 1e-12)
	// the PUBLISH: both directions, G.729, MOS-CQ 4.0 received by the
	// caller, 4.3 by the far end
	for dir, want := range map[string]float64{"callee_to_caller": 4.0, "caller_to_callee": 4.3} {
		p := ms.point(t, "sip.media.mos", "node", node, labelMediaCodec, "G729", labelMediaDirection, dir)
		assert.Equal(t, uint64(1), p.count, dir)
		assert.InDelta(t, want, p.sum, 1e-12, dir)
		loss := ms.point(t, "sip.media.packet_loss.ratio", "node", node, labelMediaCodec, "G729", labelMediaDirection, dir)
		assert.InDelta(t, 0.05, loss.sum, 1e-12, dir)
	}
	// the stranger: codec and direction unknown
	p := ms.point(t, "sip.media.mos", "node", node, labelMediaCodec, callmedia.CodecUnknown, labelMediaDirection, "unknown")
	assert.Equal(t, uint64(1), p.count)
	assert.Equal(t, 5.0, ms.sum(t, "sip.media.streams"))
}
