//go:build integration

package e2e

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/siphon-otel/siphon-otel/demo/callgen"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
	"github.com/siphon-otel/siphon-otel/internal/rtpua"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	engine "github.com/siphon-otel/siphon-otel/internal/testenv/rtpengine"
	phones "github.com/siphon-otel/siphon-otel/internal/testenv/rtpua"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipp"
)

// Media quality end to end: calls through sipproxy with their media
// anchored on a real rtpengine, both ends real RTP/RTCP endpoints
// (internal/rtpua, pion), rtpengine sending every RTCP packet it relays
// to our hep receiver as HEP type 5 (--homer), the receiver turning each
// into a hep.rtcp record with media.* figures (internal/mediaq). sipproxy
// traces its SIP to the same receiver, so the records are what a
// collector's hep receiver gets from such a node: SIP and RTCP of the
// same calls, which a test of what comes after the receiver (KPIs, call
// traces) can feed on (mediaRig.hep.sink). The calls' SIP is placed
// either by the demo's call generator (mediaRig.call) or by sipp at both
// ends with rtpua endpoints beside them for the media (mediaRig.sippCall);
// both are checked alike.

// mediaRig is the chain: hep receiver <- rtpengine, sipproxy; phones.
type mediaRig struct {
	hep    *hepSink
	proxy  *proxy
	phones *phones.Phones
}

// rtcpInterval is the endpoints' report interval: 100 packets, which an
// every-20th loss hits 5 times.
const rtcpInterval = 2 * time.Second

// mediaCodecs are what the endpoints offer and take, in order.
var mediaCodecs = []rtpua.Codec{rtpua.PCMU, rtpua.G729}

func startMediaRig(t *testing.T, portMin, portMax int) *mediaRig {
	t.Helper()
	h := startHEP(t, "udp")
	e := engine.Run(t, engine.Options{PortMin: portMin, PortMax: portMax, Homer: h.Endpoint, HomerID: 2002})
	// no delete_delay: the engine keeps a call 30 s after its delete, so
	// the callee's last report, sent on the caller's BYE, is still relayed
	p := startProxy(t, proxyOpts{HEPEndpoint: h.Endpoint,
		Extra: fmt.Sprintf("rtpengine: {instances: [%q], ping_interval: 200ms, enabled: true, timeout: 500ms}", e.Addr)})
	p.waitGauge(t, "siphon_rtpengine_instances_up", nil, 1)
	ph := phones.Start(t, "127.0.0.1:"+strconv.Itoa(p.SIPPort), 100*time.Millisecond,
		callgen.Media{Codecs: mediaCodecs, RTCPInterval: rtcpInterval})
	return &mediaRig{hep: h, proxy: p, phones: ph}
}

// rtcpRecord is the figures of one hep.rtcp record.
type rtcpRecord struct {
	Time                    time.Time
	Reporter, SSRC          int64
	LossRatio, Jitter       float64
	Lost                    int64
	RTT, MOS                float64
	HasRTT, HasMOS          bool
	Estimated               bool
	Class                   string
	Source                  string
	HasLoss, HasLost, HasJi bool
}

