package hep

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

func specExample(t testing.TB) []byte {
	t.Helper()
	return fixture.HEPSpecExample()
}

func TestSpecExampleDecode(t *testing.T) {
	raw := specExample(t)
	require.Len(t, raw, 113)
	var p Packet
	require.NoError(t, p.Decode(raw))
	assert.Equal(t, uint8(3), p.Version)
	assert.Equal(t, FamilyIPv4, p.Family)
	assert.Equal(t, ProtoUDP, p.Protocol)
	assert.Equal(t, netip.MustParseAddr("212.202.0.1"), p.SrcIP)
	assert.Equal(t, netip.MustParseAddr("82.116.0.211"), p.DstIP)
	assert.Equal(t, uint16(12010), p.SrcPort)
	assert.Equal(t, uint16(5060), p.DstPort)
	assert.Equal(t, uint32(1313440459), p.TimeSec)
	assert.Equal(t, uint32(120000), p.TimeUsec)
	assert.Equal(t, time.Unix(1313440459, 120000000), p.Time())
	assert.Equal(t, TypeSIP, p.ProtoType)
	assert.Equal(t, uint32(228), p.CaptureID)
	assert.Equal(t, "INVITE sip:bob", string(p.Payload))
	assert.Empty(t, p.Extra)
	assert.Nil(t, p.AuthKey)
	assert.Nil(t, p.CorrelationID)
	want := HasFamily | HasProtocol | HasSrcIP | HasDstIP | HasSrcPort | HasDstPort |
		HasTimeSec | HasTimeUsec | HasProtoType | HasCaptureID
	assert.Equal(t, want, p.Fields)
}

func TestSpecExampleEncode(t *testing.T) {
	raw := specExample(t)
	p := Packet{
		Family: FamilyIPv4, Protocol: ProtoUDP,
		SrcIP: netip.MustParseAddr("212.202.0.1"), DstIP: netip.MustParseAddr("82.116.0.211"),
		SrcPort: 12010, DstPort: 5060, TimeSec: 1313440459, TimeUsec: 120000,
		ProtoType: TypeSIP, CaptureID: 228, Payload: []byte("INVITE sip:bob"),
		Fields: HasFamily | HasProtocol | HasSrcIP | HasDstIP | HasSrcPort | HasDstPort |
			HasTimeSec | HasTimeUsec | HasProtoType | HasCaptureID,
	}
	out, err := p.AppendV3(nil)
	require.NoError(t, err)
	assert.Equal(t, hex.EncodeToString(raw), hex.EncodeToString(out))

	// and a decoded packet re-encodes to the same bytes
	var d Packet
	require.NoError(t, d.Decode(raw))
	out2, err := d.AppendV3(nil)
	require.NoError(t, err)
	assert.Equal(t, raw, out2)
}

// fullPacket sets every field the codec knows, IPv6 addresses and extras.
func fullPacket() Packet {
	return Packet{
		Version: 3, Family: FamilyIPv6, Protocol: ProtoTCP,
		SrcIP: netip.MustParseAddr("2001:db8::1"), DstIP: netip.MustParseAddr("2001:db8::2"),
		SrcPort: 5061, DstPort: 40000, TimeSec: 1772806981, TimeUsec: 42000,
		ProtoType: TypeSIP, CaptureID: 0xdeadbeef, KeepAlive: 30, VLAN: 100,
		EtherType: 0x86dd, TCPFlags: 0x18, IPTOS: 0xb8, MOS: 436, RFactor: 93, Jitter: 12,
		TagType: 7,
		AuthKey: []byte("secret"), Payload: []byte("OPTIONS sip:x SIP/2.0\r\n\r\n"),
		Compressed: []byte{1, 2, 3}, CorrelationID: []byte("call-1@h"), NodeName: []byte("sbc-1"),
		SrcMAC: []byte{0, 1, 2, 3, 4, 5}, DstMAC: []byte{6, 7, 8, 9, 10, 11},
		GeoLocation: []byte("52.5,13.4"), TransactionType: []byte("call"),
		PayloadJSONKeys: []byte("k"), TagsValues: []byte("v"),
		Fields: HasFamily | HasProtocol | HasSrcIP | HasDstIP | HasSrcPort | HasDstPort |
			HasTimeSec | HasTimeUsec | HasProtoType | HasCaptureID | HasKeepAlive | HasVLAN |
			HasEtherType | HasTCPFlags | HasIPTOS | HasMOS | HasRFactor | HasJitter | HasTagType,
		Extra: []Chunk{
			{Vendor: VendorKamailio, Type: 0x0001, Data: []byte("vendor data")},
			{Vendor: VendorGeneric, Type: 0x00f0, Data: []byte{}},
		},
	}
}

