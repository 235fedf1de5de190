package mediaq

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

func xrSample(t testing.TB) []byte {
	blocks := fixture.MediaHex("xr-voip-metrics.hex")
	require.Len(t, blocks, 1)
	return blocks[0]
}

func TestXRVoIPMetrics(t *testing.T) {
	st, err := ParseXRVoIPMetrics(xrSample(t), Codec{})
	require.NoError(t, err)
	r := Report{Streams: []Stream{st}}
	checkReport(t, &r)
	assertFigures(t, Stream{
		SSRC: 0x2468abcd, LossRatio: 13.0 / 256, DiscardRatio: 3.0 / 256, RTT: 0.08, OneWayDelay: 0.04 + 0.07,
		JitterBuffer: 0.04, MOS: 4.0, MOSLQ: 4.1, RFactor: 86, PLC: PLCStandard,
		Given: FigSSRC | FigLossRatio | FigDiscardRatio | FigRTT | FigJitterBuffer | FigMOS | FigMOSLQ | FigRFactor,
	}, st)
	assert.Equal(t, FigOneWayDelay, st.Computed)
	assert.True(t, st.CodecAssumed)
	assert.Equal(t, ClassFair, st.Class())

	// 127 is "unavailable": then R and MOS come from the E-model
	b := xrSample(t)
	b[24], b[26], b[27] = 127, 127, 127
	st, err = ParseXRVoIPMetrics(b, Codec{Name: "G729"})
	require.NoError(t, err)
	assert.Equal(t, FigRFactor|FigMOS|FigOneWayDelay, st.Computed)
	want := EModel(EModelInput{LossRatio: 16.0 / 256, Delay: 0.11, Ie: 11, Bpl: 19})
	assert.InDelta(t, want, st.RFactor, 1e-9)
	assert.False(t, st.CodecAssumed)

	// RX config PLC "disabled" picks G.711's Bpl without PLC
	b = xrSample(t)
	b[24], b[27], b[28] = 127, 127, 0x40
	st, err = ParseXRVoIPMetrics(b, Codec{})
	require.NoError(t, err)
	assert.Equal(t, PLCDisabled, st.PLC)
	assert.InDelta(t, EModel(EModelInput{LossRatio: 16.0 / 256, Delay: 0.11, Ie: 0, Bpl: 4.3}), st.RFactor, 1e-9)
}

func TestXRVoIPMetricsBad(t *testing.T) {
	for _, c := range []struct {
		name   string
		edit   func(b []byte) []byte
		reason Reason
	}{
		{"short", func(b []byte) []byte { return b[:35] }, ReasonMalformed},
		{"empty", func(b []byte) []byte { return nil }, ReasonMalformed},
		{"block type 8", func(b []byte) []byte { b[0] = 8; return b }, ReasonMalformed},
		{"length 9", func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 9); return b }, ReasonMalformed},
		{"MOS-CQ 9.0", func(b []byte) []byte { b[27] = 90; return b }, ReasonOutOfRange},
		{"MOS-LQ 0.5", func(b []byte) []byte { b[26] = 5; return b }, ReasonOutOfRange},
		{"R 121", func(b []byte) []byte { b[24] = 121; return b }, ReasonOutOfRange},
		{"RTD 65 s", func(b []byte) []byte { binary.BigEndian.PutUint16(b[16:], 65000); return b }, ReasonOutOfRange},
		{"JB nominal 61 s", func(b []byte) []byte { binary.BigEndian.PutUint16(b[30:], 61000); return b }, ReasonOutOfRange},
	} {
		_, err := ParseXRVoIPMetrics(c.edit(xrSample(t)), Codec{})
		require.Error(t, err, c.name)
		assert.Equal(t, c.reason, ReasonOf(err), "%s: %v", c.name, err)
	}
}

