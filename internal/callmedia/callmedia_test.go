package callmedia

import (
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/mediaflow"
)

var testConfig = Config{Linger: 30 * time.Second, IdleTimeout: time.Minute, CallTimeout: time.Hour, MaxCalls: 100, MaxStreams: 100}

// run feeds records to an aggregator on a processing clock the test moves.
type run struct {
	t        *testing.T
	agg      *Aggregator[string]
	ended    []Stream[string]
	outcomes map[string]int
	evicted  map[string]int
	now      time.Time
}

func newRun(t *testing.T, cfg Config) *run {
	r := &run{t: t, outcomes: map[string]int{}, evicted: map[string]int{}, now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	r.agg = New(cfg, func(s *Stream[string]) {
		c := *s
		c.Sources = slices.Clone(s.Sources)
		r.ended = append(r.ended, c)
	})
	r.agg.Evicted = func(table, reason string) { r.evicted[table+"/"+reason]++ }
	return r
}

func (r *run) feed(ld plog.Logs) {
	for _, it := range record.All(ld) {
		node := record.Node(it.Resource)
		if out := r.agg.Consume(it.Log, it.Log.Timestamp().AsTime(), r.now, func() string { return node }); out != OutcomeNone {
			r.outcomes[out.String()]++
		}
	}
}

// after moves the clock and expires.
func (r *run) after(d time.Duration) {
	r.now = r.now.Add(d)
	r.agg.Expire(r.now)
}

func (r *run) stream(ssrc uint32) Stream[string] {
	r.t.Helper()
	var found []Stream[string]
	for _, s := range r.ended {
		if s.HasSSRC && s.SSRC == ssrc {
			found = append(found, s)
		}
	}
	require.Len(r.t, found, 1, "streams of SSRC %x: %+v", ssrc, r.ended)
	return found[0]
}

// rtcpFigures are the figures rtpengine's capture gives A's stream: B's
// four reports, fraction lost 13/256 and ia_jitter 37 each, and the
// round-trip times of their LSR/DLSR at their capture times (as mediaq
// reads them; its tests check them against the captures).
func rtcpFigures(t *testing.T, call *mediaflow.Call) (loss, jitterUnits, rtt float64) {
	var rtts []float64
	for _, p := range call.RTCP() {
		rep, err := mediaq.ParseRTCPJSON(p.Payload, mediaq.Options{Arrival: p.Time()})
		require.NoError(t, err)
		if len(rep.Streams) == 1 {
			require.True(t, rep.Streams[0].Has(mediaq.FigRTT))
			rtts = append(rtts, rep.Streams[0].RTT)
		}
	}
	require.Len(t, rtts, 4)
	var sum float64
	for _, v := range rtts {
		sum += v
	}
	return 13.0 / 256, 37, sum / 4
}

// eModelMOS is the G.107 MOS of a stream rated on its loss, with the
// one-way delay taken as half its round trip plus twice its jitter (an
// adaptive jitter buffer), for a codec's G.113 Appendix I Ie and Bpl.
func eModelMOS(loss, jitter, rtt, ie, bpl float64) float64 {
	return mediaq.MOSFromR(mediaq.EModel(mediaq.EModelInput{LossRatio: loss, Delay: rtt/2 + 2*jitter, Ie: ie, Bpl: bpl}))
}

// TestRTPEngineStream: the reports rtpengine sent for one call (the
// capture) become one stream of A's SSRC, from caller to callee (B, who
// reports it, is on the callee's side of the SDP), whose figures are the
// reports' means and whose MOS is the E-model's with the SDP's codec.
func TestRTPEngineStream(t *testing.T) {
	tests := []struct {
		name      string
		codec     string // SDP's first format
		direct    bool   // no RTPEngine in the SDP
		noSIP     bool
		wantCodec string
		clock     float64
		ie, bpl   float64
		wantDir   Direction
		outcome   string
	}{
		{"PCMU through RTPEngine", "", false, false, "G711", 8000, 0, 25.1, DirCallerToCallee, "accepted"},
		{"G.729 through RTPEngine", "18 G729/8000", false, false, "G729", 8000, 11, 19, DirCallerToCallee, "accepted"},
		{"Opus, SDP passed through", "111 opus/48000/2", true, false, "OPUS", 48000, 0, 25.1, DirCallerToCallee, "accepted"},
		{"no SIP seen: G.711 assumed", "", false, true, CodecUnknown, 8000, 0, 25.1, DirUnknown, "unknown_call"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(t, testConfig)
			call := mediaflow.New(t, "call-"+tt.name)
			call.Codec, call.Direct = tt.codec, tt.direct
			call.CorrelationID = "key-" + tt.name
			if !tt.noSIP {
				r.feed(call.Logs("sbc-1", call.Setup(time.Second)...))
			}
			r.feed(call.Logs("sbc-1", call.RTCP()...))
			r.feed(call.Logs("sbc-1", call.Bye(100*time.Millisecond, true, "", "")...))
			assert.Equal(t, map[string]int{tt.outcome: 4, "no_figures": 2}, r.outcomes, "4 report blocks, 2 SRs without")

			r.after(testConfig.Linger - time.Second)
			require.Empty(t, r.ended, "the stream lingers after the BYE")
			r.after(2 * time.Second)
			if tt.noSIP {
				require.Empty(t, r.ended, "a stream of an unknown call ends when idle")
				r.after(time.Minute)
			}
			s := r.stream(mediaflow.SSRCA)
			loss, units, rtt := rtcpFigures(t, call)
			jitter := units / tt.clock
			assert.Equal(t, tt.wantDir, s.Direction)
			assert.Equal(t, tt.wantCodec, s.Codec)
			assert.Equal(t, call.CallID, s.CallID)
			assert.Equal(t, "sbc-1", s.Tag)
			assert.Equal(t, 4, s.Reports)
			assert.Equal(t, []mediaq.Source{mediaq.SourceRTCP}, s.Sources)
			assert.Equal(t, mediaq.FigLossRatio|mediaq.FigJitter|mediaq.FigRTT|mediaq.FigMOS, s.Has)
			assert.InDelta(t, loss, s.LossRatio, 1e-12)
			assert.InDelta(t, jitter, s.Jitter, 1e-12)
			assert.InDelta(t, rtt, s.RTT, 1e-12)
			assert.True(t, s.MOSEstimated)
			assert.InDelta(t, eModelMOS(loss, jitter, rtt, tt.ie, tt.bpl), s.MOS, 1e-9)
			assert.Equal(t, mediaq.ClassOf(s.MOS), s.Class)
			assert.WithinDuration(t, call.RTCP()[5].Time(), s.Last, 0, "the last report's time")
			if !tt.noSIP {
				assert.Equal(t, call.CorrelationID, s.CorrelationID)
			}
		})
	}
}

