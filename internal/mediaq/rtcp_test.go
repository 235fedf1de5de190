package mediaq

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

// RFC 3550 6.4.1's worked example: an RR arriving at A = 0xb710:8000
// (46864.500 s, 1995-11-10 11:33:36.5 UTC) with LSR = 0xb705:2000 and
// DLSR = 0x0005:4000 (5.250 s) gives a round-trip delay of 0x0006:2000,
// 6.125 s.
func TestRoundTripRFC3550(t *testing.T) {
	arrival := time.Date(1995, 11, 10, 11, 33, 36, 500_000_000, time.UTC)
	assert.Equal(t, uint32(0xb7108000), NTPShort(arrival))
	// the whole timestamp, as an SR carries it: 3024992016.5 s since 1900
	assert.Equal(t, uint64(3024992016)<<32|0x80000000, NTP(arrival))
	rtt, ok := RoundTrip(arrival, 0xb7052000, 0x00054000)
	require.True(t, ok)
	assert.Equal(t, 6.125, rtt)

	// no SR received yet, no arrival time, clocks apart: no RTT
	_, ok = RoundTrip(arrival, 0, 0x00054000)
	assert.False(t, ok, "LSR 0")
	_, ok = RoundTrip(time.Time{}, 0xb7052000, 0x00054000)
	assert.False(t, ok, "no arrival")
	_, ok = RoundTrip(arrival.Add(-7*time.Second), 0xb7052000, 0x00054000)
	assert.False(t, ok, "negative")
	_, ok = RoundTrip(arrival.Add(2*time.Minute), 0xb7052000, 0x00054000)
	assert.False(t, ok, "beyond MaxDelay")
	// the 16-bit seconds wrap every 18.2 hours
	wrapped := time.Date(1995, 11, 10, 11, 33, 36, 500_000_000, time.UTC).Add(65536 * time.Second)
	rtt, ok = RoundTrip(wrapped, 0xb7052000, 0x00054000)
	assert.True(t, ok)
	assert.Equal(t, 6.125, rtt)
}

// rtpengineCapture returns the HEP packets rtpengine sent (testdata).
func rtpengineCapture(t testing.TB) []hep.Packet {
	var pkts []hep.Packet
	for _, b := range fixture.MediaHex("rtpengine-rtcp-hep.hex") {
		var p hep.Packet
		require.NoError(t, p.Decode(b))
		require.Equal(t, hep.TypeRTCP, p.ProtoType)
		pkts = append(pkts, p)
	}
	require.Len(t, pkts, 6)
	return pkts
}

// The HEP packets rtpengine 10.5 sent for one call (rtpengine-rtcp-hep.hex):
// A's SR without blocks, then B's RR and B's SR about A, twice.
func TestRTCPJSONRTPEngineCapture(t *testing.T) {
	pkts := rtpengineCapture(t)
	for i, p := range pkts {
		assert.Equal(t, "media-sample-1@127.0.0.1", string(p.CorrelationID), "packet %d", i)
		r, err := ParseRTCPJSON(p.Payload, Options{Arrival: p.Time()})
		require.NoError(t, err, "packet %d: %s", i, p.Payload)
		assert.Equal(t, SourceRTCP, r.Source)
		checkReport(t, &r)
		switch i % 3 {
		case 0: // A's SR
			assert.Equal(t, "SR", r.Kind)
			assert.True(t, r.HasSender)
			assert.Empty(t, r.Streams)
			continue
		case 1:
			assert.Equal(t, "RR", r.Kind)
			assert.False(t, r.HasSender)
		case 2:
			assert.Equal(t, "SR", r.Kind)
			assert.True(t, r.HasSender)
		}
		require.Len(t, r.Streams, 1, "packet %d", i)
		st := r.Streams[0]
		assert.Equal(t, DirReceived, st.Direction)
		assert.Equal(t, uint32(0x1a2b3c4d), st.SSRC)
		assert.Equal(t, uint32(0x5e6f7081), st.ReporterSSRC)
		assert.Equal(t, 13.0/256, st.LossRatio)
		assert.Equal(t, int64(3+4*(i/3)), st.PacketsLost)
		assert.Equal(t, 37.0/8000, st.Jitter)
		assert.True(t, st.CodecAssumed)
		assert.Equal(t, FigSSRC|FigReporterSSRC|FigLossRatio|FigPacketsLost|FigJitter, st.Given)
		assert.Equal(t, FigRTT|FigRFactor|FigMOS|FigOneWayDelay, st.Computed)
		// The SR went from A through rtpengine (captured as packet i-1 or
		// i-2, within a millisecond of A's send time that LSR carries); B
		// answered 30 ms later by its DLSR: the round trip is the time
		// between the two captures less DLSR.
		sr := pkts[i/3*3]
		want := p.Time().Sub(sr.Time()).Seconds() - 1966.0/65536
		assert.InDelta(t, want, st.RTT, 0.002, "packet %d", i)
		// 13/256 loss on G.711 with PLC: R = 93.2 - 95 Ppl/(Ppl + 25.1),
		// less the echo impairment of ~10 ms delay (2 x 4.6 ms jitter
		// buffer and the RTT), under a point
		ppl := 100 * 13.0 / 256
		assert.InDelta(t, 93.2-95*ppl/(ppl+25.1)-0.5, st.RFactor, 0.5)
		assert.InDelta(t, MOSFromR(st.RFactor), st.MOS, 1e-12)
		assert.Equal(t, ClassFair, st.Class())
	}
	r, err := ParseRTCPJSON(pkts[0].Payload, Options{})
	require.NoError(t, err)
	assert.Equal(t, uint64(51), r.SenderPackets)
	assert.Equal(t, uint64(8160), r.SenderOctets)
}

