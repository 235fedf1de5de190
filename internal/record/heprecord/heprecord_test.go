package heprecord

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

func invite(t testing.TB) []byte {
	return fixture.Invite()
}

func sipPacket(t testing.TB) hep.Packet {
	return hep.Packet{
		Version: 3, Family: hep.FamilyIPv4, Protocol: hep.ProtoUDP,
		SrcIP: netip.MustParseAddr("192.168.1.100"), DstIP: netip.MustParseAddr("10.0.0.1"),
		SrcPort: 5060, DstPort: 5062, TimeSec: 1772806981, TimeUsec: 42000,
		ProtoType: hep.TypeSIP, CaptureID: 2001, Payload: invite(t),
		CorrelationID: []byte("a84b4c76e66710@pc33.atlanta.example.com"),
		Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort |
			hep.HasDstPort | hep.HasTimeSec | hep.HasTimeUsec | hep.HasProtoType | hep.HasCaptureID,
	}
}

func TestFromHEPSIPMessage(t *testing.T) {
	p := sipPacket(t)
	lr := plog.NewLogRecord()
	recv := time.Unix(1772806990, 0)
	FromHEP(&p, p.Payload, false, recv, lr)

	assert.Equal(t, record.EventSIPMessage, lr.EventName())
	assert.Equal(t, time.Unix(1772806981, 42000000).UTC(), lr.Timestamp().AsTime())
	assert.Equal(t, recv.UTC(), lr.ObservedTimestamp().AsTime())
	assert.Equal(t, string(invite(t)), lr.Body().Str())
	assert.Equal(t, map[string]any{
		record.AttrNetworkTransport: "udp", record.AttrNetworkType: "ipv4",
		record.AttrSourceAddress: "192.168.1.100", record.AttrSourcePort: int64(5060),
		record.AttrDestinationAddress: "10.0.0.1", record.AttrDestinationPort: int64(5062),
		record.AttrHEPVersion: int64(3), record.AttrHEPProtocolType: int64(1), record.AttrHEPCaptureID: int64(2001),
		record.AttrHEPCorrelationID: "a84b4c76e66710@pc33.atlanta.example.com",
		record.AttrSIPRequestMethod: "INVITE", record.AttrSIPRequestURI: "sip:bob@biloxi.example.com",
		record.AttrSIPCallID: "a84b4c76e66710@pc33.atlanta.example.com", record.AttrSIPCSeqMethod: "INVITE",
		record.AttrSIPCSeqNumber: int64(314159), record.AttrSIPFromTag: "1928301774",
		record.AttrSIPViaBranch: "z9hG4bK776asdhds", record.AttrUserAgentOriginal: "Ozona/5.0",
	}, lr.Attributes().AsRaw())
}

// roundTrip is HEP -> record -> HEP keeping compression: lossless.
func roundTrip(t *testing.T, p hep.Packet, payload []byte, compressed bool) hep.Packet {
	t.Helper()
	return roundTripKeep(t, p, payload, compressed, true)
}

func roundTripKeep(t *testing.T, p hep.Packet, payload []byte, compressed, keepCompressed bool) hep.Packet {
	t.Helper()
	lr := plog.NewLogRecord()
	FromHEP(&p, payload, compressed, time.Now(), lr)
	// through the wire format, as between collectors
	logs := plog.NewLogs()
	lr.CopyTo(logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty())
	raw, err := (&plog.ProtoMarshaler{}).MarshalLogs(logs)
	require.NoError(t, err)
	back, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(raw)
	require.NoError(t, err)
	var out hep.Packet
	var scratch bytes.Buffer
	require.NoError(t, ToHEP(back.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0), &out, &scratch, keepCompressed))
	// and through the encoder, so nothing points into freed memory
	wire, err := out.AppendV3(nil)
	require.NoError(t, err)
	var dec hep.Packet
	require.NoError(t, dec.Decode(wire))
	return dec
}

func TestHEPRoundTripSIP(t *testing.T) {
	p := sipPacket(t)
	assert.Equal(t, p, roundTrip(t, p, p.Payload, false))
}