func TestRoundTripEveryChunk(t *testing.T) {
	p := fullPacket()
	raw, err := p.AppendV3(nil)
	require.NoError(t, err)
	size, err := p.Size()
	require.NoError(t, err)
	assert.Len(t, raw, size)
	var d Packet
	require.NoError(t, d.Decode(raw))
	assert.Equal(t, p, d)
}

func TestRepeatedChunkIsKept(t *testing.T) {
	p := Packet{Payload: []byte("first")}
	p.Extra = []Chunk{{Type: ChunkPayload, Data: []byte("second")}}
	raw, err := p.AppendV3(nil)
	require.NoError(t, err)
	var d Packet
	require.NoError(t, d.Decode(raw))
	assert.Equal(t, "first", string(d.Payload))
	require.Len(t, d.Extra, 1)
	assert.Equal(t, "second", string(d.Extra[0].Data))
}

func TestEncodeOversized(t *testing.T) {
	p := Packet{Payload: make([]byte, MaxPacketLen)}
	_, err := p.AppendV3(nil)
	assert.ErrorIs(t, err, ErrOversized)
}

// v12 builds a HEP v1/v2 packet the way Kamailio's siptrace does.
func v12(version uint8, src, dst netip.Addr, sport, dport uint16, sec, usec uint32, capt uint16, payload string) []byte {
	alen := 4
	family := FamilyIPv4
	if src.Is6() {
		alen, family = 16, FamilyIPv6
	}
	b := []byte{version, byte(8 + 2*alen), family, ProtoUDP, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[4:], sport)
	binary.BigEndian.PutUint16(b[6:], dport)
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	if version == 2 {
		b = binary.LittleEndian.AppendUint32(b, sec)
		b = binary.LittleEndian.AppendUint32(b, usec)
		b = binary.LittleEndian.AppendUint16(b, capt)
		b = append(b, 0, 0)
	}
	return append(b, payload...)
}

func TestDecodeV1V2(t *testing.T) {
	v4s, v4d := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	v6s, v6d := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	tests := []struct {
		name     string
		raw      []byte
		version  uint8
		src, dst netip.Addr
		hasTime  bool
	}{
		{"v1 ipv4", v12(1, v4s, v4d, 5060, 5080, 0, 0, 0, "BYE sip:x SIP/2.0"), 1, v4s, v4d, false},
		{"v1 ipv6", v12(1, v6s, v6d, 5060, 5080, 0, 0, 0, "BYE sip:x SIP/2.0"), 1, v6s, v6d, false},
		{"v2 ipv4", v12(2, v4s, v4d, 5060, 5080, 1700000000, 999999, 2001, "BYE sip:x SIP/2.0"), 2, v4s, v4d, true},
		{"v2 ipv6", v12(2, v6s, v6d, 5060, 5080, 1700000000, 999999, 2001, "BYE sip:x SIP/2.0"), 2, v6s, v6d, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			require.NoError(t, p.Decode(tt.raw))
			assert.Equal(t, tt.version, p.Version)
			assert.Equal(t, tt.src, p.SrcIP)
			assert.Equal(t, tt.dst, p.DstIP)
			assert.Equal(t, uint16(5060), p.SrcPort)
			assert.Equal(t, uint16(5080), p.DstPort)
			assert.Equal(t, ProtoUDP, p.Protocol)
			assert.Equal(t, TypeSIP, p.ProtoType)
			assert.Equal(t, "BYE sip:x SIP/2.0", string(p.Payload))
			assert.Equal(t, tt.hasTime, p.Has(HasTimeSec))
			if tt.hasTime {
				assert.Equal(t, uint32(1700000000), p.TimeSec)
				assert.Equal(t, uint32(999999), p.TimeUsec)
				assert.Equal(t, uint32(2001), p.CaptureID)
			}
			// a v1/v2 packet re-encodes as v3 with the same fields
			raw3, err := p.AppendV3(nil)
			require.NoError(t, err)
			var q Packet
			require.NoError(t, q.Decode(raw3))
			p.Version = 3
			assert.Equal(t, p, q)
		})
	}
}