// TestBothDirections: A's reports on B's stream make the other direction's
// stream, with its own figures.
func TestBothDirections(t *testing.T) {
	r := newRun(t, testConfig)
	call := mediaflow.New(t, "both")
	r.feed(call.Logs("sbc-1", call.Setup(time.Second)...))
	r.feed(call.Logs("sbc-1", call.RTCP()...))
	r.feed(call.Logs("sbc-1", call.RTCPFromA(26, 370)...))
	r.feed(call.Logs("sbc-1", call.Bye(0, false, "", "")...))
	r.after(testConfig.Linger + time.Second)
	require.Len(t, r.ended, 2)

	ab, ba := r.stream(mediaflow.SSRCA), r.stream(mediaflow.SSRCB)
	assert.Equal(t, DirCallerToCallee, ab.Direction)
	assert.Equal(t, DirCalleeToCaller, ba.Direction)
	assert.InDelta(t, 13.0/256, ab.LossRatio, 1e-12)
	assert.InDelta(t, 26.0/256, ba.LossRatio, 1e-12)
	assert.InDelta(t, 37.0/8000, ab.Jitter, 1e-12)
	assert.InDelta(t, 370.0/8000, ba.Jitter, 1e-12)
	assert.Less(t, ba.MOS, ab.MOS, "more loss and jitter")
	for _, s := range []Stream[string]{ab, ba} {
		assert.InDelta(t, eModelMOS(s.LossRatio, s.Jitter, s.RTT, 0, 25.1), s.MOS, 1e-9)
	}
}