func TestVQReportSamples(t *testing.T) {
	type want struct {
		kind, callID, localID string
		streams               []Stream
		codec                 []Codec
		computed              []Figure
	}
	local, remote := DirReceived, DirRemote
	cases := map[string]want{
		// heplify-server's snom821 sample: LocalMetrics only, MOS given
		"vq/heplify-server-snom.txt": {"VQSessionReport", "825962570309-8ds5sl3mca99", "<sip:5004@10.0.3.252>", []Stream{{
			Direction: local, SSRC: 0x1F634EA2, ReporterSSRC: 0x014EA261, LossRatio: 0.055, DiscardRatio: 0,
			JitterBuffer: 0.02, Jitter: 0, MOSLQ: 3.8, MOS: 4.2, Duration: 7,
			Given: FigSSRC | FigReporterSSRC | FigLossRatio | FigDiscardRatio | FigJitterBuffer | FigJitter | FigMOSLQ | FigMOS | FigDuration,
		}}, []Codec{{Name: "PCMA", ClockRate: 8000, PayloadType: 8}}, []Figure{0}},
		// Gigaset's wiki: no scores, both directions
		"vq/gigaset-wiki.txt": {"VQSessionReport", "3c26a8de500f-12ct7zov3kjs", "", []Stream{{
			Direction: local, SSRC: 0xB80B52F3, ReporterSSRC: 0xCBE3450E, LossRatio: 0, DiscardRatio: 0, Jitter: 0.004, Duration: 4,
			Given: FigSSRC | FigReporterSSRC | FigLossRatio | FigDiscardRatio | FigJitter | FigDuration,
		}, {
			Direction: remote, SSRC: 0xCBE3450E, ReporterSSRC: 0xB80B52F3, LossRatio: 0, DiscardRatio: 0, Jitter: 0.002,
			Given: FigSSRC | FigReporterSSRC | FigLossRatio | FigDiscardRatio | FigJitter,
		}}, []Codec{{Name: "G.711U", ClockRate: 8000, PayloadType: 0}, {Name: "PCMU", ClockRate: 8000, PayloadType: 0}},
			[]Figure{FigRFactor | FigMOS | FigOneWayDelay, FigRFactor | FigMOS | FigOneWayDelay}},
		"vq/rfc6035-session.txt": {"VQSessionReport", "6dg37f1890463", "Alice <sip:alice@example.org>", []Stream{{
			Direction: local, SSRC: 0x2468abcd, ReporterSSRC: 0x1a3b5c7d, LossRatio: 0.05, DiscardRatio: 0.02, JitterBuffer: 0.04,
			RTT: 0.2, OneWayDelay: 0.2, Jitter: 0.002, MOSLQ: 4.1, MOS: 4.0, RFactor: 85, PLC: PLCStandard, Duration: 29,
			Given: FigSSRC | FigReporterSSRC | FigLossRatio | FigDiscardRatio | FigJitterBuffer | FigRTT | FigOneWayDelay | FigJitter | FigMOSLQ | FigMOS | FigRFactor | FigDuration,
		}, {
			Direction: remote, SSRC: 0x1a3b5c7d, ReporterSSRC: 0x2468abcd, LossRatio: 0.05, DiscardRatio: 0.02, JitterBuffer: 0.04,
			RTT: 0.2, OneWayDelay: 0.2, Jitter: 0.002, MOSLQ: 4.2, MOS: 4.3, RFactor: 85, PLC: PLCStandard, Duration: 29,
			Given: FigSSRC | FigReporterSSRC | FigLossRatio | FigDiscardRatio | FigJitterBuffer | FigRTT | FigOneWayDelay | FigJitter | FigMOSLQ | FigMOS | FigRFactor | FigDuration,
		}}, []Codec{{Name: "G729", ClockRate: 8000, PayloadType: 18}, {Name: "G729", ClockRate: 8000, PayloadType: 18}}, []Figure{0, 0}},
		"vq/rfc6035-interval.txt": {"VQIntervalReport", "6dg37f1890463", "Alice <sip:alice@example.org>", []Stream{{
			Direction: local, SSRC: 0x2468abcd, ReporterSSRC: 0x1a3b5c7d, LossRatio: 0.02, DiscardRatio: 0, JitterBuffer: 0.06,
			RTT: 0.12, Jitter: 0.008, OneWayDelay: 0.06 + 0.06, PLC: PLCDisabled, Duration: 10,
			Given: FigSSRC | FigReporterSSRC | FigLossRatio | FigDiscardRatio | FigJitterBuffer | FigRTT | FigJitter | FigDuration,
		}}, []Codec{{Name: "PCMU", ClockRate: 8000, PayloadType: 0}}, []Figure{FigRFactor | FigMOS | FigOneWayDelay}},
		"vq/rfc6035-alert.txt": {"VQAlertReport", "6dg37f1890463", "", []Stream{{
			Direction: local, SSRC: 0x2468abcd, ReporterSSRC: 0x1a3b5c7d, LossRatio: 0.18, DiscardRatio: 0.04,
			RTT: 0.4, OneWayDelay: 0.2 + 0.06, Jitter: 0.035, MOSLQ: 2.1,
			Given: FigSSRC | FigReporterSSRC | FigLossRatio | FigDiscardRatio | FigRTT | FigJitter | FigMOSLQ,
		}}, []Codec{{Name: "G729", ClockRate: 8000, PayloadType: 18}}, []Figure{FigRFactor | FigMOS | FigOneWayDelay}},
	}
	names := fixture.MediaFiles("vq/*.txt")
	require.Len(t, names, len(cases))
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			w := cases[name]
			r, err := ParseVQReport(string(fixture.Media(name)), Codec{Name: "PCMU"})
			require.NoError(t, err)
			checkReport(t, &r)
			assert.Equal(t, SourceVQReport, r.Source)
			assert.Equal(t, w.kind, r.Kind)
			assert.Equal(t, w.callID, r.CallID)
			assert.Equal(t, w.localID, r.LocalID)
			require.Len(t, r.Streams, len(w.streams))
			for i, ws := range w.streams {
				st := r.Streams[i]
				assertFigures(t, ws, st)
				assert.Equal(t, ws.Direction, st.Direction)
				assert.Equal(t, w.codec[i].Name, st.Codec.Name)
				assert.Equal(t, w.codec[i].PayloadType, st.Codec.PayloadType)
				assert.Equal(t, w.codec[i].ClockRate, st.Codec.ClockRate)
				assert.Equal(t, w.computed[i], st.Computed, "stream %d computed", i)
			}
		})
	}
	// the reporter's and its peer's endpoints place a report in its call
	r, err := ParseVQReport(string(fixture.Media("vq/rfc6035-session.txt")), Codec{})
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("10.10.1.100:5000"), r.LocalAddr)
	assert.Equal(t, netip.MustParseAddrPort("11.1.1.150:5002"), r.RemoteAddr)
	r, err = ParseVQReport("VQSessionReport\nLocalAddr: IP=10.0.0.1 SSRC=1\nRemoteAddr: PORT=5 SSRC=2\nLocalMetrics:\nPacketLoss: NLR=1.0\n", Codec{})
	require.NoError(t, err)
	assert.False(t, r.LocalAddr.IsValid(), "no PORT")
	assert.False(t, r.RemoteAddr.IsValid(), "no IP")
	// the gigaset remote stream has no SessionDesc: the caller's codec
	r, err = ParseVQReport(string(fixture.Media("vq/gigaset-wiki.txt")), Codec{})
	require.NoError(t, err)
	assert.True(t, r.Streams[1].CodecAssumed)
	assert.False(t, r.Streams[0].CodecAssumed)
	// the alert's loss on G.729 is bad, its interval's is poor
	r, err = ParseVQReport(string(fixture.Media("vq/rfc6035-alert.txt")), Codec{})
	require.NoError(t, err)
	assert.Equal(t, ClassBad, r.Streams[0].Class())
}