// rtcpRecords returns the hep.rtcp records of a call (by the Call-ID
// rtpengine puts in HEP chunk 0x11), by reporter, each in capture order.
func (h *hepSink) rtcpRecords(callID string) map[int64][]rtcpRecord {
	out := map[int64][]rtcpRecord{}
	event := heprecord.EventName(hep.TypeRTCP)
	for _, ld := range h.sink.AllLogs() {
		for _, it := range record.All(ld) {
			lr := it.Log
			a := lr.Attributes()
			if lr.EventName() != event {
				continue
			}
			if v, ok := a.Get(record.AttrHEPCorrelationID); !ok || v.AsString() != callID {
				continue
			}
			num := func(k string) (float64, bool) {
				v, ok := a.Get(k)
				switch {
				case !ok:
					return 0, false
				case v.Type() == pcommon.ValueTypeInt:
					return float64(v.Int()), true
				}
				return v.Double(), v.Type() == pcommon.ValueTypeDouble
			}
			r := rtcpRecord{Time: lr.Timestamp().AsTime()}
			var f float64
			f, _ = num(record.AttrMediaReporterSSRC)
			r.Reporter = int64(f)
			f, _ = num(record.AttrMediaSSRC)
			r.SSRC = int64(f)
			r.LossRatio, r.HasLoss = num(record.AttrMediaPacketLossRatio)
			f, r.HasLost = num(record.AttrMediaPacketsLost)
			r.Lost = int64(f)
			r.Jitter, r.HasJi = num(record.AttrMediaJitter)
			r.RTT, r.HasRTT = num(record.AttrMediaRTT)
			r.MOS, r.HasMOS = num(record.AttrMediaMOS)
			if v, ok := a.Get(record.AttrMediaEstimated); ok {
				r.Estimated = v.Bool()
			}
			if v, ok := a.Get(record.AttrMediaQualityClass); ok {
				r.Class = v.Str()
			}
			if v, ok := a.Get(record.AttrMediaSource); ok {
				r.Source = v.Str()
			}
			out[r.Reporter] = append(out[r.Reporter], r)
		}
	}
	for _, rs := range out {
		slices.SortStableFunc(rs, func(a, b rtcpRecord) int { return a.Time.Compare(b.Time) })
	}
	return out
}

// mediaCall is one call's endpoints' figures and its records.
type mediaCall struct {
	callgen.CallResult
	// CallerSIP and CalleeSIP are the SIP ports of the call's user agents
	// (one and the same for the call generator).
	CallerSIP, CalleeSIP int
	Records              map[int64][]rtcpRecord // by reporter SSRC
}

// call places a call to alice with the demo's call generator (the caller
// hangs up after hold) and checks its records (reported).
func (r *mediaRig) call(t *testing.T, hold time.Duration, imp rtpua.Impairment) mediaCall {
	t.Helper()
	res := r.phones.Call(callgen.CallOptions{To: callgen.Answered, Hold: hold, Impair: imp})
	port := int(netip.MustParseAddrPort(r.phones.Addr()).Port())
	return r.reported(t, res, port, port)
}

// sippCall places a call with sipp at both ends of its SIP: uac-call
// calls a uas-answer (registered as a user of its own) through sipproxy
// and hangs up after hold, their SDPs naming two rtpua endpoints beside
// them (sipp.MediaPort). Each endpoint sends its media to where the SDP its sipp received says
// (rtpengine's address and port: sipp's message log), from the 200 on,
// when rtpengine has the answer; the caller's until its sipp had the BYE
// answered, the callee's until it heard the caller's last report (the
// engine relays for a while after the delete). It checks the call's
// records (reported).
func (r *mediaRig) sippCall(t *testing.T, hold time.Duration, imp rtpua.Impairment) mediaCall {
	t.Helper()
	listen := func() *rtpua.Endpoint {
		ep, err := rtpua.Listen(netip.MustParseAddr("127.0.0.1"), mediaCodecs...)
		require.NoError(t, err)
		t.Cleanup(func() { ep.Stop() })
		return ep
	}
	caller, callee := listen(), listen()
	uacPort, uasPort := ports.Port(t), ports.Port(t)
	uas := startSipp(t, sipp.MediaPort(t, "uas-answer", int(callee.RTPAddr().Port())), "u1", uasPort, "", "-m", "1")
	// a user of its own: an earlier call's binding would be forked to
	user := "media-" + strconv.Itoa(uasPort)
	register(t, r.proxy, "u1", user, uasPort)
	uac := startSipp(t, sipp.MediaPort(t, "uac-call", int(caller.RTPAddr().Port())), "u1", uacPort,
		"127.0.0.1:"+strconv.Itoa(r.proxy.SIPPort), "-m", "1", "-s", user, "-d", strconv.FormatInt(hold.Milliseconds(), 10))
	var toCaller, toCallee rtpua.Remote
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		toCallee = receivedSDP(c, uas, "INVITE")
		toCaller = receivedSDP(c, uac, "200")
	}, 20*time.Second, 20*time.Millisecond, "the SDP each sipp received")
	start := func(ep *rtpua.Endpoint, to rtpua.Remote, imp rtpua.Impairment) {
		codec, err := ep.Choose(to)
		require.NoError(t, err)
		require.NoError(t, ep.Start(to, codec, rtpua.Config{RTCPInterval: rtcpInterval, Impair: imp}))
	}
	start(caller, toCaller, imp)
	// the same network both ways, its own draws (as the call generator's
	// callee)
	back := imp
	back.Seed++
	start(callee, toCallee, back)
	uac.Wait()
	res := callgen.CallResult{CallID: uac.CallID(), Status: 200}
	callerStats := caller.Stop()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.True(c, callee.Stats().PeerBye, "the caller's last report, with its BYE, at the callee")
	}, 10*time.Second, 20*time.Millisecond)
	calleeStats := callee.Stop()
	uas.Wait()
	res.Caller, res.Callee = &callerStats, &calleeStats
	return r.reported(t, res, uacPort, uasPort)
}

