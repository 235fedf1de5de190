package homerexporter

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/hepsink"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver"
)

// hepReceiver starts a hep receiver feeding next and returns a UDP socket
// connected to it; both stop when the test ends (before the exporter,
// which was built first).
func hepReceiver(t *testing.T, next consumer.Logs, mutate ...func(*hepreceiver.Config)) net.Conn {
	t.Helper()
	rf := hepreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*hepreceiver.Config)
	rcvAddr := ports.Addr(t)
	rcfg.UDP.GetOrInsertDefault().Endpoint = rcvAddr
	rcfg.Batch.Timeout = time.Millisecond
	for _, m := range mutate {
		m(rcfg)
	}
	rcv, err := rf.CreateLogs(context.Background(), receivertest.NewNopSettings(rf.Type()), rcfg, next)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	conn, err := net.Dial("udp", rcvAddr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestHEPRoundTripThroughCollector sends HEP packets of every shape to the
// hep receiver, which feeds this exporter, which sends to a capture node:
// each packet must come out with the same HEP fields it went in with (as
// HEP v3; the inbound auth key is the hop's secret and is not forwarded).
func TestHEPRoundTripThroughCollector(t *testing.T) {
	srv := hepsink.NewStream(t, "127.0.0.1:0", nil)
	h := newHomer(t, func(c *Config) {
		c.Endpoint, c.Transport = srv.Addr(), TransportTCP
		c.KeepCompressedPayload = true // lossless, chunk 0x10 included
	})

	conn := hepReceiver(t, h.exp)

	spec := fixture.HEPSpecExample()

	every := hep.Packet{
		Family: hep.FamilyIPv6, Protocol: hep.ProtoTCP,
		SrcIP: netip.MustParseAddr("2001:db8::1"), DstIP: netip.MustParseAddr("2001:db8::2"),
		SrcPort: 5061, DstPort: 40000, TimeSec: 1772806981, TimeUsec: 999999,
		ProtoType: hep.TypeSIP, CaptureID: 0xdeadbeef, KeepAlive: 30, VLAN: 100,
		EtherType: 0x86dd, TCPFlags: 0x18, IPTOS: 0xb8, MOS: 436, RFactor: 93, Jitter: 12, TagType: 7,
		AuthKey: []byte("inbound-secret"), Payload: []byte("BYE sip:b@h SIP/2.0\r\nCall-ID: every\r\n\r\n"),
		CorrelationID: []byte("every"), NodeName: []byte("sbc-9"),
		SrcMAC: []byte{0, 1, 2, 3, 4, 5}, DstMAC: []byte{6, 7, 8, 9, 10, 11},
		GeoLocation: []byte("52.5,13.4"), TransactionType: []byte("call"),
		PayloadJSONKeys: []byte("k"), TagsValues: []byte("v"),
		Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort | hep.HasDstPort |
			hep.HasTimeSec | hep.HasTimeUsec | hep.HasProtoType | hep.HasCaptureID | hep.HasKeepAlive | hep.HasVLAN |
			hep.HasEtherType | hep.HasTCPFlags | hep.HasIPTOS | hep.HasMOS | hep.HasRFactor | hep.HasJitter | hep.HasTagType,
		Extra: []hep.Chunk{{Vendor: hep.VendorKamailio, Type: 0x0001, Data: []byte("vendor")}, {Type: 0x00f0, Data: []byte{1}}},
	}
	everyRaw, err := every.AppendV3(nil)
	require.NoError(t, err)

	rtcp := hep.Packet{
		Family: hep.FamilyIPv4, Protocol: hep.ProtoUDP,
		SrcIP: netip.MustParseAddr("10.1.1.1"), DstIP: netip.MustParseAddr("10.1.1.2"), SrcPort: 30000, DstPort: 30001,
		TimeSec: 1772806982, TimeUsec: 1, ProtoType: hep.TypeRTCP, CaptureID: 7,
		Payload: []byte(`{"type":200,"ssrc":1}`), CorrelationID: []byte("rtcp-call"),
		Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort | hep.HasDstPort |
			hep.HasTimeSec | hep.HasTimeUsec | hep.HasProtoType | hep.HasCaptureID,
	}
	rtcpRaw, err := rtcp.AppendV3(nil)
	require.NoError(t, err)

	v2 := []byte{2, 16, 2, 17, 0x13, 0xc4, 0x13, 0xc5, 10, 0, 0, 1, 10, 0, 0, 2}
	v2 = binary.LittleEndian.AppendUint32(v2, 1772806983)
	v2 = binary.LittleEndian.AppendUint32(v2, 250000)
	v2 = binary.LittleEndian.AppendUint16(v2, 2002)
	v2 = append(v2, 0, 0)
	v2 = append(v2, "SIP/2.0 200 OK\r\nCall-ID: v2\r\n\r\n"...)

	inputs := [][]byte{spec, everyRaw, rtcpRaw, v2}
	var want []hep.Packet
	for _, raw := range inputs {
		var p hep.Packet
		require.NoError(t, p.Decode(bytes.Clone(raw)))
		p.Version, p.AuthKey = 3, nil
		want = append(want, p)
		_, err := conn.Write(raw)
		require.NoError(t, err)
	}

	// a compressed payload comes back compressed, with the same content
	zipped := rtcp
	var z bytes.Buffer
	require.NoError(t, hep.Deflate(&z, []byte("INFO sip:x SIP/2.0\r\nCall-ID: zipped\r\n\r\n")))
	zipped.Payload, zipped.Compressed, zipped.CorrelationID = nil, z.Bytes(), []byte("zipped")
	zippedRaw, err := zipped.AppendV3(nil)
	require.NoError(t, err)
	_, err = conn.Write(zippedRaw)
	require.NoError(t, err)

	got := srv.WaitFor(len(inputs)+1, waitFor)
	byCorr := map[string]hep.Packet{}
	for _, p := range got {
		key := string(p.CorrelationID)
		if key == "" {
			key = string(p.Payload)
		}
		byCorr[key] = p
	}
	for _, w := range want {
		key := string(w.CorrelationID)
		if key == "" {
			key = string(w.Payload)
		}
		assert.Equal(t, w, byCorr[key], "packet %q", key)
	}
	out := byCorr["zipped"]
	require.NotNil(t, out.Compressed)
	inflated, err := hep.Inflate(out.Compressed, 1<<16)
	require.NoError(t, err)
	assert.Equal(t, "INFO sip:x SIP/2.0\r\nCall-ID: zipped\r\n\r\n", string(inflated))
	out.Compressed, zipped.Compressed, zipped.Version = nil, nil, 3
	assert.Equal(t, zipped, out)
}

// TestCompressedPayloadGoesPlain: a HEP packet whose payload came gzip- or
// zlib-compressed in chunk 0x10 goes over a real socket into the hep
// receiver (which inflates it), this exporter and a capture node. By
// default the capture node gets the plain payload in chunk 0x0f and no
// 0x10, as heplify-server needs; with keep_compressed_payload, chunk 0x10
// that inflates to the original and no 0x0f. The other chunks are as sent.
func TestCompressedPayloadGoesPlain(t *testing.T) {
	const payload = "INVITE sip:bob@example.com SIP/2.0\r\nCall-ID: zipped@192.168.1.100\r\nCSeq: 1 INVITE\r\n\r\n"
	compress := map[string]func(*bytes.Buffer){
		"gzip": func(b *bytes.Buffer) { require.NoError(t, hep.Deflate(b, []byte(payload))) },
		"zlib": func(b *bytes.Buffer) {
			w := zlib.NewWriter(b)
			_, err := w.Write([]byte(payload))
			require.NoError(t, err)
			require.NoError(t, w.Close())
		},
	}
	for _, tc := range []struct {
		format string
		keep   bool
	}{{"gzip", false}, {"zlib", false}, {"gzip", true}, {"zlib", true}} {
		t.Run(fmt.Sprintf("%s keep_compressed_payload=%v", tc.format, tc.keep), func(t *testing.T) {
			srv := hepsink.NewUDP(t, "127.0.0.1:0")
			h := newHomer(t, func(c *Config) { c.Endpoint, c.KeepCompressedPayload = srv.Addr(), tc.keep })
			in := hepReceiver(t, h.exp)

			p := sipPacket(7)
			var z bytes.Buffer
			compress[tc.format](&z)
			p.Payload, p.Compressed = nil, z.Bytes()
			raw, err := p.AppendV3(nil)
			require.NoError(t, err)
			_, err = in.Write(raw)
			require.NoError(t, err)

			got := srv.WaitFor(1, waitFor)[0]
			if tc.keep {
				assert.Nil(t, got.Payload, "no chunk 0x0f")
				require.NotNil(t, got.Compressed, "chunk 0x10")
				inflated, err := hep.Inflate(got.Compressed, 1<<16)
				require.NoError(t, err)
				assert.Equal(t, payload, string(inflated))
			} else {
				assert.Nil(t, got.Compressed, "no chunk 0x10")
				assert.Equal(t, payload, string(got.Payload), "chunk 0x0f, plain")
			}
			got.Payload, got.Compressed, p.Compressed = nil, nil, nil
			assert.Equal(t, p, got)
		})
	}
}