func TestRTCPJSONSamples(t *testing.T) {
	type want struct {
		kind    string
		sender  bool
		streams []Stream // figures compared where set in Given/Computed
	}
	cases := map[string]want{
		// heplify-server's test sample: an SR sent as type 202 (SDES
		// last), an XR object without type 7: no XR stream
		"rtcp-json/heplify-server-test.json": {"SDES", true, []Stream{{
			SSRC: 1393754395, ReporterSSRC: 2543003035, LossRatio: 0, PacketsLost: 0, Jitter: 159.0 / 8000,
			Given: FigSSRC | FigReporterSSRC | FigLossRatio | FigPacketsLost | FigJitter,
		}}},
		// heplify's RR: cumulative loss printed as the unsigned 24-bit field (-2)
		"rtcp-json/heplify-rr.json": {"RR", true, []Stream{{
			SSRC: 439041101, ReporterSSRC: 1584361601, LossRatio: 26.0 / 256, PacketsLost: -2, Jitter: 320.0 / 8000,
			Given: FigSSRC | FigReporterSSRC | FigLossRatio | FigPacketsLost | FigJitter,
		}, {
			SSRC: 439041102, ReporterSSRC: 1584361601, LossRatio: 0, PacketsLost: 0, Jitter: 80.0 / 8000,
			Given: FigSSRC | FigReporterSSRC | FigLossRatio | FigPacketsLost | FigJitter,
		}}},
		// heplify's XR object of block type 7
		"rtcp-json/heplify-xr.json": {"XR", true, []Stream{{
			SSRC: 305419896, ReporterSSRC: 3735928559, LossRatio: 5.0 / 256, DiscardRatio: 2.0 / 256, RTT: 0.12, OneWayDelay: 0.12,
			Given: FigSSRC | FigReporterSSRC | FigLossRatio | FigDiscardRatio | FigRTT,
		}}},
		// captagent: cumulative loss as %u of a signed int32 (-2)
		"rtcp-json/captagent-sr.json": {"SR", true, []Stream{{
			SSRC: 2130706433, ReporterSSRC: 1814766290, LossRatio: 3.0 / 256, PacketsLost: -2, Jitter: 96.0 / 8000,
			Given: FigSSRC | FigReporterSSRC | FigLossRatio | FigPacketsLost | FigJitter,
		}}},
		// captagent's decoder's XR: MOS-CQ, MOS-LQ and R given
		"rtcp-json/captagent-decoder-xr.json": {"XR", false, []Stream{{
			SSRC: 305419896, ReporterSSRC: 2864434397, LossRatio: 13.0 / 256, DiscardRatio: 3.0 / 256, RTT: 0.08,
			OneWayDelay: 0.04 + 0.07, JitterBuffer: 0.04, MOS: 4.0, MOSLQ: 4.1, RFactor: 86, PLC: PLCStandard,
			Given: FigSSRC | FigReporterSSRC | FigLossRatio | FigDiscardRatio | FigRTT | FigJitterBuffer | FigMOS | FigMOSLQ | FigRFactor,
		}}},
		// hepgen.js: numbers in strings, a negative rtp_timestamp
		"rtcp-json/hepgen-sr.json": {"SR", true, nil},
	}
	names := fixture.MediaFiles("rtcp-json/*.json")
	require.Len(t, names, len(cases), "every sample has a case")
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			w, ok := cases[name]
			require.True(t, ok)
			r, err := ParseRTCPJSON(fixture.Media(name), Options{})
			require.NoError(t, err)
			checkReport(t, &r)
			assert.Equal(t, w.kind, r.Kind)
			assert.Equal(t, w.sender, r.HasSender)
			require.Len(t, r.Streams, len(w.streams))
			for i, ws := range w.streams {
				assertFigures(t, ws, r.Streams[i])
			}
		})
	}
	r, err := ParseRTCPJSON(fixture.Media("rtcp-json/hepgen-sr.json"), Options{})
	require.NoError(t, err)
	assert.Equal(t, uint64(2), r.SenderPackets)
	assert.Equal(t, uint64(40), r.SenderOctets)
}

