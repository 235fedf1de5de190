package heprecord

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

// rtpengineRTCP returns the HEP packets rtpengine sent for one call: A's
// SR without report blocks, B's RR about A, B's SR about A, twice.
func rtpengineRTCP(t testing.TB) []hep.Packet {
	var pkts []hep.Packet
	for _, b := range fixture.MediaHex("rtpengine-rtcp-hep.hex") {
		var p hep.Packet
		require.NoError(t, p.Decode(b))
		pkts = append(pkts, p)
	}
	require.Len(t, pkts, 6)
	return pkts
}

// mediaAttrs returns the media.* attributes of a record.
func mediaAttrs(lr plog.LogRecord) map[string]any {
	out := map[string]any{}
	for k, v := range lr.Attributes().All() {
		if len(k) > 6 && k[:6] == "media." {
			out[k] = v.AsRaw()
		}
	}
	return out
}

func TestFromHEPRTCPMedia(t *testing.T) {
	pkts := rtpengineRTCP(t)
	for i, p := range pkts {
		lr := plog.NewLogRecord()
		require.NoError(t, FromHEP(&p, p.Payload, false, time.Now(), lr), "packet %d", i)
		assert.Equal(t, "hep.rtcp", lr.EventName())
		assert.Equal(t, string(p.Payload), lr.Body().Str())
		got := mediaAttrs(lr)
		if i%3 == 0 { // an SR without report blocks has no figures
			assert.Empty(t, got, "packet %d", i)
			continue
		}
		// the round trip from LSR/DLSR and the capture time (mediaq's
		// tests check it against the captures)
		want, err := mediaq.ParseRTCPJSON(p.Payload, mediaq.Options{Arrival: p.Time()})
		require.NoError(t, err)
		st := want.Streams[0]
		require.True(t, st.Has(mediaq.FigRTT))
		assert.Equal(t, map[string]any{
			record.AttrMediaSource: "rtcp", record.AttrMediaStreams: int64(1),
			record.AttrMediaSSRC: int64(0x1a2b3c4d), record.AttrMediaReporterSSRC: int64(0x5e6f7081),
			record.AttrMediaPacketLossRatio: 13.0 / 256, record.AttrMediaPacketsLost: int64(3 + 4*(i/3)),
			record.AttrMediaJitter: 37.0 / 8000, record.AttrMediaRTT: st.RTT,
			record.AttrMediaRFactor: st.RFactor, record.AttrMediaMOS: st.MOS,
			record.AttrMediaEstimated: true, record.AttrMediaQualityClass: "fair",
		}, got, "packet %d", i)
		// the figures are derived: the packet comes back as it came
		assert.Equal(t, p, roundTrip(t, p, p.Payload, false))
	}
}

func TestFromHEPMOSChunk(t *testing.T) {
	rr := rtpengineRTCP(t)[1]
	for _, c := range []struct {
		name   string
		p      hep.Packet
		mos    uint16
		want   map[string]any
		reason mediaq.Reason
	}{
		{"SIP with MOS x 100", sipPacket(t), 436, map[string]any{
			record.AttrMediaSource: "hep_mos", record.AttrMediaMOS: 4.36, record.AttrMediaQualityClass: "good",
		}, ""},
		{"SIP with MOS 3", sipPacket(t), 3, map[string]any{
			record.AttrMediaSource: "hep_mos", record.AttrMediaMOS: 3.0, record.AttrMediaQualityClass: "bad",
		}, ""},
		{"SIP with MOS 9000", sipPacket(t), 9000, map[string]any{}, mediaq.ReasonOutOfRange},
		{"SIP with MOS 0", sipPacket(t), 0, map[string]any{}, ""},
		// the sender's MOS beats the E-model's; the given figures stay
		{"RTCP with MOS", rr, 410, map[string]any{
			record.AttrMediaSource: "rtcp", record.AttrMediaStreams: int64(1),
			record.AttrMediaSSRC: int64(0x1a2b3c4d), record.AttrMediaReporterSSRC: int64(0x5e6f7081),
			record.AttrMediaPacketLossRatio: 13.0 / 256, record.AttrMediaPacketsLost: int64(3),
			record.AttrMediaJitter: 37.0 / 8000, record.AttrMediaRTT: nil,
			record.AttrMediaMOS: 4.1, record.AttrMediaQualityClass: "good",
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := c.p
			p.MOS = c.mos
			p.Fields |= hep.HasMOS
			lr := plog.NewLogRecord()
			err := FromHEP(&p, p.Payload, false, time.Now(), lr)
			assert.Equal(t, c.reason, mediaq.ReasonOf(err), "%v", err)
			got := mediaAttrs(lr)
			if _, ok := c.want[record.AttrMediaRTT]; ok {
				c.want[record.AttrMediaRTT] = got[record.AttrMediaRTT]
				assert.NotNil(t, got[record.AttrMediaRTT])
			}
			assert.Equal(t, c.want, got)
			v, ok := lr.Attributes().Get(record.AttrHEPMOS)
			require.True(t, ok, "hep.mos stays")
			assert.Equal(t, int64(c.mos), v.Int())
		})
	}
}

// A payload the parser refuses leaves the record whole, without figures,
// and says why.
func TestFromHEPRTCPUnreadable(t *testing.T) {
	for _, c := range []struct {
		payload string
		reason  mediaq.Reason
	}{
		{`{"report_blocks":[{"fraction_lost":300}]}`, mediaq.ReasonOutOfRange},
		{`{"report_blocks":[`, mediaq.ReasonMalformed},
		{"\x80\xc8\x00\x06", mediaq.ReasonMalformed}, // raw RTCP, not JSON
		{`{"sdes":1}`, mediaq.ReasonEmpty},
	} {
		p := rtpengineRTCP(t)[1]
		p.Payload = []byte(c.payload)
		lr := plog.NewLogRecord()
		err := FromHEP(&p, p.Payload, false, time.Now(), lr)
		assert.Equal(t, c.reason, mediaq.ReasonOf(err), "%q: %v", c.payload, err)
		assert.Empty(t, mediaAttrs(lr), c.payload)
		assert.Equal(t, "hep.rtcp", lr.EventName())
		v, ok := lr.Attributes().Get(record.AttrHEPCorrelationID)
		require.True(t, ok)
		assert.Equal(t, "media-sample-1@127.0.0.1", v.Str())
		assert.Equal(t, p, roundTrip(t, p, p.Payload, false))
	}
}

// BenchmarkFromHEPInternedRTCP is FromHEP of rtpengine's SR with one
// report block as the hep receiver calls it: the record with its media.*
// figures (JSON parse, round trip, E-model).
func BenchmarkFromHEPInternedRTCP(b *testing.B) {
	p := rtpengineRTCP(b)[2]
	logs := plog.NewLogs()
	records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	now := time.Now()
	in := NewInterner()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 {
			records.RemoveIf(func(plog.LogRecord) bool { return true })
		}
		if err := FromHEPInterned(&p, p.Payload, false, now, records.AppendEmpty(), in); err != nil {
			b.Fatal(err)
		}
	}
}
