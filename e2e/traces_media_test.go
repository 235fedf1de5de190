//go:build integration

package e2e

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/callmedia"
	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/mediaflow"
)

// TestCallTraceMedia: a call whose media RTPEngine anchors (rtpengine's
// captured RTCP, and the same as the caller's reports on the other
// direction), sent as HEP to the real collector: Jaeger returns its root
// span with each direction's stream figures, equal to what callmedia makes
// of the same records and to what sipkpi's metrics observe in the same
// collector, and one media.report event a report.
func TestCallTraceMedia(t *testing.T) {
	fast := filepath.Join(t.TempDir(), "media.yaml")
	require.NoError(t, writeFile(fast, "connectors:\n  sipcall:\n    media:\n      linger: 3s\n  sipkpi:\n    media:\n      linger: 3s\n"))
	r := startTraceRig(t, false, fast)

	call := mediaflow.New(t, "media-trace-1@127.0.0.1")
	var pkts []hep.Packet
	pkts = append(pkts, call.Setup(time.Second)...)
	pkts = append(pkts, call.RTCP()...)
	pkts = append(pkts, call.RTCPFromA(26, 370)...)
	pkts = append(pkts, call.Bye(0, true, "", "")...)
	conn, err := net.Dial("tcp", r.hep)
	require.NoError(t, err)
	defer conn.Close()
	var wire []byte
	for _, p := range pkts {
		wire = append(wire, mediaflow.Wire(t, p)...)
	}
	_, err = conn.Write(wire)
	require.NoError(t, err)

	// what callmedia makes of the same records, the correlation id as the
	// sip_correlation processor sets it (the HEP correlation id)
	call.CorrelationID = call.CallID
	var streams []callmedia.Stream[struct{}]
	agg := callmedia.New(callmedia.Config{Linger: time.Second, IdleTimeout: time.Hour, CallTimeout: time.Hour,
		MaxCalls: 10, MaxStreams: 10}, func(s *callmedia.Stream[struct{}]) {
		c := *s
		c.Sources = slices.Clone(s.Sources)
		streams = append(streams, c)
	})
	reports := 0
	agg.OnReport = func(*callmedia.Report[struct{}]) { reports++ }
	now := time.Now()
	for _, it := range record.All(call.Logs("sbc", pkts...)) {
		agg.Consume(it.Log, it.Log.Timestamp().AsTime(), now, func() struct{} { return struct{}{} })
	}
	agg.EndAll()
	require.Len(t, streams, 2)
	require.Equal(t, 8, reports)

	root := r.traceOf(call.CallID).Find("SIP call")[0]
	assert.Equal(t, int64(2), root.Tags[record.AttrMediaStreams])
	for _, s := range streams {
		d := s.Direction.String()
		require.NotEqual(t, callmedia.DirUnknown, s.Direction)
		tag := func(attr string) any { return root.Tags[record.AttrMediaOf(d, attr)] }
		require.Contains(t, root.Tags, record.AttrMediaOf(d, record.AttrMediaMOS), "%s in %v", d, root.Tags)
		assert.InDelta(t, s.MOS, tag(record.AttrMediaMOS), 1e-9, d)
		assert.InDelta(t, s.LossRatio, tag(record.AttrMediaPacketLossRatio), 1e-12, d)
		assert.InDelta(t, s.Jitter, tag(record.AttrMediaJitter), 1e-12, d)
		assert.InDelta(t, s.RTT, tag(record.AttrMediaRTT), 1e-12, d)
		assert.Equal(t, s.Codec, tag(record.AttrMediaCodec), d)
		assert.Equal(t, s.Class.String(), tag(record.AttrMediaQualityClass), d)
		assert.Equal(t, true, tag(record.AttrMediaEstimated), d)
	}
	// the figures themselves: the capture's fraction lost each way
	assert.InDelta(t, 13.0/256, root.Tags["media.caller_to_callee.packet_loss.ratio"], 1e-12)
	assert.InDelta(t, 26.0/256, root.Tags["media.callee_to_caller.packet_loss.ratio"], 1e-12)
	var events int
	for _, l := range root.Logs {
		if l.Fields["event"] == record.EventMediaReport {
			events++
			assert.Equal(t, mediaq.SourceRTCP.String(), l.Fields[record.AttrMediaSource])
		}
	}
	assert.Equal(t, reports, events, "one event a report")
	// and sipkpi's metrics of the same streams, in the same collector: one
	// stream a direction, so each histogram's sum is its figure
	kpis := func(c *assert.CollectT, name, dir string) (float64, bool) {
		f, err := exposition.Scrape(context.Background(), "http://"+r.kpi+"/metrics")
		if !assert.NoError(c, err) {
			return 0, false
		}
		labels := exposition.Labels{"media_direction": dir}
		n, ok := f.Sum(name+"_count", labels)
		if !assert.True(c, ok, "%s of %s", name, dir) || !assert.Equal(c, 1.0, n, "%s of %s: one stream", name, dir) {
			return 0, false
		}
		v, _ := f.Sum(name+"_sum", labels)
		return v, true
	}
	for _, s := range streams {
		d := s.Direction.String()
		assert.EventuallyWithT(t, func(c *assert.CollectT) {
			for name, attr := range map[string]string{"sip_media_mos": record.AttrMediaMOS,
				"sip_media_packet_loss_ratio": record.AttrMediaPacketLossRatio, "sip_media_jitter_seconds": record.AttrMediaJitter,
				"sip_media_rtt_seconds": record.AttrMediaRTT} {
				if v, ok := kpis(c, name, d); ok {
					assert.InDelta(c, root.Tags[record.AttrMediaOf(d, attr)], v, 1e-9, "%s of %s against the root's", name, d)
				}
			}
		}, 60*time.Second, 500*time.Millisecond)
	}
	t.Logf("root media: caller_to_callee MOS %v loss %v jitter %v s; callee_to_caller MOS %v loss %v jitter %v s",
		root.Tags["media.caller_to_callee.mos"], root.Tags["media.caller_to_callee.packet_loss.ratio"], root.Tags["media.caller_to_callee.jitter"],
		root.Tags["media.callee_to_caller.mos"], root.Tags["media.callee_to_caller.packet_loss.ratio"], root.Tags["media.callee_to_caller.jitter"])
}