func TestVQReportBad(t *testing.T) {
	head := "VQSessionReport: CallTerm\nCallID: x\nLocalMetrics:\n"
	for _, c := range []struct {
		name, in string
		reason   Reason
	}{
		{"empty", "", ReasonEmpty},
		{"not a report", "hello: world\n", ReasonMalformed},
		{"SIP message", "INVITE sip:a@b SIP/2.0\r\n", ReasonMalformed},
		{"no metrics", "VQSessionReport: CallTerm\nCallID: x\n", ReasonEmpty},
		{"NLR 150", head + "PacketLoss: NLR=150\n", ReasonOutOfRange},
		{"NLR negative", head + "PacketLoss: NLR=-1\n", ReasonOutOfRange},
		{"NLR a word", head + "PacketLoss: NLR=abc\n", ReasonMalformed},
		{"MOS 9", head + "QualityEst: MOSLQ=9\n", ReasonOutOfRange},
		{"jitter in hours", head + "Delay: IAJ=7200000\n", ReasonOutOfRange},
		{"RTD NaN", head + "Delay: RTD=NaN\n", ReasonOutOfRange},
		{"PT 300", head + "SessionDesc: PT=300\n", ReasonOutOfRange},
		{"PLC 7", head + "SessionDesc: PLC=7\n", ReasonOutOfRange},
		{"bad SSRC", "VQSessionReport\nLocalAddr: IP=1.2.3.4 SSRC=zz\n", ReasonMalformed},
		{"bad time", head + "Timestamps: START=yesterday\n", ReasonMalformed},
		{"too many lines", head + strings.Repeat("x-Foo: bar\n", MaxVQLines), ReasonTooLarge},
		{"too large", head + "x-Foo: " + strings.Repeat("a", MaxVQSize) + "\n", ReasonTooLarge},
	} {
		_, err := ParseVQReport(c.in, Codec{})
		require.Error(t, err, c.name)
		assert.Equal(t, c.reason, ReasonOf(err), "%s: %v", c.name, err)
	}
	// unknown groups and keys, quoted values, bare words are skipped
	r, err := ParseVQReport(head+"x-Custom: A=1 B=\"c d\"\nPacketLoss: NLR=1.5 FOO=bar baz\nSessionDesc: FMTP=\"x y\n", Codec{})
	require.NoError(t, err)
	assert.Equal(t, 0.015, r.Streams[0].LossRatio)
}