// TestSIPReports: RFC 6035 PUBLISH bodies and the vendors' X-RTP-Stat
// headers on a BYE or its 200 make streams placed by their reporter.
func TestSIPReports(t *testing.T) {
	type want struct {
		ssrc      uint32 // 0: none
		dir       Direction
		codec     string
		loss      float64
		jitter    float64
		rtt       float64
		has       mediaq.Figure
		mos       float64 // 0: the E-model's
		reports   int
		estimated bool
	}
	all := mediaq.FigLossRatio | mediaq.FigJitter | mediaq.FigRTT | mediaq.FigMOS
	tests := []struct {
		name     string
		codec    string
		packets  func(c *mediaflow.Call) []hep.Packet
		outcomes map[string]int
		want     []want
	}{{
		// RFC 6035's example, sent by the caller: what A received (local)
		// and what the far end received (remote), MOS-CQ given
		name: "RFC 6035 PUBLISH", codec: "18 G729/8000",
		packets: func(c *mediaflow.Call) []hep.Packet {
			return append(c.Bye(0, true, "", ""), c.Publish(time.Second, c.VQReport()))
		},
		outcomes: map[string]int{"accepted": 1},
		want: []want{
			{mediaflow.SSRCB, DirCalleeToCaller, "G729", 0.05, 0.002, 0.2, all, 4.0, 1, false},
			{mediaflow.SSRCA, DirCallerToCallee, "G729", 0.05, 0.002, 0.2, all, 4.3, 1, false},
		},
	}, {
		// Poly's example on the callee's BYE (both hops): what B
		// received, MOS given
		name: "X-RTP-Stat on the callee's BYE",
		packets: func(c *mediaflow.Call) []hep.Packet {
			return c.Bye(0, false, mediaflow.RTPStat(t, "X-RTP-Stat: PS=1234,"), "")
		},
		outcomes: map[string]int{"accepted": 2},
		want:     []want{{0, DirCallerToCallee, "G711", 0, 0.001, 0, mediaq.FigLossRatio | mediaq.FigJitter | mediaq.FigMOS, 4.0, 2, false}},
	}, {
		// baresip's on the caller's BYE: what A received, E-model MOS
		name: "X-RTP-Stat on the caller's BYE",
		packets: func(c *mediaflow.Call) []hep.Packet {
			return c.Bye(0, true, mediaflow.RTPStat(t, "X-RTP-Stat: EX=BareSip"), "")
		},
		outcomes: map[string]int{"accepted": 2},
		want:     []want{{0, DirCalleeToCaller, "G711", 10.0 / 3100, 0.0125, 0, mediaq.FigLossRatio | mediaq.FigJitter | mediaq.FigMOS, 0, 2, true}},
	}, {
		// Cisco's on the 200 to the caller's BYE: what B received
		name: "P-RTP-Stat on the 200 to the caller's BYE",
		packets: func(c *mediaflow.Call) []hep.Packet {
			return c.Bye(0, true, "", mediaflow.RTPStat(t, "P-RTP-Stat: PS=3775"))
		},
		outcomes: map[string]int{"accepted": 2},
		want:     []want{{0, DirCallerToCallee, "G711", 0, 0, 0.004, all, 0, 2, true}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(t, testConfig)
			call := mediaflow.New(t, "sip-"+tt.name)
			call.Codec = tt.codec
			r.feed(call.Logs("sbc-1", call.Setup(time.Second)...))
			r.feed(call.Logs("sbc-1", tt.packets(call)...))
			assert.Equal(t, tt.outcomes, r.outcomes)
			r.after(testConfig.Linger + time.Second)
			require.Len(t, r.ended, len(tt.want))
			for _, w := range tt.want {
				var s Stream[string]
				if w.ssrc != 0 {
					s = r.stream(w.ssrc)
				} else {
					s = r.ended[0]
					assert.False(t, s.HasSSRC)
				}
				assert.Equal(t, w.dir, s.Direction)
				assert.Equal(t, w.codec, s.Codec)
				assert.Equal(t, w.has, s.Has)
				assert.InDelta(t, w.loss, s.LossRatio, 1e-12)
				assert.InDelta(t, w.jitter, s.Jitter, 1e-12)
				assert.InDelta(t, w.rtt, s.RTT, 1e-12)
				assert.Equal(t, w.reports, s.Reports)
				assert.Equal(t, w.estimated, s.MOSEstimated)
				if w.mos != 0 {
					assert.InDelta(t, w.mos, s.MOS, 1e-12)
				} else {
					assert.InDelta(t, eModelMOS(w.loss, w.jitter, w.rtt, 0, 25.1), s.MOS, 1e-9)
				}
				assert.Equal(t, mediaq.ClassOf(s.MOS), s.Class)
			}
		})
	}
}

