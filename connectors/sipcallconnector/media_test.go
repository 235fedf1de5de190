package sipcallconnector

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/internal/callmedia"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/mediaflow"
)

// mediaConfig is testConfig without the CDR wait, so that a root leaves
// linger after its call's end unless it waits for its media.
func mediaConfig() *Config {
	cfg := testConfig()
	cfg.CDRWait = 0
	// longer than linger, so that the root's wait for its streams shows
	cfg.Media.Linger = 2 * cfg.Linger
	return cfg
}

// reference is what callmedia alone makes of the same records: the streams
// at their end and each report, as sipkpi's media metrics see them.
type reference struct {
	streams []callmedia.Stream[bool]
	reports []callmedia.Report[bool]
}

func referenceMedia(cfg *Config, now time.Time, lds ...plog.Logs) reference {
	var ref reference
	agg := callmedia.New(cfg.Media.Aggregator(), func(s *callmedia.Stream[bool]) {
		c := *s
		c.Sources = slices.Clone(s.Sources)
		ref.streams = append(ref.streams, c)
	})
	agg.OnReport = func(r *callmedia.Report[bool]) { ref.reports = append(ref.reports, *r) }
	for _, ld := range lds {
		for _, it := range record.All(ld) {
			agg.Consume(it.Log, time.Unix(0, captureTime(it.Log, now)), now, noTag)
		}
	}
	agg.EndAll()
	return ref
}

// mediaAttrsOf is the root's media attributes of one direction.
func mediaAttrsOf(root span, dir callmedia.Direction) map[string]any {
	n := mediaAttrs[dir]
	out := map[string]any{}
	for _, k := range []string{n.mos, n.estimated, n.jitter, n.loss, n.rtt, n.codec, n.class} {
		if v, ok := root.attrs[k]; ok {
			out[k] = v
		}
	}
	return out
}

// wantAttrs is the root's attributes of a stream's figures.
func wantAttrs(s callmedia.Stream[bool]) map[string]any {
	n := mediaAttrs[s.Direction]
	out := map[string]any{n.codec: s.Codec}
	if s.Has&mediaq.FigMOS != 0 {
		out[n.mos], out[n.estimated], out[n.class] = s.MOS, s.MOSEstimated, s.Class.String()
	}
	if s.Has&mediaq.FigJitter != 0 {
		out[n.jitter] = s.Jitter
	}
	if s.Has&mediaq.FigLossRatio != 0 {
		out[n.loss] = s.LossRatio
	}
	if s.Has&mediaq.FigRTT != 0 {
		out[n.rtt] = s.RTT
	}
	return out
}

func wantEvent(r callmedia.Report[bool]) map[string]any {
	out := map[string]any{record.AttrMediaSource: r.Source.String(), record.AttrMediaDirection: r.Direction.String()}
	if r.HasSSRC {
		out[record.AttrMediaSSRC] = int64(r.SSRC)
	}
	if r.Has&mediaq.FigLossRatio != 0 {
		out[record.AttrMediaPacketLossRatio] = r.LossRatio
	}
	if r.Has&mediaq.FigJitter != 0 {
		out[record.AttrMediaJitter] = r.Jitter
	}
	if r.Has&mediaq.FigRTT != 0 {
		out[record.AttrMediaRTT] = r.RTT
	}
	if r.Has&mediaq.FigMOS != 0 {
		out[record.AttrMediaMOS], out[record.AttrMediaEstimated] = r.MOS, r.MOSEstimated
	}
	return out
}

func mediaEvents(root span) []spanEvent {
	var out []spanEvent
	for _, e := range root.events {
		if e.name == record.EventMediaReport {
			out = append(out, e)
		}
	}
	return out
}