func TestRTPStatSamples(t *testing.T) {
	lines := fixture.MediaLines("rtp-stat.txt")
	require.Len(t, lines, 6)
	wants := []struct {
		kind     string
		st       Stream
		computed Figure
		codec    string
	}{
		{HeaderXRTPStat, Stream{PacketsSent: 207, PacketsReceived: 314, PacketsLost: 0, Jitter: 0.6, OneWayDelay: 0.04,
			Given: FigPacketsSent | FigPacketsReceived | FigPacketsLost | FigJitter | FigOneWayDelay}, FigLossRatio | FigRFactor | FigMOS, "PCMU"},
		{HeaderXRTPStat, Stream{PacketsSent: 1234, PacketsReceived: 1236, PacketsLost: 0, Jitter: 0.001, Duration: 1230, MOS: 4.0,
			Given: FigPacketsSent | FigPacketsReceived | FigPacketsLost | FigJitter | FigDuration | FigMOS}, FigLossRatio, "G711U"},
		{HeaderPRTPStat, Stream{PacketsSent: 3775, PacketsReceived: 3775, PacketsLost: 0, Jitter: 0, RTT: 0.004, Duration: 98,
			Given: FigPacketsSent | FigPacketsReceived | FigPacketsLost | FigJitter | FigRTT | FigDuration}, FigLossRatio | FigRFactor | FigMOS | FigOneWayDelay, "PCMU"},
		{HeaderXRTPStat, Stream{PacketsSent: 131918, PacketsReceived: 132118, PacketsLost: 22, Jitter: 0.023, RTT: 0.034,
			Given: FigPacketsSent | FigPacketsReceived | FigPacketsLost | FigJitter | FigRTT}, FigLossRatio | FigRFactor | FigMOS | FigOneWayDelay, "PCMA"},
		{HeaderXRTPStat, Stream{PacketsSent: 3100, PacketsReceived: 3090, PacketsLost: 10, Jitter: 0.0125, Duration: 62,
			Given: FigPacketsSent | FigPacketsReceived | FigPacketsLost | FigJitter | FigDuration}, FigLossRatio | FigRFactor | FigMOS | FigOneWayDelay, "PCMU"},
		{HeaderXRTPStat, Stream{PacketsSent: 662, PacketsReceived: 661, PacketsLost: 0, Jitter: 0, OneWayDelay: 0.001,
			Given: FigPacketsSent | FigPacketsReceived | FigPacketsLost | FigJitter | FigOneWayDelay}, FigLossRatio | FigRFactor | FigMOS, "PCMA"},
	}
	for i, line := range lines {
		name, value, ok := strings.Cut(line, ":")
		require.True(t, ok)
		r, err := ParseRTPStat(name, strings.TrimSpace(value), Codec{})
		require.NoError(t, err, line)
		checkReport(t, &r)
		w := wants[i]
		assert.Equal(t, w.kind, r.Kind, line)
		require.Len(t, r.Streams, 1)
		st := r.Streams[0]
		assertFigures(t, w.st, st)
		assert.Equal(t, w.computed, st.Computed, line)
		assert.Equal(t, w.codec, st.Codec.Name, line)
		if st.Has(FigPacketsReceived) && st.PacketsLost >= 0 {
			assert.InDelta(t, float64(st.PacketsLost)/float64(st.PacketsLost+int64(st.PacketsReceived)), st.LossRatio, 1e-12)
		}
	}
}