func TestHEPRoundTripEveryField(t *testing.T) {
	p := hep.Packet{
		Version: 3, Family: hep.FamilyIPv6, Protocol: 99,
		SrcIP: netip.MustParseAddr("2001:db8::1"), DstIP: netip.MustParseAddr("2001:db8::2"),
		SrcPort: 5061, DstPort: 40000, TimeSec: 1772806981, TimeUsec: 999999,
		ProtoType: hep.TypeRTCP, CaptureID: 0xdeadbeef, KeepAlive: 30, VLAN: 100,
		EtherType: 0x86dd, TCPFlags: 0x18, IPTOS: 0xb8, MOS: 436, RFactor: 93, Jitter: 12, TagType: 7,
		Payload: []byte{0xff, 0xfe, 0x00, 0x01}, CorrelationID: []byte("call-1@h"), NodeName: []byte("sbc-1"),
		SrcMAC: []byte{0, 1, 2, 3, 4, 5}, DstMAC: []byte{6, 7, 8},
		GeoLocation: []byte("52.5,13.4"), TransactionType: []byte("call"),
		PayloadJSONKeys: []byte("k"), TagsValues: []byte{0xc3, 0x28},
		Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort | hep.HasDstPort |
			hep.HasTimeSec | hep.HasTimeUsec | hep.HasProtoType | hep.HasCaptureID | hep.HasKeepAlive | hep.HasVLAN |
			hep.HasEtherType | hep.HasTCPFlags | hep.HasIPTOS | hep.HasMOS | hep.HasRFactor | hep.HasJitter | hep.HasTagType,
		Extra: []hep.Chunk{{Vendor: hep.VendorKamailio, Type: 1, Data: []byte("vendor")}, {Type: 0xf0, Data: []byte{}}},
	}
	got := roundTrip(t, p, p.Payload, false)
	assert.Equal(t, p, got)
}

func TestHEPRoundTripPayloadAndCompressed(t *testing.T) {
	// a packet with both payload chunks keeps the compressed one verbatim
	p := sipPacket(t)
	p.Compressed = []byte("opaque, not even gzip")
	lr := plog.NewLogRecord()
	FromHEP(&p, p.Payload, false, time.Now(), lr)
	assert.Equal(t, string(p.Payload), lr.Body().Str())
	assert.Equal(t, p, roundTrip(t, p, p.Payload, false))
	// the plain payload was never compressed by us: nothing to undo
	assert.Equal(t, p, roundTripKeep(t, p, p.Payload, false, false))
}

func TestHEPRoundTripFamilyMismatch(t *testing.T) {
	// an IPv4 address sent with family 10 is passed on as sent
	p := sipPacket(t)
	p.Family = hep.FamilyIPv6
	assert.Equal(t, p, roundTrip(t, p, p.Payload, false))
}

func TestHEPAuthKeyIsNotForwarded(t *testing.T) {
	p := sipPacket(t)
	p.AuthKey = []byte("secret")
	got := roundTrip(t, p, p.Payload, false)
	assert.Nil(t, got.AuthKey)
	p.AuthKey = nil
	assert.Equal(t, p, got)
}

func TestHEPCompressedPayload(t *testing.T) {
	p := sipPacket(t)
	var z bytes.Buffer
	require.NoError(t, hep.Deflate(&z, p.Payload))
	payload := p.Payload
	p.Payload, p.Compressed = nil, z.Bytes()
	lr := plog.NewLogRecord()
	FromHEP(&p, payload, true, time.Now(), lr)
	assert.Equal(t, string(payload), lr.Body().Str())
	v, _ := lr.Attributes().Get(record.AttrSIPRequestMethod)
	assert.Equal(t, "INVITE", v.Str())

	// kept compressed: chunk 0x10 again, with the same content
	got := roundTrip(t, p, payload, true)
	require.NotNil(t, got.Compressed)
	assert.Nil(t, got.Payload)
	inflated, err := hep.Inflate(got.Compressed, 1<<16)
	require.NoError(t, err)
	assert.Equal(t, payload, inflated)
	got.Compressed = nil

	// otherwise plain in chunk 0x0f, the rest of the packet the same
	plain := roundTripKeep(t, p, payload, true, false)
	assert.Nil(t, plain.Compressed)
	assert.Equal(t, payload, plain.Payload)
	plain.Payload = nil
	assert.Equal(t, got, plain)
}

func TestHEPv1WithoutTime(t *testing.T) {
	p := sipPacket(t)
	p.Version = 1
	p.Fields &^= hep.HasTimeSec | hep.HasTimeUsec | hep.HasCaptureID
	lr := plog.NewLogRecord()
	recv := time.Unix(1772806990, 5000)
	FromHEP(&p, p.Payload, false, recv, lr)
	assert.Equal(t, recv.UTC(), lr.Timestamp().AsTime())
	v, ok := lr.Attributes().Get(record.AttrHEPNoTimestamp)
	assert.True(t, ok && v.Bool())
	got := roundTrip(t, p, p.Payload, false)
	assert.False(t, got.Has(hep.HasTimeSec))
}