// assertFigures compares the figures want.Given says are there.
func assertFigures(t *testing.T, want, got Stream) {
	t.Helper()
	assert.Equal(t, want.Given, got.Given, "given figures")
	for _, f := range []struct {
		fig       Figure
		want, got float64
	}{
		{FigSSRC, float64(want.SSRC), float64(got.SSRC)},
		{FigReporterSSRC, float64(want.ReporterSSRC), float64(got.ReporterSSRC)},
		{FigLossRatio, want.LossRatio, got.LossRatio},
		{FigPacketsLost, float64(want.PacketsLost), float64(got.PacketsLost)},
		{FigPacketsReceived, float64(want.PacketsReceived), float64(got.PacketsReceived)},
		{FigPacketsSent, float64(want.PacketsSent), float64(got.PacketsSent)},
		{FigDiscardRatio, want.DiscardRatio, got.DiscardRatio},
		{FigJitter, want.Jitter, got.Jitter},
		{FigRTT, want.RTT, got.RTT},
		{FigOneWayDelay, want.OneWayDelay, got.OneWayDelay},
		{FigJitterBuffer, want.JitterBuffer, got.JitterBuffer},
		{FigMOS, want.MOS, got.MOS},
		{FigMOSLQ, want.MOSLQ, got.MOSLQ},
		{FigRFactor, want.RFactor, got.RFactor},
		{FigDuration, want.Duration, got.Duration},
	} {
		if want.Given&f.fig != 0 || want.Computed&f.fig != 0 || f.want != 0 {
			assert.InDelta(t, f.want, f.got, 1e-9, "figure %s", f.fig)
		}
	}
	assert.Equal(t, want.PLC, got.PLC, "PLC")
}

// checkReport holds every report to its documented ranges.
func checkReport(t testing.TB, r *Report) {
	t.Helper()
	assert.LessOrEqual(t, len(r.Streams), MaxStreams)
	for i := range r.Streams {
		s := &r.Streams[i]
		in := func(f Figure, v, lo, hi float64) {
			if s.Has(f) {
				assert.True(t, v >= lo && v <= hi, "stream %d figure %s = %g not in %g..%g", i, f, v, lo, hi)
			}
		}
		in(FigLossRatio, s.LossRatio, 0, 1)
		in(FigDiscardRatio, s.DiscardRatio, 0, 1)
		in(FigJitter, s.Jitter, 0, MaxJitter)
		in(FigRTT, s.RTT, 0, MaxDelay)
		in(FigOneWayDelay, s.OneWayDelay, 0, 2*MaxDelay)
		in(FigJitterBuffer, s.JitterBuffer, 0, MaxDelay)
		in(FigMOS, s.MOS, 1, 5)
		in(FigMOSLQ, s.MOSLQ, 1, 5)
		in(FigRFactor, s.RFactor, 0, 120)
		assert.Zero(t, s.Given&s.Computed, "a figure is given or computed, not both")
		assert.LessOrEqual(t, len(s.Codec.Name), MaxIDLength)
		if s.Has(FigLossRatio) {
			assert.True(t, s.Has(FigMOS), "loss without a MOS")
		}
	}
	assert.LessOrEqual(t, len(r.CallID), MaxIDLength)
}