// TestRootMedia: a call's media reports (rtpengine's captured RTCP, both
// ways; RFC 6035 PUBLISH; X-RTP-Stat on a BYE) are span events of its root,
// one per report, and each direction's stream figures are attributes of the
// root equal to callmedia's (sipkpi's metrics) for the same records. The
// root waits for the streams, which end media.linger after the call; a call
// without media leaves after linger, as with media off.
func TestRootMedia(t *testing.T) {
	tests := []struct {
		name    string
		codec   string
		media   bool // media on
		packets func(c *mediaflow.Call) []hep.Packet
		// pinned figures, independent of callmedia: loss ratio by direction
		wantLoss   map[callmedia.Direction]float64
		wantEvents int
		rtcp       int64 // hep.rtcp records given to media
	}{{
		name: "rtpengine RTCP both ways", media: true,
		packets: func(c *mediaflow.Call) []hep.Packet {
			p := append(c.RTCP(), c.RTCPFromA(26, 370)...)
			return append(p, c.Bye(0, true, "", "")...)
		},
		wantLoss:   map[callmedia.Direction]float64{callmedia.DirCallerToCallee: 13.0 / 256, callmedia.DirCalleeToCaller: 26.0 / 256},
		wantEvents: 8, rtcp: 8,
	}, {
		name: "RFC 6035 PUBLISH", codec: "18 G729/8000", media: true,
		packets: func(c *mediaflow.Call) []hep.Packet {
			return append(c.Bye(0, true, "", ""), c.Publish(time.Second, c.VQReport()))
		},
		wantLoss:   map[callmedia.Direction]float64{callmedia.DirCallerToCallee: 0.05, callmedia.DirCalleeToCaller: 0.05},
		wantEvents: 2,
	}, {
		name: "X-RTP-Stat on the caller's BYE", media: true,
		packets: func(c *mediaflow.Call) []hep.Packet {
			return c.Bye(0, true, mediaflow.RTPStat(t, "X-RTP-Stat: EX=BareSip"), "")
		},
		wantLoss:   map[callmedia.Direction]float64{callmedia.DirCalleeToCaller: 10.0 / 3100},
		wantEvents: 2, // the BYE on both hops
	}, {
		name: "no media", media: true,
		packets: func(c *mediaflow.Call) []hep.Packet { return c.Bye(0, true, "", "") },
	}, {
		name: "media off", media: false,
		packets: func(c *mediaflow.Call) []hep.Packet {
			return append(c.RTCP(), c.Bye(0, true, "", "")...)
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mediaConfig()
			cfg.Media.Enabled = tt.media
			h := startConnector(t, cfg)
			call := mediaflow.New(t, "trace-"+tt.name)
			call.Codec = tt.codec
			lds := []plog.Logs{call.Logs("sbc-1", call.Setup(time.Second)...), call.Logs("sbc-1", tt.packets(call)...)}
			for _, ld := range lds {
				h.consume(t, ld)
			}
			h.advance(cfg.Linger + time.Second)
			roots := only(h.spans(), nameCall, internal)
			if tt.wantEvents > 0 {
				require.Empty(t, roots, "the root waits for its streams' end")
				h.advance(cfg.Media.Linger)
			}
			root := one(t, h.spans(), nameCall, internal)
			assert.Equal(t, int64(tt.rtcp), h.counter(t, "sipcall_records", attribute.String("outcome", string(outMediaReport))))

			if !tt.media || tt.wantEvents == 0 {
				assert.Empty(t, mediaEvents(root))
				for k := range root.attrs {
					assert.NotContains(t, k, "media.", "no media attribute on the root")
				}
				if !tt.media {
					assert.Equal(t, int64(len(call.RTCP())), h.counter(t, "sipcall_records", attribute.String("outcome", string(outIgnored))))
				}
				return
			}

			ref := referenceMedia(cfg, t0, lds...)
			require.Len(t, ref.reports, tt.wantEvents)
			assert.Equal(t, int64(len(ref.streams)), root.attrs[record.AttrMediaStreams])
			for dir, loss := range tt.wantLoss {
				n := mediaAttrs[dir]
				require.Contains(t, root.attrs, n.loss, "direction %v", dir)
				assert.InDelta(t, loss, root.attrs[n.loss], 1e-12, "direction %v", dir)
			}
			seen := map[callmedia.Direction]bool{}
			for _, s := range ref.streams {
				require.False(t, seen[s.Direction], "one stream a direction in these calls")
				seen[s.Direction] = true
				assert.Equal(t, wantAttrs(s), mediaAttrsOf(root, s.Direction), "direction %v", s.Direction)
			}
			for _, d := range []callmedia.Direction{callmedia.DirUnknown, callmedia.DirCallerToCallee, callmedia.DirCalleeToCaller} {
				if !seen[d] {
					assert.Empty(t, mediaAttrsOf(root, d), "no stream went %v", d)
				}
			}

			evs := mediaEvents(root)
			require.Len(t, evs, tt.wantEvents)
			for i, r := range ref.reports {
				assert.Equal(t, r.At.UnixNano(), evs[i].at.UnixNano(), "event %d: the report's capture time", i)
				assert.Equal(t, wantEvent(r), evs[i].attrs, "event %d", i)
			}
			assert.Zero(t, root.dropped)
			assert.Equal(t, int64(tt.wantEvents), h.counter(t, "sipcall_media_reports", attribute.String("outcome", string(mediaAttached))))
			assert.Equal(t, int64(len(ref.streams)), h.counter(t, "sipcall_media_streams", attribute.String("outcome", string(mediaAttached))))
		})
	}
}