// receivedSDP is the SDP of the first INVITE or 200 to an INVITE (first)
// that s received, as far as its message log tells yet.
func receivedSDP(c *assert.CollectT, s *sipp.Sipp, first string) rtpua.Remote {
	msgs, err := s.ReadMessages()
	if !assert.NoError(c, err) {
		return rtpua.Remote{}
	}
	for _, m := range msgs {
		if !m.Sent && m.First == first && strings.HasSuffix(m.CSeq, " INVITE") {
			sdp, err := rtpua.ParseSDP([]byte(m.Body))
			assert.NoError(c, err, "%s at sipp %s: %s", first, s.Name, m.Body)
			return sdp
		}
	}
	assert.Fail(c, "no "+first+" yet", "sipp %s", s.Name)
	return rtpua.Remote{}
}

// reported waits until every RTCP packet the call's two ends sent is a
// record, and checks each record against the report it came from (every
// one arrived, unaltered, in order). callerSIP and calleeSIP are the SIP
// ports of its user agents.
func (r *mediaRig) reported(t *testing.T, res callgen.CallResult, callerSIP, calleeSIP int) mediaCall {
	t.Helper()
	c := mediaCall{CallResult: res, CallerSIP: callerSIP, CalleeSIP: calleeSIP}
	ends := []*rtpua.Stats{res.Caller, res.Callee}
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		c.Records = r.hep.rtcpRecords(res.CallID)
		for _, s := range ends {
			assert.Len(ct, c.Records[int64(s.SSRC)], len(s.Sent), "the records of %d's reports", s.SSRC)
		}
		assert.Len(ct, c.Records, 2, "reporters")
	}, 10*time.Second, 50*time.Millisecond)
	for i, s := range ends {
		peer := ends[1-i]
		assert.Zero(t, s.SendErrors, "%d", s.SSRC)
		assert.Zero(t, s.Unreadable, "%d", s.SSRC)
		assert.Zero(t, s.Foreign, "%d", s.SSRC)
		assert.Equal(t, peer.SSRC, s.PeerSSRC, "each end heard the other")
		assert.Equal(t, rtpua.PCMU, s.Codec, "the caller's first choice")
		for j, rep := range s.Sent {
			rec := c.Records[int64(s.SSRC)][j]
			require.NotNil(t, rep.Block, "report %d of %d", j, s.SSRC)
			what := fmt.Sprintf("report %d of %d: %+v", j, s.SSRC, rec)
			assert.Equal(t, "rtcp", rec.Source, what)
			assert.Equal(t, int64(peer.SSRC), rec.SSRC, what)
			assert.True(t, rec.HasLoss && rec.HasLost && rec.HasJi && rec.HasMOS, what)
			assert.Equal(t, rep.Block.LossRatio(), rec.LossRatio, what)
			assert.Equal(t, rep.Block.Lost, rec.Lost, what)
			assert.Equal(t, rep.Block.JitterSeconds(8000), rec.Jitter, what)
			assert.True(t, rec.Estimated, what)
		}
	}
	// the callee had the caller's every report (its last before the
	// BYE); the caller had the callee's but the last (after its BYE)
	assert.True(t, res.Callee.PeerBye)
	assert.Equal(t, uint64(len(res.Caller.Sent)), res.Callee.RTCPReceived)
	assert.GreaterOrEqual(t, res.Caller.RTCPReceived, uint64(len(res.Callee.Sent)-1))
	return c
}