func chunk(vendor, typ uint16, data []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, vendor)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(6+len(data)))
	return append(b, data...)
}

func v3(chunks ...[]byte) []byte {
	body := bytes.Join(chunks, nil)
	b := append([]byte(Magic), 0, 0)
	binary.BigEndian.PutUint16(b[4:], uint16(6+len(body)))
	return append(b, body...)
}

func TestDecodeMalformed(t *testing.T) {
	payload := chunk(0, ChunkPayload, []byte("x"))
	withLen := func(b []byte, n uint16) []byte {
		binary.BigEndian.PutUint16(b[4:], n)
		return b
	}
	tests := []struct {
		name   string
		raw    []byte
		kind   error
		reason string
	}{
		{"empty", nil, ErrShort, "short"},
		{"three bytes", []byte("HEP"), ErrShort, "short"},
		{"magic only", []byte("HEP3"), ErrShort, "short"},
		{"bad magic", []byte("HEP4\x00\x06"), ErrBadMagic, "bad_magic"},
		{"text", []byte("INVITE sip:bob SIP/2.0"), ErrBadMagic, "bad_magic"},
		{"length too big", withLen(v3(payload), 100), ErrLengthMismatch, "length_mismatch"},
		{"length too small", withLen(v3(payload), 6), ErrLengthMismatch, "length_mismatch"},
		{"trailing bytes", append(v3(payload), 0), ErrLengthMismatch, "length_mismatch"},
		{"partial chunk header", v3([]byte{0, 0, 0}), ErrChunkOverrun, "chunk_overrun"},
		{"chunk overruns", v3(withChunkLen(payload, 50)), ErrChunkOverrun, "chunk_overrun"},
		{"zero length chunk", v3(withChunkLen(payload, 0)), ErrChunkZeroLen, "zero_length_chunk"},
		{"chunk length 5", v3(withChunkLen(payload, 5), []byte{0}), ErrChunkZeroLen, "zero_length_chunk"},
		{"ipv4 chunk of 3 bytes", v3(chunk(0, ChunkIPv4Src, []byte{1, 2, 3})), ErrChunkSize, "chunk_size"},
		{"port of 4 bytes", v3(chunk(0, ChunkSrcPort, []byte{1, 2, 3, 4})), ErrChunkSize, "chunk_size"},
		{"usec 1e6", v3(chunk(0, ChunkTimeUsec, binary.BigEndian.AppendUint32(nil, 1_000_000))), ErrMicroseconds, "bad_microseconds"},
		{"v1 bad family", []byte{1, 16, 7, 17, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, ErrBadHeader, "bad_header"},
		{"v1 bad header length", []byte{1, 40, 2, 17, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, ErrBadHeader, "bad_header"},
		{"v1 truncated addresses", []byte{1, 16, 2, 17, 0, 0, 0, 0, 1, 2, 3}, ErrShort, "short"},
		{"v2 truncated time", []byte{2, 16, 2, 17, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2}, ErrShort, "short"},
		{"v2 usec 1e6", v12(2, netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("2.2.2.2"), 1, 2, 1, 1_000_000, 1, "x"), ErrMicroseconds, "bad_microseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			err := p.Decode(tt.raw)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.kind)
			assert.Equal(t, tt.reason, Reason(err))
			var de *DecodeError
			assert.True(t, errors.As(err, &de))
			assert.Contains(t, err.Error(), "hep: ")
		})
	}
}

func withChunkLen(c []byte, n uint16) []byte {
	c = bytes.Clone(c)
	binary.BigEndian.PutUint16(c[4:], n)
	return c
}

func TestDecodeErrorNamesChunk(t *testing.T) {
	var p Packet
	err := p.Decode(v3(chunk(0, ChunkSrcPort, []byte{1})))
	require.Error(t, err)
	assert.Equal(t, "hep: chunk 0x0007 (vendor 0) at offset 6: chunk has the wrong size for its type", err.Error())
}

func TestVendorChunkKeptOpaque(t *testing.T) {
	// a vendor chunk with a generic type number and an odd size is opaque
	raw := v3(chunk(0, ChunkPayload, []byte("p")), chunk(VendorKamailio, ChunkSrcPort, []byte{1, 2, 3}))
	var p Packet
	require.NoError(t, p.Decode(raw))
	require.Len(t, p.Extra, 1)
	assert.Equal(t, Chunk{Vendor: VendorKamailio, Type: ChunkSrcPort, Data: []byte{1, 2, 3}}, p.Extra[0])
	assert.False(t, p.Has(HasSrcPort))
	out, err := p.AppendV3(nil)
	require.NoError(t, err)
	assert.Equal(t, raw, out)
}

func TestDecodeResetsPacket(t *testing.T) {
	var p Packet
	require.NoError(t, p.Decode(v3(chunk(0, ChunkVLAN, []byte{0, 9}), chunk(7, 1, nil))))
	require.NoError(t, p.Decode(v3(chunk(0, ChunkPayload, []byte("p")))))
	assert.False(t, p.Has(HasVLAN))
	assert.Empty(t, p.Extra)
	assert.Equal(t, "p", string(p.Payload))
}

func TestReasonOther(t *testing.T) {
	assert.Equal(t, "other", Reason(errors.New("x")))
}

func TestInflate(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, Deflate(&buf, []byte("INVITE sip:bob SIP/2.0\r\n\r\n")))
	out, err := Inflate(buf.Bytes(), 1000)
	require.NoError(t, err)
	assert.Equal(t, "INVITE sip:bob SIP/2.0\r\n\r\n", string(out))

	_, err = Inflate(buf.Bytes(), 5)
	assert.ErrorIs(t, err, ErrOversized)
	_, err = Inflate([]byte("not compressed"), 1000)
	assert.ErrorIs(t, err, ErrDecompress)

	// a bomb: 10 MB of zeros stays bounded by the limit
	buf.Reset()
	require.NoError(t, Deflate(&buf, make([]byte, 10<<20)))
	_, err = Inflate(buf.Bytes(), 64<<10)
	assert.ErrorIs(t, err, ErrOversized)
}

func TestChunksRoundTrip(t *testing.T) {
	in := []Chunk{{Vendor: 2, Type: 9, Data: []byte("abc")}, {Vendor: 0, Type: 0x99, Data: []byte{}}}
	raw := AppendChunks([]byte("prefix"), in)
	out, err := ParseChunks(nil, raw[len("prefix"):])
	require.NoError(t, err)
	assert.Equal(t, in, out)
	_, err = ParseChunks(nil, raw[len("prefix"):len(raw)-1])
	assert.ErrorIs(t, err, ErrChunkOverrun)
}