func TestRTPStatBad(t *testing.T) {
	for _, c := range []struct {
		name, in string
		reason   Reason
	}{
		{"empty", "", ReasonEmpty},
		{"unknown keys", "FOO=1;BAR=2", ReasonEmpty},
		{"only separators", ";;,,;", ReasonEmpty},
		{"PS a word", "PS=abc", ReasonMalformed},
		{"PS negative", "PS=-1", ReasonOutOfRange},
		{"jitter in hours", "JI=7200000", ReasonOutOfRange},
		{"MOS 9", "MOS=9", ReasonOutOfRange},
		{"MOS 0.5", "MOS=0.5", ReasonOutOfRange},
		{"too many fields", strings.Repeat("PS=1;", MaxRTPStatFields+1), ReasonTooLarge},
		{"too large", "PS=" + strings.Repeat("1", MaxHeaderSize), ReasonTooLarge},
	} {
		_, err := ParseRTPStat(HeaderXRTPStat, c.in, Codec{})
		require.Error(t, err, c.name)
		assert.Equal(t, c.reason, ReasonOf(err), "%s: %v", c.name, err)
	}
	// "-" values and MOS 0 are "not reported"; a negative loss is kept but
	// gives no ratio
	r, err := ParseRTPStat(HeaderXRTPStat, "PR=100;PL=-3;JI=-;MOS=0", Codec{})
	require.NoError(t, err)
	st := r.Streams[0]
	assert.Equal(t, int64(-3), st.PacketsLost)
	assert.False(t, st.Has(FigLossRatio))
	assert.False(t, st.Has(FigJitter))
	assert.False(t, st.Has(FigMOS))
}