func TestRTCPJSONCodec(t *testing.T) {
	b := []byte(`{"report_blocks":[{"source_ssrc":1,"fraction_lost":5,"ia_jitter":480}]}`)
	for _, c := range []struct {
		codec  Codec
		jitter float64
		ie     float64
	}{
		{Codec{}, 480.0 / 8000, 0},
		{Codec{Name: "opus"}, 480.0 / 48000, 0},
		{Codec{Name: "G722", ClockRate: 8000}, 480.0 / 8000, 0},
		{Codec{Name: "G729"}, 480.0 / 8000, 11},
	} {
		r, err := ParseRTCPJSON(b, Options{Codec: c.codec})
		require.NoError(t, err)
		st := r.Streams[0]
		assert.Equal(t, c.jitter, st.Jitter, c.codec.Name)
		assert.Equal(t, c.codec.Name == "", st.CodecAssumed)
		want := EModel(EModelInput{LossRatio: 5.0 / 256, Delay: 2 * c.jitter, Ie: c.ie, Bpl: ImpairmentOf(c.codec, 0).Bpl})
		assert.InDelta(t, want, st.RFactor, 1e-9, c.codec.Name)
	}
}

// badRTCP are inputs every RTCP JSON parser must refuse, with their reason.
var badRTCP = []struct {
	name, in string
	reason   Reason
}{
	{"empty", ``, ReasonMalformed},
	{"not an object", `[]`, ReasonMalformed},
	{"truncated", `{"ssrc":1`, ReasonMalformed},
	{"bad key", `{ssrc:1}`, ReasonMalformed},
	{"trailing data", `{"ssrc":1}x`, ReasonMalformed},
	{"trailing comma", `{"ssrc":1,}`, ReasonMalformed},
	{"ssrc a word", `{"ssrc":"abc"}`, ReasonMalformed},
	{"number syntax", `{"ssrc":01}`, ReasonMalformed},
	{"control char", "{\"x\":\"a\x01\"}", ReasonMalformed},
	{"bad escape", `{"x":"\q"}`, ReasonMalformed},
	{"no RTCP field", `{"foo":1,"bar":[1,2]}`, ReasonEmpty},
	{"empty object", `{}`, ReasonEmpty},
	{"fraction_lost 300", `{"report_blocks":[{"fraction_lost":300}]}`, ReasonOutOfRange},
	{"fraction_lost negative", `{"report_blocks":[{"fraction_lost":-1}]}`, ReasonOutOfRange},
	{"fraction_lost fractional", `{"report_blocks":[{"fraction_lost":0.5}]}`, ReasonOutOfRange},
	{"jitter in hours", `{"report_blocks":[{"ia_jitter":4000000000}]}`, ReasonOutOfRange},
	{"jitter huge", `{"report_blocks":[{"ia_jitter":1e300}]}`, ReasonOutOfRange},
	{"ssrc negative", `{"report_blocks":[{"source_ssrc":-5}]}`, ReasonOutOfRange},
	{"reporter ssrc too big", `{"ssrc":4294967296}`, ReasonOutOfRange},
	{"packets_lost huge", `{"report_blocks":[{"packets_lost":1e12}]}`, ReasonOutOfRange},
	{"lsr negative", `{"report_blocks":[{"lsr":-1}]}`, ReasonOutOfRange},
	{"sender packets negative", `{"sender_information":{"packets":-4}}`, ReasonOutOfRange},
	{"xr loss 256", `{"report_blocks_xr":{"type":7,"fraction_lost":256}}`, ReasonOutOfRange},
	{"xr MOS 9", `{"extended_report_information":{"type":7,"MOS_CQ":90}}`, ReasonOutOfRange},
	{"xr R 121", `{"extended_report_information":{"type":7,"R_fact":121}}`, ReasonOutOfRange},
	{"xr PLC 4", `{"extended_report_information":{"type":7,"RX_conf":[{"PLC":4}]}}`, ReasonOutOfRange},
	{"too many blocks", `{"report_blocks":[` + strings.Repeat(`{"fraction_lost":0},`, MaxStreams) + `{"fraction_lost":0}]}`, ReasonTooLarge},
	{"too deep", `{"x":` + strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1) + `}`, ReasonTooLarge},
	{"too large", `{"x":"` + strings.Repeat("a", MaxJSONSize) + `"}`, ReasonTooLarge},
}