// figures are one direction's figures as the records of its receiver's
// reports give them: the interval loss and the MOS over the reports of
// full intervals (the last report covers the time since the one before,
// a fraction of an interval), the cumulative loss of the last report, the
// jitter and the round trip over every report.
type figures struct {
	Loss, CumulativeLoss, Jitter, RTT, MOS float64
	MOSMin, MOSMax                         float64
	Reports, FullReports, RTTs             int
}

// figures of the stream that the endpoint s received (the other end's).
func (c *mediaCall) figures(s *rtpua.Stats) figures {
	f := figures{MOSMin: math.Inf(1), MOSMax: math.Inf(-1)}
	recs := c.Records[int64(s.SSRC)]
	var exp uint64
	for i, rec := range recs {
		exp += s.Sent[i].Block.ExpectedInterval
		f.Reports++
		f.Jitter += rec.Jitter
		if rec.HasRTT {
			f.RTTs++
			f.RTT += rec.RTT
		}
		if i == len(recs)-1 {
			f.CumulativeLoss = float64(rec.Lost) / float64(exp)
			continue
		}
		f.FullReports++
		f.Loss += rec.LossRatio
		f.MOS += rec.MOS
		f.MOSMin, f.MOSMax = min(f.MOSMin, rec.MOS), max(f.MOSMax, rec.MOS)
	}
	f.Loss /= float64(f.FullReports)
	f.MOS /= float64(f.FullReports)
	f.Jitter /= float64(f.Reports)
	f.RTT /= float64(max(f.RTTs, 1))
	return f
}

func (f figures) String() string {
	return fmt.Sprintf("loss %.2f %% (intervals), %.2f %% (cumulative) | jitter %.2f ms | RTT %.3f ms (%d reports) | MOS %.3f (%.3f-%.3f) | %d reports, %d of full intervals",
		100*f.Loss, 100*f.CumulativeLoss, 1000*f.Jitter, 1000*f.RTT, f.RTTs, f.MOS, f.MOSMin, f.MOSMax, f.Reports, f.FullReports)
}

// expectedMOS is mediaq's E-model MOS for G.711 with the loss and jitter
// given (the delay it takes from them: twice the jitter, the jitter
// buffer; the round trip on loopback adds well under a millisecond).
func expectedMOS(loss, jitter float64) float64 {
	st := mediaq.Stream{LossRatio: loss, Jitter: jitter, Codec: mediaq.DefaultCodec, Given: mediaq.FigLossRatio | mediaq.FigJitter}
	st.Estimate()
	return st.MOS
}