func TestFromSIP(t *testing.T) {
	// AudioCodes' manual example BYE
	bye := "BYE sip:302@10.33.4.125 SIP/2.0\r\nVia: SIP/2.0/UDP 10.33.4.126;branch=z9hG4bKac2127550866\r\nMax-Forwards: 70\r\n" +
		"From: <sip:401@10.33.4.126;user=phone>;tag=1c2113553324\r\nTo: <sip:302@company.com>;tag=1c991751121\r\n" +
		"Call-ID: 991750671245200001912@10.33.4.125\r\nCSeq: 1 BYE\r\nX-RTP-Stat: PS=207;OS=49680;;PR=314;OR=50240;PL=0;JI=600;LA=40;\r\n" +
		"User-Agent: Sip-Gateway-/v.6.2A.008.006\r\nReason: Q.850 ;cause=16 ;text=\"local\"\r\nContent-Length: 0\r\n\r\n"
	r, ok, err := FromSIP(bye, Codec{Name: "PCMA"})
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, SourceRTPStat, r.Source)
	assert.Equal(t, "991750671245200001912@10.33.4.125", r.CallID)
	assert.Equal(t, "PCMA", r.Streams[0].Codec.Name)
	assert.Equal(t, uint64(314), r.Streams[0].PacketsReceived)

	// Cisco's 200 to a BYE
	ok200 := "SIP/2.0 200 OK\r\nCall-ID: c1\r\nCSeq: 102 BYE\r\nP-RTP-Stat: PS=3775,OS=649300,PR=3775,OR=604000,PL=0,JI=0,LA=4,DU=98\r\n\r\n"
	r, ok, err = FromSIP(ok200, Codec{})
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, HeaderPRTPStat, r.Kind)
	assert.Equal(t, 0.004, r.Streams[0].RTT)

	// an RFC 6035 PUBLISH (compact Content-Type, parameters)
	body := string(fixture.Media("vq/gigaset-wiki.txt"))
	publish := "PUBLISH sip:vqr.voip.intern SIP/2.0\r\nCall-ID: publish-1\r\nCSeq: 3 PUBLISH\r\nEvent: vq-rtcpxr\r\n" +
		"c: Application/VQ-RTCPXR; charset=utf-8\r\n\r\n" + body
	r, ok, err = FromSIP(publish, Codec{})
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, SourceVQReport, r.Source)
	assert.Equal(t, "3c26a8de500f-12ct7zov3kjs", r.CallID, "the report's own Call-ID")
	assert.Len(t, r.Streams, 2)

	// a PUBLISH whose report has no CallID gets the message's
	bare := "PUBLISH sip:c SIP/2.0\nCall-ID: publish-2\nContent-Type: application/vq-rtcpxr\n\nVQIntervalReport\nLocalMetrics:\nPacketLoss: NLR=1\n"
	r, ok, err = FromSIP(bare, Codec{})
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "publish-2", r.CallID)

	// a broken report is found and refused
	_, ok, err = FromSIP(strings.Replace(bye, "PS=207", "PS=x", 1), Codec{})
	assert.True(t, ok)
	assert.Equal(t, ReasonMalformed, ReasonOf(err))

	// nothing to find
	_, ok, err = FromSIP(string(fixture.Invite()), Codec{})
	assert.False(t, ok)
	assert.NoError(t, err)
}

func TestSDPCodecs(t *testing.T) {
	invite := string(fixture.Invite())
	codecs, ok := SDPCodecs(invite[strings.Index(invite, "\r\n\r\n")+4:])
	require.True(t, ok)
	assert.Equal(t, []Codec{
		{Name: "PCMU", ClockRate: 8000, PayloadType: 0},
		{Name: "PCMA", ClockRate: 8000, PayloadType: 8},
		{Name: "telephone-event", ClockRate: 8000, PayloadType: 101},
	}, codecs)

	sdp := "v=0\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n" +
		"m=audio 4000 RTP/AVP 13 111 9 97 98\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:97 iLBC/8000\r\na=fmtp:97 mode=30\r\n" +
		"m=audio 4002 RTP/AVP 0\r\n"
	codecs, ok = SDPCodecs(sdp)
	require.True(t, ok)
	assert.Equal(t, []Codec{
		{Name: "CN", ClockRate: 8000, PayloadType: 13},
		{Name: "opus", ClockRate: 48000, PayloadType: 111},
		{Name: "G722", ClockRate: 8000, PayloadType: 9},
		{Name: "iLBC", ClockRate: 8000, PayloadType: 97},
		{Name: "", ClockRate: 0, PayloadType: 98}, // dynamic, no rtpmap
	}, codecs)
	c, ok := SDPAudioCodec(sdp)
	require.True(t, ok)
	assert.Equal(t, "opus", c.Name, "comfort noise is passed over")

	_, ok = SDPCodecs("v=0\r\nm=video 5000 RTP/AVP 96\r\n")
	assert.False(t, ok)
	_, ok = SDPAudioCodec("m=audio 4000 RTP/AVP 101\na=rtpmap:101 telephone-event/8000\n")
	assert.False(t, ok)

	many := "m=audio 4000 RTP/AVP" + strings.Repeat(" 96", 100) + " x 200\n"
	codecs, _ = SDPCodecs(many)
	assert.Len(t, codecs, MaxSDPPayloads)
}