// TestRootMediaBounds: a root keeps at most maxMediaEvents report events
// (the rest counted as dropped), waits for open streams at most
// media.linger plus linger after its call's end, and reports or streams
// that come after it left are counted, not attached.
func TestRootMediaBounds(t *testing.T) {
	t.Run("events", func(t *testing.T) {
		cfg := mediaConfig()
		h := startConnector(t, cfg)
		call := mediaflow.New(t, "many-reports")
		h.consume(t, call.Logs("sbc-1", call.Setup(time.Second)...))
		const rounds = maxMediaEvents/4 + 3 // 4 report blocks a round
		for range rounds {
			h.consume(t, call.Logs("sbc-1", call.RTCP()...))
		}
		h.consume(t, call.Logs("sbc-1", call.Bye(0, true, "", "")...))
		h.advance(cfg.Linger + cfg.Media.Linger + time.Second)
		root := one(t, h.spans(), nameCall, internal)
		assert.Len(t, mediaEvents(root), maxMediaEvents)
		assert.Equal(t, uint32(rounds*4-maxMediaEvents), root.dropped)
		assert.Equal(t, int64(maxMediaEvents), h.counter(t, "sipcall_media_reports", attribute.String("outcome", string(mediaAttached))))
		assert.Equal(t, int64(rounds*4-maxMediaEvents), h.counter(t, "sipcall_media_reports", attribute.String("outcome", string(mediaDropped))))
		assert.Equal(t, int64(1), root.attrs[record.AttrMediaStreams])
	})

	t.Run("wait and late", func(t *testing.T) {
		cfg := mediaConfig()
		cfg.Media.IdleTimeout = time.Hour
		h := startConnector(t, cfg)
		call := mediaflow.New(t, "no-bye-answer")
		h.consume(t, call.Logs("sbc-1", call.Setup(time.Second)...))
		h.consume(t, call.Logs("sbc-1", call.RTCP()...))
		// the BYE without its 200: the call ended for the trace, but its
		// streams stay open until idle
		h.consume(t, call.Logs("sbc-1", call.Bye(0, true, "", "")[:2]...))
		h.advance(cfg.Linger + cfg.Media.Linger - time.Second)
		require.Empty(t, only(h.spans(), nameCall, internal), "waiting for the open stream")
		h.advance(2 * time.Second)
		root := one(t, h.spans(), nameCall, internal)
		assert.Len(t, mediaEvents(root), 4, "the reports came before it left")
		assert.NotContains(t, root.attrs, record.AttrMediaStreams, "no stream had ended")

		h.consume(t, call.Logs("sbc-1", call.RTCP()...))
		assert.Equal(t, int64(4), h.counter(t, "sipcall_media_reports", attribute.String("outcome", string(mediaLate))))
		h.advance(cfg.Media.IdleTimeout + time.Second)
		assert.Equal(t, int64(1), h.counter(t, "sipcall_media_streams", attribute.String("outcome", string(mediaLate))))
		assert.Len(t, only(h.spans(), nameCall, internal), 1, "the root left once")
	})

	t.Run("max_call_duration", func(t *testing.T) {
		cfg := mediaConfig()
		cfg.Media.Linger, cfg.Media.IdleTimeout = time.Hour, time.Hour
		cfg.MaxCallDuration = 2 * time.Minute
		h := startConnector(t, cfg)
		call := mediaflow.New(t, "long-wait")
		h.consume(t, call.Logs("sbc-1", call.Setup(time.Second)...))
		h.consume(t, call.Logs("sbc-1", call.RTCP()...))
		h.consume(t, call.Logs("sbc-1", call.Bye(0, true, "", "")...))
		h.advance(cfg.MaxCallDuration - time.Second)
		require.Empty(t, only(h.spans(), nameCall, internal), "waiting for the open stream")
		h.advance(2 * time.Second)
		root := one(t, h.spans(), nameCall, internal)
		assert.Equal(t, "evicted: "+string(evMaxCallDuration), root.statusMessage, "the call's bound holds")
		assert.Len(t, mediaEvents(root), 4)
	})

	t.Run("reports of a call never traced", func(t *testing.T) {
		h := startConnector(t, mediaConfig())
		call := mediaflow.New(t, "rtcp-only")
		h.consume(t, call.Logs("sbc-1", call.RTCP()...))
		assert.Equal(t, int64(4), h.counter(t, "sipcall_media_reports", attribute.String("outcome", string(mediaNoCall))))
		assert.Equal(t, int64(4), h.counter(t, "sipcall_records", attribute.String("outcome", string(outMediaReport))))
		assert.Equal(t, int64(2), h.counter(t, "sipcall_records", attribute.String("outcome", string(outMediaUnusable))),
			"the SRs without report blocks")
		h.drain()
		assert.Empty(t, h.spans())
	})
}