// anchored checks the call's SDP on the SIP side, from sipproxy's own
// HEP capture: the caller offered its endpoint, and the INVITE that left
// sipproxy for the callee (and the 200 that left it for the caller)
// named rtpengine's address and a port of its range instead.
func (r *mediaRig) anchored(t *testing.T, call *mediaCall, portMin, portMax int) {
	t.Helper()
	caller, callee := int64(call.CallerSIP), int64(call.CalleeSIP)
	proxyPort := int64(r.proxy.SIPPort)
	var msgs []hepMsg
	// sipproxy's capture of the call, its INVITEs and 200s, in and out
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		msgs = r.hep.forCall(call.CallID)
		n := 0
		for _, m := range msgs {
			if isInviteOr200(m) {
				n++
			}
		}
		assert.GreaterOrEqual(c, n, 4, "INVITE and 200, received and sent")
	}, 5*time.Second, 20*time.Millisecond)
	inRange := func(p uint16) bool { return int(p) >= portMin && int(p) <= portMax }
	var offered, forwarded, answered, returned int
	// a retransmission (an INVITE's before its 100, a 200's before its
	// ACK: T1 is 500 ms, which a loaded machine can take) is the same
	// message again, not another offer or answer
	type hop struct {
		from, to int64
		raw      string
	}
	seen := map[hop]bool{}
	for _, m := range msgs {
		h := hop{m.SrcPort, m.DstPort, m.Raw}
		if !isInviteOr200(m) || seen[h] {
			continue
		}
		seen[h] = true
		_, body, ok := strings.Cut(m.Raw, "\r\n\r\n")
		require.True(t, ok, "%s without a body: %s", m.First, m.Raw)
		sdp, err := rtpua.ParseSDP([]byte(body))
		require.NoError(t, err, "%s: %s", m.First, body)
		assert.Equal(t, "127.0.0.1", sdp.RTP.Addr().String(), "%s: %s", m.First, body)
		switch from, to := m.SrcPort, m.DstPort; {
		case m.First == "INVITE" && to == proxyPort: // the caller's offer
			offered++
			assert.False(t, inRange(sdp.RTP.Port()), "the caller's own port: %s", body)
		case m.First == "INVITE" && from == proxyPort && to == callee:
			forwarded++
			assert.True(t, inRange(sdp.RTP.Port()), "the offer as it left sipproxy names rtpengine's port: %s", body)
		case m.First == "200" && to == proxyPort: // the callee's answer
			answered++
			assert.False(t, inRange(sdp.RTP.Port()), "the callee's own port: %s", body)
		case m.First == "200" && from == proxyPort && to == caller:
			returned++
			assert.True(t, inRange(sdp.RTP.Port()), "the answer as it left sipproxy names rtpengine's port: %s", body)
		}
	}
	assert.Equal(t, []int{1, 1, 1, 1}, []int{offered, forwarded, answered, returned}, "offer in, offer out, answer in, answer out")
}

// isInviteOr200 says whether m is an INVITE or its 200 (the phones send
// no re-INVITE).
func isInviteOr200(m hepMsg) bool {
	return strings.HasSuffix(m.CSeq, " INVITE") && (m.First == "INVITE" || m.First == "200")
}