// rtcpRecord is B's first report of the capture as a record of call.
func rtcpRecord(t *testing.T, call *mediaflow.Call) plog.Logs {
	ld := call.Logs("sbc-1", call.RTCP()[1])
	lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	_, ok := lr.Attributes().Get(record.AttrMediaSource)
	require.True(t, ok, "the capture's report has figures")
	return ld
}

// TestBadInput: reports with figures no sender can mean, without figures
// or without a call are counted and observe nothing.
func TestBadInput(t *testing.T) {
	rtcp := func(edit func(lr plog.LogRecord)) func(t *testing.T, c *mediaflow.Call) plog.Logs {
		return func(t *testing.T, c *mediaflow.Call) plog.Logs {
			ld := rtcpRecord(t, c)
			edit(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0))
			return ld
		}
	}
	payload := func(body string) func(t *testing.T, c *mediaflow.Call) plog.Logs {
		return func(t *testing.T, c *mediaflow.Call) plog.Logs {
			p := c.RTCP()[1]
			p.Payload = []byte(body)
			return c.Logs("sbc-1", p)
		}
	}
	bye := func(header string) func(t *testing.T, c *mediaflow.Call) plog.Logs {
		return func(t *testing.T, c *mediaflow.Call) plog.Logs { return c.Logs("sbc-1", c.Bye(0, true, header, "")[0]) }
	}
	dbl := func(key string, v float64) func(lr plog.LogRecord) {
		return func(lr plog.LogRecord) { lr.Attributes().PutDouble(key, v) }
	}
	tests := []struct {
		name    string
		records func(t *testing.T, c *mediaflow.Call) plog.Logs
		outcome string
	}{
		{"negative loss", rtcp(dbl(record.AttrMediaPacketLossRatio, -0.1)), "out_of_range"},
		{"loss above 1", rtcp(dbl(record.AttrMediaPacketLossRatio, 1.5)), "out_of_range"},
		{"loss NaN", rtcp(dbl(record.AttrMediaPacketLossRatio, math.NaN())), "out_of_range"},
		{"loss a string", rtcp(func(lr plog.LogRecord) { lr.Attributes().PutStr(record.AttrMediaPacketLossRatio, "5%") }), "out_of_range"},
		{"negative jitter", rtcp(dbl(record.AttrMediaJitter, -0.01)), "out_of_range"},
		{"jitter of minutes", rtcp(dbl(record.AttrMediaJitter, 120)), "out_of_range"},
		{"rtt of hours", rtcp(dbl(record.AttrMediaRTT, 7200)), "out_of_range"},
		{"rtt infinite", rtcp(dbl(record.AttrMediaRTT, math.Inf(1))), "out_of_range"},
		{"MOS 7 given", rtcp(func(lr plog.LogRecord) {
			lr.Attributes().Remove(record.AttrMediaEstimated)
			lr.Attributes().PutDouble(record.AttrMediaMOS, 7)
		}), "out_of_range"},
		{"negative SSRC", rtcp(func(lr plog.LogRecord) { lr.Attributes().PutInt(record.AttrMediaSSRC, -5) }), "out_of_range"},
		{"no media figures", rtcp(func(lr plog.LogRecord) { lr.Attributes().Remove(record.AttrMediaSource) }), "no_figures"},
		{"unknown media source", rtcp(func(lr plog.LogRecord) { lr.Attributes().PutStr(record.AttrMediaSource, "carrier-pigeon") }), "no_figures"},
		{"no call id", rtcp(func(lr plog.LogRecord) { lr.Attributes().Remove(record.AttrHEPCorrelationID) }), "no_call_id"},
		{"malformed JSON", payload(`{"report_blocks":[{"fraction_lost":13,`), "no_figures"},
		{"fraction_lost 300", payload(`{"report_blocks":[{"source_ssrc":1,"fraction_lost":300}]}`), "no_figures"},
		{"malformed vq-rtcpxr", func(t *testing.T, c *mediaflow.Call) plog.Logs {
			return c.Logs("sbc-1", c.Publish(0, "VQSessionReport: CallTerm\r\nCallID: "+c.CallID+"\r\nLocalAddr: IP=127.0.0.1 SSRC=zz\r\n"))
		}, "malformed"},
		{"X-RTP-Stat MOS 9", bye("X-RTP-Stat: PR=10,PL=0,MOS=9"), "out_of_range"},
		{"X-RTP-Stat jitter of an hour", bye("X-RTP-Stat: PR=10,PL=0,JI=3600000"), "out_of_range"},
		{"X-RTP-Stat negative received", bye("X-RTP-Stat: PR=-10,PL=0"), "out_of_range"},
		{"X-RTP-Stat without a known field", bye("X-RTP-Stat: FOO=1"), "no_figures"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(t, testConfig)
			call := mediaflow.New(t, "bad")
			r.feed(call.Logs("sbc-1", call.Setup(time.Second)...))
			r.feed(tt.records(t, call))
			assert.Equal(t, map[string]int{tt.outcome: 1}, r.outcomes)
			_, streams := r.agg.Len()
			assert.Zero(t, streams)
			r.agg.EndAll()
			assert.Empty(t, r.ended)
		})
	}
}