func TestToHEPForCDR(t *testing.T) {
	lr := plog.NewLogRecord()
	lr.SetEventName(record.EventCDR)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Unix(1772806981, 42000000)))
	lr.Body().SetStr(`{"call_id":"c1"}`)
	lr.Attributes().PutStr(record.AttrSIPCallID, "c1")
	var p hep.Packet
	var scratch bytes.Buffer
	require.NoError(t, ToHEP(lr, &p, &scratch, false))
	assert.Equal(t, hep.TypeLog, p.ProtoType)
	assert.Equal(t, "c1", string(p.CorrelationID))
	assert.Equal(t, `{"call_id":"c1"}`, string(p.Payload))
	assert.Equal(t, uint32(1772806981), p.TimeSec)
	assert.Equal(t, uint32(42000), p.TimeUsec)
}

func TestToHEPBadAttributes(t *testing.T) {
	for key, val := range map[string]string{
		record.AttrSourceAddress: "not-an-ip", record.AttrHEPSrcMAC: "zz:zz", record.AttrHEPExtraChunks: "\x00\x00\x00\x01\x00\x09",
	} {
		lr := plog.NewLogRecord()
		lr.Attributes().PutStr(key, val)
		var p hep.Packet
		var scratch bytes.Buffer
		err := ToHEP(lr, &p, &scratch, false)
		require.Error(t, err, key)
		assert.Contains(t, err.Error(), key)
	}
}

func TestEventNames(t *testing.T) {
	assert.Equal(t, "sip.message", EventName(1))
	assert.Equal(t, "hep.rtcp", EventName(5))
	assert.Equal(t, "hep.qos", EventName(34))
	assert.Equal(t, "hep.dns", EventName(53))
	assert.Equal(t, "hep.log", EventName(100))
	assert.Equal(t, "hep.200", EventName(200))
}

func BenchmarkFromHEPInvite(b *testing.B) {
	p := sipPacket(b)
	logs := plog.NewLogs()
	records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 {
			records.RemoveIf(func(plog.LogRecord) bool { return true })
		}
		FromHEP(&p, p.Payload, false, now, records.AppendEmpty())
	}
}

// BenchmarkFromHEPInternedInvite is FromHEP as the hep receiver calls it,
// with a reader's Interner.
func BenchmarkFromHEPInternedInvite(b *testing.B) {
	p := sipPacket(b)
	logs := plog.NewLogs()
	records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	now := time.Now()
	in := NewInterner()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 {
			records.RemoveIf(func(plog.LogRecord) bool { return true })
		}
		FromHEPInterned(&p, p.Payload, false, now, records.AppendEmpty(), in)
	}
}

func BenchmarkToHEPInvite(b *testing.B) {
	p := sipPacket(b)
	lr := plog.NewLogRecord()
	FromHEP(&p, p.Payload, false, time.Now(), lr)
	var out hep.Packet
	var scratch bytes.Buffer
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		if err := ToHEP(lr, &out, &scratch, false); err != nil {
			b.Fatal(err)
		}
		buf, _ = out.AppendV3(buf[:0])
	}
}

func TestPutSIPSummary(t *testing.T) {
	tests := []struct {
		name, msg string
		want      map[string]any
	}{
		{"request", "BYE sip:bob@127.0.0.1 SIP/2.0\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\nFrom: <sip:a@127.0.0.1>;tag=f\r\n" +
			"To: <sip:b@127.0.0.1>;tag=t\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nUser-Agent: ua\r\n\r\n",
			map[string]any{record.AttrSIPRequestMethod: "BYE", record.AttrSIPRequestURI: "sip:bob@127.0.0.1",
				record.AttrSIPCallID: "c1", record.AttrSIPCSeqMethod: "BYE", record.AttrSIPCSeqNumber: int64(2),
				record.AttrSIPFromTag: "f", record.AttrSIPToTag: "t", record.AttrSIPViaBranch: "z9hG4bKx",
				record.AttrUserAgentOriginal: "ua"}},
		// a response carries the method it answers, from CSeq, and no URI
		{"response", "SIP/2.0 486 Busy Here\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nServer: srv\r\n\r\n",
			map[string]any{record.AttrSIPResponseStatusCode: int64(486), record.AttrSIPRequestMethod: "INVITE",
				record.AttrSIPCallID: "c1", record.AttrSIPCSeqMethod: "INVITE", record.AttrSIPCSeqNumber: int64(1),
				record.AttrUserAgentOriginal: "srv"}},
		{"response without CSeq", "SIP/2.0 200 OK\r\nCall-ID: c1\r\n\r\n",
			map[string]any{record.AttrSIPResponseStatusCode: int64(200), record.AttrSIPCallID: "c1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sipmsg.Parse(tt.msg)
			require.NoError(t, err)
			attrs := pcommon.NewMap()
			PutSIPSummary(attrs, &s)
			assert.Equal(t, tt.want, attrs.AsRaw())
			assert.Equal(t, !s.IsRequest(), record.IsResponse(attrs))
		})
	}
}