// TestMediaQuality runs two 7-second calls, a clean one and one whose
// both directions lose every 20th packet (5 %) and jitter by a uniform
// delay in [0, 40 ms), twice: placed by the demo's call generator, and by
// sipp at both ends of the SIP with rtpua endpoints for the media
// (mediaRig.sippCall). It checks the SIP side (sipproxy anchored the
// media on rtpengine: anchored) and the hep.rtcp records: every RTCP
// report of both ends arrived as a record with the figures it carried
// (mediaRig.call), and the figures of each direction are those of the
// network played:
//
//   - clean: no loss at all; the MOS of each report mediaq's E-model's
//     for G.711 without loss at the jitter reported, and within 0.03 of
//     G.711's unimpaired 4.41 (what up to 20 ms of jitter costs: the
//     jitter of a clean stream is the scheduling of the endpoints and
//     rtpengine, a few tenths of a ms on an idle machine but several ms
//     with stalls of 100 ms and more on a loaded one (5 ms with a load
//     average of 22 on two cores), which is why it is bounded against the
//     impaired call's, which has the same scheduling on top of the
//     injected jitter, rather than in absolute terms);
//   - impaired: the interval loss within a point of 5 % (fraction lost
//     is truncated to 1/256: 5 of 100 reads 12/256 = 4.69 %; a packet in
//     flight at a report moves one between intervals), the cumulative
//     loss within half a point; the jitter within 25 % of the 14.0 ms
//     that RFC 3550's estimator converges to for this delay distribution
//     (rtpua.Impairment derives it: 0.35 of the spread, neighbours
//     overtaking each other). The tolerance is that of an estimator: J is
//     an exponential average over 16 packets of |D|, whose own spread is
//     about 13 % from one report to the next, so the mean of a
//     direction's four reports is within 25 % at about four standard
//     deviations, with room for the scheduling's share; the MOS within
//     0.1 of mediaq's E-model for that loss and jitter, the loss as a
//     report block carries it (12/256: the E-model rates what the reports
//     say; 5 % is 0.03 MOS below that).
//
// Every round trip is that of loopback as rtpengine's capture time
// makes it (it captures the RR, so it is the SR's way from the engine to
// the far end and the RR's back): not negative, and far below a second
// (a misread LSR or DLSR is off by seconds to hours; a loaded machine
// stalls for a tenth). The hep receiver read every packet, and none was
// malformed, dropped or without its media figures.
func TestMediaQuality(t *testing.T) {
	const portMin, portMax = 31600, 31699
	rig := startMediaRig(t, portMin, portMax)
	const hold = 7 * time.Second
	spread := 40 * time.Millisecond
	wantJitter, ok := rtpua.ExpectedJitter(spread)
	require.True(t, ok)
	g711 := expectedMOS(0, 0)
	require.InDelta(t, 4.41, g711, 0.01, "G.711's MOS without impairment")
	// 5 % as a report block can say it: 12/256
	reported := math.Floor(0.05*256) / 256
	wantMOS := expectedMOS(reported, wantJitter.Seconds())
	t.Logf("E-model: MOS %.3f for G.711 clean, %.3f for %.2f %% loss and %.1f ms jitter (%.3f for 5 %%)", g711, wantMOS,
		100*reported, 1000*wantJitter.Seconds(), expectedMOS(0.05, wantJitter.Seconds()))

	cases := []struct {
		name   string
		impair rtpua.Impairment
		check  func(t *testing.T, c *mediaCall, to *rtpua.Stats, f figures)
	}{
		{"clean", rtpua.Impairment{}, func(t *testing.T, c *mediaCall, to *rtpua.Stats, f figures) {
			for i, rec := range c.Records[int64(to.SSRC)] {
				assert.Zero(t, rec.LossRatio, "report %d", i)
				assert.Zero(t, rec.Lost, "report %d", i)
				assert.InDelta(t, expectedMOS(0, rec.Jitter), rec.MOS, 0.005, "report %d: the E-model's at %.2f ms", i, 1000*rec.Jitter)
				assert.InDelta(t, g711, rec.MOS, 0.03, "report %d", i)
				assert.Equal(t, "good", rec.Class, "report %d", i)
			}
			assert.Zero(t, to.Lost)
			assert.Equal(t, to.Expected, to.PacketsReceived)
		}},
		{"impaired", rtpua.Impairment{LossEvery: 20, JitterSpread: spread, Seed: 1}, func(t *testing.T, c *mediaCall, to *rtpua.Stats, f figures) {
			assert.InDelta(t, 0.05, f.Loss, 0.01, "interval loss")
			assert.InDelta(t, 0.05, f.CumulativeLoss, 0.005, "cumulative loss")
			assert.InEpsilon(t, wantJitter.Seconds(), f.Jitter, 0.25, "jitter")
			assert.InDelta(t, wantMOS, f.MOS, 0.1, "MOS")
			// what one end dropped, the other counted lost
			from := c.Caller
			if to == c.Caller {
				from = c.Callee
			}
			assert.Equal(t, from.PacketsSent/20, from.PacketsDropped, "every 20th")
			assert.LessOrEqual(t, to.Lost, int64(from.PacketsDropped), "heard to its end")
			assert.GreaterOrEqual(t, to.Lost, int64(from.PacketsDropped)-1, "the last packet, if dropped, is not expected")
		}},
	}
	for _, placer := range []struct {
		name string
		call func(t *testing.T, hold time.Duration, imp rtpua.Impairment) mediaCall
	}{{"callgen", rig.call}, {"sipp", rig.sippCall}} {
		t.Run(placer.name, func(t *testing.T) {
			// the mean jitter of each call's two directions, for the clean
			// one's bound
			jitter := map[string][]float64{}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					c := placer.call(t, hold, tc.impair)
					rig.anchored(t, &c, portMin, portMax)
					for _, d := range []struct {
						name string
						to   *rtpua.Stats
					}{{"caller to callee", c.Callee}, {"callee to caller", c.Caller}} {
						t.Run(strings.ReplaceAll(d.name, " ", "_"), func(t *testing.T) {
							f := c.figures(d.to)
							t.Logf("%s: %s call %s, %s: %s", placer.name, tc.name, c.CallID, d.name, f)
							s := d.to
							var rtt time.Duration
							var n int
							for _, p := range s.Peer {
								if p.HasRTT {
									rtt += p.RTT
									n++
								}
							}
							t.Logf("  receiving endpoint %d: received %d of %d, jitter %.2f ms at the end, %d reports sent, %d received, RTT at the endpoint %.3f ms (%d)",
								s.SSRC, s.PacketsReceived, s.Expected, 1000*s.JitterSeconds(), len(s.Sent),
								s.RTCPReceived, float64(rtt.Microseconds())/1000/float64(max(n, 1)), n)
							jitter[tc.name] = append(jitter[tc.name], f.Jitter)
							for i, rec := range c.Records[int64(s.SSRC)] {
								if rec.HasRTT {
									assert.GreaterOrEqual(t, rec.RTT, 0.0, "report %d", i)
									assert.Less(t, rec.RTT, 1.0, "report %d", i)
								}
							}
							tc.check(t, &c, d.to, f)
						})
					}
					// the first report of each end precedes the other's first SR
					// (both start together): the others carry an LSR
					var rtts int
					for _, recs := range c.Records {
						for _, rec := range recs {
							if rec.HasRTT {
								rtts++
							}
						}
					}
					assert.GreaterOrEqual(t, rtts, len(c.Caller.Sent)+len(c.Callee.Sent)-2, "round trips from LSR/DLSR")
				})
			}
			require.Len(t, jitter["clean"], 2)
			require.Len(t, jitter["impaired"], 2)
			for i := range 2 {
				assert.Less(t, jitter["clean"][i], jitter["impaired"][i], "direction %d: a clean stream's jitter is the scheduling's alone", i)
			}
		})
	}

	// the receiver's counters: every packet it read is a record, SIP and
	// RTCP alike; none malformed, dropped, or without its media figures
	m := rig.hep.metrics
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		total := 0
		for _, ld := range rig.hep.sink.AllLogs() {
			total += ld.LogRecordCount()
		}
		assert.Positive(c, total)
		assert.EqualValues(c, total, m.Sum(c, "hep_receiver_packets_received"))
		assert.EqualValues(c, total, m.Sum(c, "receiver_accepted_log_records"))
	}, 5*time.Second, 50*time.Millisecond)
	assert.Zero(t, m.Sum(t, "hep_receiver_packets_malformed"))
	assert.Zero(t, m.Sum(t, "hep_receiver_packets_dropped"))
	assert.Zero(t, m.Sum(t, "hep_receiver_media_unreadable"))
}