// TestUnknownCallsBounded: reports for calls never seen are taken (their
// codec and direction unknown) up to max_streams; the least recently
// reported stream ends early to make room, counted.
func TestUnknownCallsBounded(t *testing.T) {
	cfg := testConfig
	cfg.MaxStreams = 50
	r := newRun(t, cfg)
	for i := range 1000 {
		call := mediaflow.New(t, fmt.Sprintf("nobody-%d", i))
		r.feed(rtcpRecord(t, call))
		calls, streams := r.agg.Len()
		require.Zero(t, calls, "a report does not make a call")
		require.LessOrEqual(t, streams, 50)
	}
	assert.Equal(t, map[string]int{"unknown_call": 1000}, r.outcomes)
	assert.Equal(t, map[string]int{"streams/capacity": 950}, r.evicted)
	require.Len(t, r.ended, 950)
	for _, s := range r.ended {
		assert.Equal(t, DirUnknown, s.Direction)
		assert.Equal(t, CodecUnknown, s.Codec)
		assert.Equal(t, 1, s.Reports)
	}
	r.after(cfg.IdleTimeout + time.Second)
	assert.Len(t, r.ended, 1000, "the rest end when idle")
	assert.Equal(t, 50, r.evicted["streams/expired"])
}

// TestFloodOfReports: 100,000 reports for one call keep one stream of
// bounded size: the first MaxReportsPerStream count, the rest are counted
// as over the limit.
func TestFloodOfReports(t *testing.T) {
	r := newRun(t, testConfig)
	call := mediaflow.New(t, "flood")
	r.feed(call.Logs("sbc-1", call.Setup(time.Second)...))
	ld := rtcpRecord(t, call)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 100_000 {
		r.feed(ld)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	calls, streams := r.agg.Len()
	assert.Equal(t, 1, calls)
	assert.Equal(t, 1, streams)
	assert.Equal(t, map[string]int{"accepted": MaxReportsPerStream, "stream_limit": 100_000 - MaxReportsPerStream}, r.outcomes)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	assert.Less(t, growth, int64(1<<20), "heap grew %d bytes", growth)
	r.agg.EndAll()
	s := r.stream(mediaflow.SSRCA)
	assert.Equal(t, MaxReportsPerStream, s.Reports)
	assert.InDelta(t, 13.0/256, s.LossRatio, 1e-9)
}

// TestStreamEnds: a stream ends linger after its call's end (the BYE's
// final response, a CANCEL, a failed INVITE, the CDR), idle_timeout after
// its last report when the end is not seen, or at EndAll; a report after
// the end starts a new stream.
func TestStreamEnds(t *testing.T) {
	cdr := func(c *mediaflow.Call) plog.Logs {
		ld := c.Logs("sbc-1")
		lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
		lr.SetEventName(record.EventCDR)
		lr.Attributes().PutStr(record.AttrSIPCallID, c.CallID)
		return ld
	}
	sip := func(pick func(c *mediaflow.Call) hep.Packet) func(c *mediaflow.Call) plog.Logs {
		return func(c *mediaflow.Call) plog.Logs { return c.Logs("sbc-1", pick(c)) }
	}
	tests := []struct {
		name  string
		end   func(c *mediaflow.Call) plog.Logs // nil: none
		ended time.Duration                     // when, after the last report
	}{
		{"BYE's 200", sip(func(c *mediaflow.Call) hep.Packet { return c.Bye(0, true, "", "")[2] }), testConfig.Linger},
		{"the BYE alone does not end it", sip(func(c *mediaflow.Call) hep.Packet { return c.Bye(0, true, "", "")[0] }), testConfig.IdleTimeout},
		{"CDR", cdr, testConfig.Linger},
		{"no end", nil, testConfig.IdleTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(t, testConfig)
			call := mediaflow.New(t, "ends")
			r.feed(call.Logs("sbc-1", call.Setup(time.Second)...))
			r.feed(rtcpRecord(t, call))
			if tt.end != nil {
				r.feed(tt.end(call))
			}
			r.after(tt.ended - time.Second)
			require.Empty(t, r.ended)
			r.after(2 * time.Second)
			require.Len(t, r.ended, 1)
			// a late report is a stream of its own
			r.feed(rtcpRecord(t, call))
			r.agg.EndAll()
			assert.Len(t, r.ended, 2)
			calls, streams := r.agg.Len()
			assert.Zero(t, calls+streams)
		})
	}

	// a failed INVITE or a CANCEL ends the call; a re-INVITE's failure
	// does not
	for _, tt := range []struct {
		name string
		msg  string
		ends bool
	}{
		{"CANCEL", "CANCEL sip:bob@127.0.0.12 SIP/2.0\r\nFrom: <sip:a@127.0.0.11>;tag=fa-x\r\nTo: <sip:bob@127.0.0.12>\r\nCall-ID: x\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n", true},
		{"486 to the INVITE", "SIP/2.0 486 Busy\r\nFrom: <sip:a@127.0.0.11>;tag=fa-x\r\nTo: <sip:bob@127.0.0.12>;tag=t\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(t, testConfig)
			call := mediaflow.New(t, "x")
			call.FromTag = "fa-x"
			setup := call.Setup(time.Second)
			r.feed(call.Logs("sbc-1", setup[0], setup[1])) // offered, not answered
			r.feed(rtcpRecord(t, call))
			p := setup[2]
			p.Payload = []byte(tt.msg)
			r.feed(call.Logs("sbc-1", p))
			r.after(testConfig.Linger + time.Second)
			assert.Len(t, r.ended, 1)
		})
	}
	t.Run("a re-INVITE's failure", func(t *testing.T) {
		r := newRun(t, testConfig)
		call := mediaflow.New(t, "x")
		call.FromTag, call.ToTag = "fa-x", "t"
		r.feed(call.Logs("sbc-1", call.Setup(time.Second)...))
		r.feed(rtcpRecord(t, call))
		p := call.Setup(time.Second)[2]
		p.Payload = []byte("SIP/2.0 491 Pending\r\nFrom: <sip:a@127.0.0.11>;tag=fa-x\r\nTo: <sip:bob@127.0.0.12>;tag=t\r\nCall-ID: x\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n")
		r.feed(call.Logs("sbc-1", p))
		r.after(testConfig.Linger + time.Second)
		assert.Empty(t, r.ended)
	})
}