// TestAttributeArraySize holds attrCount against what fromHEP then puts,
// and sip_correlation after it: exactly that many for every record but a
// media one, for which it is a bound (putMedia writes what the report has).
func TestAttributeArraySize(t *testing.T) {
	everyField := func() hep.Packet {
		p := sipPacket(t)
		p.Family, p.Protocol = hep.FamilyIPv6, 99
		p.SrcIP, p.DstIP = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
		p.KeepAlive, p.VLAN, p.EtherType, p.TCPFlags, p.IPTOS, p.RFactor, p.Jitter, p.TagType = 30, 100, 0x86dd, 0x18, 0xb8, 93, 12, 7
		p.NodeName, p.SrcMAC, p.DstMAC = []byte("sbc-1"), []byte{0, 1, 2, 3, 4, 5}, []byte{6, 7, 8}
		p.GeoLocation, p.TransactionType, p.PayloadJSONKeys, p.TagsValues = []byte("52.5,13.4"), []byte("call"), []byte("k"), []byte{0xc3, 0x28}
		p.Fields |= hep.HasKeepAlive | hep.HasVLAN | hep.HasEtherType | hep.HasTCPFlags | hep.HasIPTOS | hep.HasRFactor | hep.HasJitter | hep.HasTagType
		p.Extra = []hep.Chunk{{Vendor: hep.VendorKamailio, Type: 1, Data: []byte("vendor")}}
		return p
	}
	with := func(p hep.Packet, change func(*hep.Packet)) hep.Packet {
		change(&p)
		return p
	}
	ringing := []byte("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n" +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
	var deflated bytes.Buffer
	require.NoError(t, hep.Deflate(&deflated, invite(t)))
	type packetCase struct {
		name       string
		p          hep.Packet
		payload    []byte // p.Payload when nil
		compressed bool
		media      bool
	}
	cases := []packetCase{
		{name: "SIP request", p: sipPacket(t)},
		{name: "SIP response", p: with(sipPacket(t), func(p *hep.Packet) { p.Payload = ringing })},
		{name: "every chunk, SIP", p: everyField()},
		{name: "HEPv1 without time", p: with(sipPacket(t), func(p *hep.Packet) { p.Version = 1; p.Fields &^= hep.HasTimeSec | hep.HasTimeUsec })},
		{name: "family disagrees", p: with(sipPacket(t), func(p *hep.Packet) { p.Family = hep.FamilyIPv6 })},
		{name: "no addresses", p: with(sipPacket(t), func(p *hep.Packet) { p.Fields &^= hep.HasSrcIP | hep.HasDstIP | hep.HasFamily })},
		{name: "inflated", p: with(sipPacket(t), func(p *hep.Packet) { p.Payload, p.Compressed = nil, deflated.Bytes() }), payload: invite(t), compressed: true},
		{name: "plain and compressed", p: with(sipPacket(t), func(p *hep.Packet) { p.Compressed = []byte("opaque") })},
		{name: "not SIP", p: with(sipPacket(t), func(p *hep.Packet) { p.ProtoType = 100; p.Payload = []byte(`{"log":"x"}`) })},
		{name: "unreadable SIP", p: with(sipPacket(t), func(p *hep.Packet) { p.Payload = []byte("hello") })},
		{name: "binary payload", p: with(sipPacket(t), func(p *hep.Packet) { p.Payload = []byte{0xff, 0xfe} })},
		{name: "SIP with MOS", p: with(sipPacket(t), func(p *hep.Packet) { p.MOS = 436; p.Fields |= hep.HasMOS }), media: true},
		{name: "every chunk, RTCP", p: with(everyField(), func(p *hep.Packet) {
			p.ProtoType, p.MOS, p.Payload = hep.TypeRTCP, 436, []byte{0xff, 0xfe, 0x00, 0x01}
			p.Fields |= hep.HasMOS
		}), media: true},
	}
	for i, p := range rtpengineRTCP(t) {
		cases = append(cases, packetCase{name: fmt.Sprintf("rtpengine RTCP %d", i), p: p, media: true})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			payload := c.payload
			if payload == nil {
				payload = c.p.Payload
			}
			lr := plog.NewLogRecord()
			planned, _ := fromHEP(&c.p, payload, c.compressed, time.Now(), lr, nil)
			attrs := lr.Attributes()
			_, request := attrs.Get(record.AttrSIPRequestMethod)
			_, response := attrs.Get(record.AttrSIPResponseStatusCode)
			if request || response { // as sip_correlation does
				attrs.PutStr(record.AttrSIPCorrelationID, "c1")
			}
			got := attrs.Len()
			if c.media {
				assert.GreaterOrEqual(t, planned, got)
				assert.LessOrEqual(t, planned-got, maxMediaAttrs)
			} else {
				assert.Equal(t, planned, got, "%v", lr.Attributes().AsRaw())
			}
		})
	}
}