func TestRTCPJSONBad(t *testing.T) {
	for _, c := range badRTCP {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRTCPJSON([]byte(c.in), Options{})
			require.Error(t, err)
			assert.Equal(t, c.reason, ReasonOf(err), "%v", err)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, SourceRTCP, e.Source)
			assert.True(t, strings.HasPrefix(err.Error(), "mediaq: rtcp: "+string(c.reason)), err.Error())
		})
	}
}

func TestRTCPJSONTolerant(t *testing.T) {
	for _, in := range []string{
		// unknown fields of every kind are skipped
		`{"ssrc":1,"unknown":{"a":[1,2.5e3,{"b":null,"c":true,"d":false}],"e":"\u00e9\n"},"report_blocks":[]}`,
		// nulls and quoted numbers
		`{"ssrc":null,"type":"201","report_blocks":[{"source_ssrc":"7","fraction_lost":null}]}`,
		// a C sender's trailing NUL, space around everything
		" \t{ \"ssrc\" : 1 , \"report_blocks\" : [ ] } \n\x00",
		// negative zero, exponents
		`{"ssrc":-0,"report_blocks":[{"fraction_lost":2.56e2,"ia_jitter":1E2}]}`,
	} {
		r, err := ParseRTCPJSON([]byte(in), Options{})
		if strings.Contains(in, "2.56e2") {
			require.Error(t, err, "fraction_lost 256 is past the 8-bit field")
			continue
		}
		require.NoError(t, err, in)
		checkReport(t, &r)
	}
}

// A Report parsed into again reuses its stream slice: the receiver parses
// every RTCP packet without allocating.
func TestRTCPJSONReuse(t *testing.T) {
	payload := rtpengineCapture(t)[2].Payload
	var r Report
	require.NoError(t, r.ParseRTCPJSON(payload, Options{}))
	allocs := testing.AllocsPerRun(100, func() {
		if err := r.ParseRTCPJSON(payload, Options{}); err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs)
	require.Len(t, r.Streams, 1)
}

func TestReasonOf(t *testing.T) {
	assert.Equal(t, Reason(""), ReasonOf(nil))
	assert.Equal(t, ReasonMalformed, ReasonOf(fmt.Errorf("other")))
	wrapped := fmt.Errorf("wrapped: %w", &Error{Reason: ReasonTooLarge})
	assert.Equal(t, ReasonTooLarge, ReasonOf(wrapped))
	assert.Equal(t, "unknown", Source(200).String())
	assert.Equal(t, "loss_ratio,jitter,duration", (FigLossRatio | FigJitter | FigDuration).String())
	assert.Equal(t, "", Figure(0).String())
	assert.Len(t, figureNames, 15, "a name for every figure")
	assert.Equal(t, FigDuration, Figure(1<<(len(figureNames)-1)))
	assert.True(t, math.IsInf(MaxDelay*math.Inf(1), 1))
}

// SDES-only JSON (rtpengine's homer_sdes_*, captagent's SDES_REPORT_*) is
// RTCP without figures: no error.
func TestRTCPJSONSDESOnly(t *testing.T) {
	for _, in := range []string{
		`{ "sdes_report_count":1,"sdes_information": [ {"sdes_chunk_ssrc":439041101,"type":1,"text":"a@host"}] }`,
		`{ "sdes_ssrc":1814766290,"sdes_chunk_ssrc":1814766290,"sdes_information": [ {"type":1,"text":"x"}],"sdes_report_count":1}`,
	} {
		r, err := ParseRTCPJSON([]byte(in), Options{})
		require.NoError(t, err, in)
		assert.Empty(t, r.Streams)
	}
}