// TestCallsBounded: the calls whose SDP is kept are bounded.
func TestCallsBounded(t *testing.T) {
	cfg := testConfig
	cfg.MaxCalls = 2
	r := newRun(t, cfg)
	for i := range 3 {
		call := mediaflow.New(t, fmt.Sprintf("c%d", i))
		r.feed(call.Logs("sbc-1", call.Setup(time.Second)...))
	}
	calls, _ := r.agg.Len()
	assert.Equal(t, 2, calls)
	assert.Equal(t, map[string]int{"calls/capacity": 1}, r.evicted)
	r.after(cfg.CallTimeout + time.Second)
	calls, _ = r.agg.Len()
	assert.Zero(t, calls, "calls whose end was not seen are forgotten")
}

func TestCodecLabel(t *testing.T) {
	for name, want := range map[string]string{
		"PCMU": "G711", "pcma": "G711", "G.711A": "G711", "G729": "G729", "G.729a": "G729", "opus": "OPUS",
		"G722": "G722", "iLBC": "ILBC", "AMR-WB": "AMR-WB", "": CodecUnknown, "X-VENDOR-42": "other",
		"telephone-event": "other",
	} {
		assert.Equal(t, want, CodecLabel(name), name)
	}
}

func TestMayHaveRTPStat(t *testing.T) {
	for msg, want := range map[string]bool{
		"BYE sip:a SIP/2.0\r\nX-RTP-Stat: PS=1\r\n\r\n": true,
		"BYE sip:a SIP/2.0\r\np-rtp-stat: PS=1\r\n\r\n": true,
		"BYE sip:a SIP/2.0\r\nX-RTP-STAT: PS=1\r\n\r\n": true,
		"-rtp-stat": true,
		"stat-":     false,
		"rtp-stat":  true,
		"BYE sip:a SIP/2.0\r\nMax-Forwards: 70\r\nCall-ID: a-b-c\r\n\r\n": false,
		"rtp-sta": false,
		"":        false,
	} {
		assert.Equal(t, want, mayHaveRTPStat(msg), "%q", msg)
	}
}