func TestSDPAudioEndpoint(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 127.0.0.9\r\ns=-\r\n"
	tests := []struct {
		name, sdp string
		rtp       string
		rtcp      uint16
		ok        bool
	}{
		{"session c=", head + "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n", "127.0.0.1:40000", 40001, true},
		{"media c= wins", head + "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\nc=IN IP4 127.0.0.2\r\n", "127.0.0.2:40000", 40001, true},
		{"a=rtcp", head + "c=IN IP4 127.0.0.1\r\nm=audio 40000 RTP/AVP 0\r\na=rtcp:40100 IN IP4 127.0.0.1\r\n", "127.0.0.1:40000", 40100, true},
		{"IPv6, LF ends", "v=0\nc=IN IP6 ::1\nm=audio 5004 RTP/AVP 8\n", "[::1]:5004", 5005, true},
		{"video first", head + "c=IN IP4 127.0.0.1\r\nm=video 6000 RTP/AVP 96\r\nc=IN IP4 127.0.0.7\r\nm=audio 7000 RTP/AVP 0\r\n", "127.0.0.1:7000", 7001, true},
		{"the first audio section only", head + "c=IN IP4 127.0.0.1\r\nm=audio 7000 RTP/AVP 0\r\nm=audio 8000 RTP/AVP 0\r\nc=IN IP4 127.0.0.3\r\n", "127.0.0.1:7000", 7001, true},
		{"rejected stream", head + "c=IN IP4 127.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n", "", 0, false},
		{"no address", head + "m=audio 7000 RTP/AVP 0\r\n", "", 0, false},
		{"bad address", head + "c=IN IP4 host.example\r\nm=audio 7000 RTP/AVP 0\r\n", "", 0, false},
		{"no audio", head + "c=IN IP4 127.0.0.1\r\nm=video 7000 RTP/AVP 96\r\n", "", 0, false},
		{"bad port", head + "c=IN IP4 127.0.0.1\r\nm=audio 70000 RTP/AVP 0\r\n", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rtp, rtcp, ok := SDPAudioEndpoint(tt.sdp)
			require.Equal(t, tt.ok, ok)
			if ok {
				assert.Equal(t, netip.MustParseAddrPort(tt.rtp), rtp)
				assert.Equal(t, tt.rtcp, rtcp)
			}
		})
	}
}

func TestMOSFromHEP(t *testing.T) {
	for _, c := range []struct {
		v      uint16
		mos    float64
		ok     bool
		reason Reason
	}{
		{0, 0, false, ""},
		{4, 4, true, ""},
		{1, 1, true, ""},
		{436, 4.36, true, ""},
		{100, 1, true, ""},
		{500, 5, true, ""},
		{6, 0, false, ReasonOutOfRange},
		{50, 0, false, ReasonOutOfRange},
		{501, 0, false, ReasonOutOfRange},
		{65535, 0, false, ReasonOutOfRange},
	} {
		mos, ok, err := MOSFromHEP(c.v)
		assert.Equal(t, c.ok, ok, "%d", c.v)
		assert.InDelta(t, c.mos, mos, 1e-12, "%d", c.v)
		assert.Equal(t, c.reason, ReasonOf(err), "%d", c.v)
	}
}