// TestSideOf: a reporter is placed by its exact endpoint (address and RTP
// or RTCP port), else by its address when only one side has it; else it
// cannot be told.
func TestSideOf(t *testing.T) {
	var c call
	ep := func(s string, rtcp uint16) endpoint {
		ap := netip.MustParseAddrPort(s)
		return endpoint{addr: ap.Addr(), rtpPort: ap.Port(), rtcpP: rtcp}
	}
	c.addSDP(sideCaller, ep("127.0.0.1:4000", 4001))
	c.addSDP(sideCallee, ep("127.0.0.2:5000", 5001))
	c.addSDP(sideCallee, ep("127.0.0.1:6000", 6100)) // an anchor on the caller's address
	for _, tt := range []struct {
		addr string
		want side
	}{
		{"127.0.0.1:4000", sideCaller},
		{"127.0.0.1:4001", sideCaller},
		{"127.0.0.1:6100", sideCallee},
		{"127.0.0.1:6001", sideUnknown}, // not its RTCP port (a=rtcp said 6100); the address is on both sides
		{"127.0.0.2:9999", sideCallee},  // by the address: only the callee's side has it
		{"127.0.0.3:4000", sideUnknown},
		{"[::1]:4000", sideUnknown},
	} {
		assert.Equal(t, tt.want, c.sideOf(netip.MustParseAddrPort(tt.addr)), tt.addr)
	}
	assert.Equal(t, sideUnknown, c.sideOf(netip.AddrPort{}))
	// a party's endpoints beyond maxSDPs: the oldest goes
	for i := range maxSDPs {
		c.addSDP(sideCaller, ep(fmt.Sprintf("127.0.1.%d:7000", i), 7001))
	}
	assert.Equal(t, sideCallee, c.sideOf(netip.MustParseAddrPort("127.0.0.1:4000")), "forgotten: only the callee side (its anchor) has the address now")
	assert.Equal(t, sideCaller, c.sideOf(netip.MustParseAddrPort("127.0.1.0:7000")))
}

// TestOnReport: OnReport sees each report a stream takes, with its own
// figures (RTCP jitter at the codec's clock), the direction the SDP gives
// its stream, NewStream on a stream's first, and a tag it may set that the
// stream's end gives back.
func TestOnReport(t *testing.T) {
	r := newRun(t, testConfig)
	var reports []Report[string]
	r.agg.OnReport = func(rep *Report[string]) {
		if rep.NewStream {
			*rep.Tag = fmt.Sprintf("opened by report %d", len(reports))
		}
		c := *rep
		c.Tag = nil
		reports = append(reports, c)
	}
	call := mediaflow.New(t, "on-report")
	call.Codec = "111 opus/48000/2"
	call.CorrelationID = "corr-on-report"
	r.feed(call.Logs("sbc-1", call.Setup(time.Second)...))
	r.feed(call.Logs("sbc-1", call.RTCP()...))
	r.feed(call.Logs("sbc-1", call.RTCPFromA(26, 370)...))
	require.Len(t, reports, 8, "4 report blocks each way; the SRs without blocks are no reports")
	for i, rep := range reports {
		wantSSRC, wantDir, wantLoss, wantUnits := uint32(mediaflow.SSRCA), DirCallerToCallee, 13.0/256, 37.0
		if i >= 4 {
			wantSSRC, wantDir, wantLoss, wantUnits = mediaflow.SSRCB, DirCalleeToCaller, 26.0/256, 370.0
		}
		assert.Equal(t, call.CallID, rep.CallID, i)
		assert.Equal(t, call.CorrelationID, rep.CorrelationID, i)
		assert.Equal(t, i == 0 || i == 4, rep.NewStream, i)
		assert.True(t, rep.HasSSRC, i)
		assert.Equal(t, wantSSRC, rep.SSRC, i)
		assert.Equal(t, wantDir, rep.Direction, i)
		assert.Equal(t, mediaq.SourceRTCP, rep.Source, i)
		assert.InDelta(t, wantLoss, rep.LossRatio, 1e-12, i)
		assert.InDelta(t, wantUnits/48000, rep.Jitter, 1e-12, "%d: at Opus's clock", i)
		assert.True(t, rep.MOSEstimated, i)
		assert.Equal(t, mediaq.FigLossRatio|mediaq.FigJitter|mediaq.FigRTT|mediaq.FigMOS, rep.Has, i)
		assert.InDelta(t, eModelMOS(rep.LossRatio, rep.Jitter, rep.RTT, 0, 25.1), rep.MOS, 1e-9, i)
	}
	// the capture's report times, in the order fed
	var times []time.Time
	for _, p := range call.RTCP() {
		if p.SrcPort == mediaflow.PortB+1 {
			times = append(times, p.Time())
		}
	}
	for i, at := range times {
		assert.True(t, reports[i].At.Equal(at), "report %d at %v, captured %v", i, reports[i].At, at)
	}

	r.feed(call.Logs("sbc-1", call.Bye(0, true, "", "")...))
	r.after(testConfig.Linger + time.Second)
	assert.Equal(t, "opened by report 0", r.stream(mediaflow.SSRCA).Tag)
	assert.Equal(t, "opened by report 4", r.stream(mediaflow.SSRCB).Tag)
}

// TestUnansweredOffersForgotten: the offer of a call nothing answered, not
// even with a 100, is forgotten after unansweredTimeout (an INVITE flood
// holds no SDP for CallTimeout); one that got a 180 is kept as long as a
// ringing call needs.
func TestUnansweredOffersForgotten(t *testing.T) {
	for _, tt := range []struct {
		name string
		pick []int // of the call's Setup packets
		kept bool
	}{
		{"INVITE only", []int{0}, false},
		{"INVITE on both hops, no response", []int{0, 1}, false},
		{"ringing", []int{0, 1, 2}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(t, testConfig)
			call := mediaflow.New(t, "unanswered")
			setup := call.Setup(time.Second)
			var pkts []hep.Packet
			for _, i := range tt.pick {
				pkts = append(pkts, setup[i])
			}
			r.feed(call.Logs("sbc-1", pkts...))
			calls, _ := r.agg.Len()
			require.Equal(t, 1, calls, "the offer is held")
			r.after(unansweredTimeout - time.Second)
			calls, _ = r.agg.Len()
			assert.Equal(t, 1, calls, "still within Timer B and its margin")
			r.after(2 * time.Second)
			calls, _ = r.agg.Len()
			assert.Equal(t, tt.kept, calls == 1)
		})
	}
}
