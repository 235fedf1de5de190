package hepreceiver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/logbatch"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/streamserver/streamservertest"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/pki"
	"github.com/siphon-otel/siphon-otel/internal/testenv/telemetry"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver/internal/metadata"
)

const waitFor = 10 * time.Second

var invite = string(fixture.Invite())

// sipHEP returns a HEP3 packet carrying the fixture INVITE with Call-ID cid.
func sipHEP(t testing.TB, cid string, captureID uint32, opts ...func(*hep.Packet)) []byte {
	t.Helper()
	p := hep.Packet{
		Family: hep.FamilyIPv4, Protocol: hep.ProtoUDP,
		SrcIP: netip.MustParseAddr("192.168.1.100"), DstIP: netip.MustParseAddr("10.0.0.1"),
		SrcPort: 5060, DstPort: 5060, TimeSec: 1772806981, TimeUsec: 42000,
		ProtoType: hep.TypeSIP, CaptureID: captureID,
		Payload: []byte(strings.Replace(invite, "a84b4c76e66710@pc33.atlanta.example.com", cid, 1)),
		Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort |
			hep.HasDstPort | hep.HasTimeSec | hep.HasTimeUsec | hep.HasProtoType | hep.HasCaptureID,
	}
	for _, o := range opts {
		o(&p)
	}
	b, err := p.AppendV3(nil)
	require.NoError(t, err)
	return b
}

type harness struct {
	r       *hepReceiver
	tel     *componenttest.Telemetry
	metrics *telemetry.Reader
	host    *streamservertest.Host // what the receiver reported
	logs    *observer.ObservedLogs // what it logged, Info and up
	stopped bool
}

func testConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.UDP.GetOrInsertDefault().Endpoint = "127.0.0.1:0"
	cfg.TCP.GetOrInsertDefault().Endpoint = "127.0.0.1:0"
	return cfg
}

// start runs a receiver; it is shut down at the end of the test unless the
// test did (shutdown).
func start(t *testing.T, cfg *Config, next consumer.Logs) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	core, logs := observer.New(zapcore.InfoLevel)
	set.Logger = zap.New(core)
	r, err := newReceiver(set, cfg, next)
	require.NoError(t, err)
	metrics, err := telemetry.NewReader(tel, "metadata.yaml")
	require.NoError(t, err)
	h := &harness{r: r, tel: tel, metrics: metrics, host: streamservertest.NewHost(), logs: logs}
	require.NoError(t, r.Start(context.Background(), h.host))
	t.Cleanup(func() {
		if !h.stopped {
			require.NoError(t, r.Shutdown(context.Background()))
		}
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	return h
}

// shutdown stops the receiver (the cleanup then does not).
func (h *harness) shutdown(ctx context.Context) error {
	h.stopped = true
	return h.r.Shutdown(ctx)
}

func (h *harness) udp(t *testing.T) net.Conn {
	c, err := net.Dial("udp", h.r.udpConn.LocalAddr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func (h *harness) stream(t *testing.T, i int) net.Conn {
	c, err := net.Dial("tcp", h.r.servers[i].Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// counter reads one of the receiver's own metrics (otelcol_ prefix added);
// t may be the CollectT of an EventuallyWithT condition.
func (h *harness) counter(t assert.TestingT, name string, attrs ...attribute.KeyValue) int64 {
	return h.metrics.Sum(t, name, attrs...)
}

func tr(s string) attribute.KeyValue     { return attribute.String("transport", s) }
func reason(s string) attribute.KeyValue { return attribute.String("reason", s) }

func records(sink *consumertest.LogsSink) []plog.LogRecord {
	var out []plog.LogRecord
	for _, l := range sink.AllLogs() {
		for _, r := range record.All(l) {
			lr := r.Log
			out = append(out, lr)
		}
	}
	return out
}

func callIDs(sink *consumertest.LogsSink) map[string]int {
	ids := map[string]int{}
	for _, lr := range records(sink) {
		v, _ := lr.Attributes().Get(record.AttrSIPCallID)
		ids[v.Str()]++
	}
	return ids
}

func TestUDPRecordContent(t *testing.T) {
	sink := new(consumertest.LogsSink)
	h := start(t, testConfig(), sink)
	_, err := h.udp(t).Write(sipHEP(t, "cid-udp@x", 2001))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 1 }, waitFor, time.Millisecond)

	logs := sink.AllLogs()[0]
	rl := logs.ResourceLogs().At(0)
	assert.Equal(t, map[string]any{"service.name": "siphon", "service.instance.id": "2001"}, rl.Resource().Attributes().AsRaw())
	sl := rl.ScopeLogs().At(0)
	assert.Equal(t, metadata.ScopeName, sl.Scope().Name())
	lr := sl.LogRecords().At(0)
	assert.Equal(t, record.EventSIPMessage, lr.EventName())
	assert.Equal(t, time.Unix(1772806981, 42000000).UTC(), lr.Timestamp().AsTime())
	assert.NotZero(t, lr.ObservedTimestamp())
	assert.Equal(t, strings.Replace(invite, "a84b4c76e66710@pc33.atlanta.example.com", "cid-udp@x", 1), lr.Body().Str())
	attrs := lr.Attributes().AsRaw()
	assert.Equal(t, "cid-udp@x", attrs[record.AttrSIPCallID])
	assert.Equal(t, "INVITE", attrs[record.AttrSIPRequestMethod])
	assert.Equal(t, "192.168.1.100", attrs[record.AttrSourceAddress])
	assert.Equal(t, int64(5060), attrs[record.AttrDestinationPort])
	assert.Equal(t, int64(1), h.counter(t, "hep_receiver_packets_received", tr("udp")))
	// obsreport counts the batch after the pipeline took it: wait for that
	assert.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, int64(1), h.counter(ct, "receiver_accepted_log_records", tr("udp")))
	}, waitFor, time.Millisecond)
}

func TestUDPVersions1And2(t *testing.T) {
	sink := new(consumertest.LogsSink)
	h := start(t, testConfig(), sink)
	c := h.udp(t)
	v1 := append([]byte{1, 16, 2, 17, 0x13, 0xc4, 0x13, 0xc6, 10, 0, 0, 1, 10, 0, 0, 2}, "OPTIONS sip:a SIP/2.0\r\nCall-ID: v1\r\n\r\n"...)
	v2 := append([]byte{2, 16, 2, 17, 0x13, 0xc4, 0x13, 0xc6, 10, 0, 0, 1, 10, 0, 0, 2,
		0xf1, 0x53, 0x53, 0x65, 0x3f, 0x42, 0x0f, 0x00, 0xd1, 0x07, 0, 0}, "OPTIONS sip:a SIP/2.0\r\nCall-ID: v2\r\n\r\n"...)
	for _, p := range [][]byte{v1, v2} {
		_, err := c.Write(p)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 2 }, waitFor, time.Millisecond)
	byID := map[string]plog.LogRecord{}
	for _, lr := range records(sink) {
		v, _ := lr.Attributes().Get(record.AttrSIPCallID)
		byID[v.Str()] = lr
	}
	require.Contains(t, byID, "v1")
	require.Contains(t, byID, "v2")
	v2r := byID["v2"]
	assert.Equal(t, time.Unix(0x655353f1, 999999000).UTC(), v2r.Timestamp().AsTime())
	ver, _ := v2r.Attributes().Get(record.AttrHEPVersion)
	assert.Equal(t, int64(2), ver.Int())
	capt, _ := v2r.Attributes().Get(record.AttrHEPCaptureID)
	assert.Equal(t, int64(2001), capt.Int())
	_, noTS := byID["v1"].Attributes().Get(record.AttrHEPNoTimestamp)
	assert.True(t, noTS)
	port, _ := byID["v1"].Attributes().Get(record.AttrDestinationPort)
	assert.Equal(t, int64(5062), port.Int())
}

func TestBatchingBySize(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.Batch = logbatch.Config{MaxSize: 100, Timeout: time.Hour}
	h := start(t, cfg, sink)
	c := h.stream(t, 0)
	var all []byte
	for i := range 1000 {
		all = append(all, sipHEP(t, fmt.Sprintf("cid-%d", i), 1)...)
	}
	_, err := c.Write(all)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 1000 }, waitFor, time.Millisecond)
	assert.Len(t, sink.AllLogs(), 10, "one ConsumeLogs call per 100 records")
	for _, l := range sink.AllLogs() {
		assert.Equal(t, 100, l.LogRecordCount())
	}
	assert.Len(t, callIDs(sink), 1000)
}

func TestBatchingByTimeout(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.Batch = logbatch.Config{MaxSize: 1000, Timeout: 5 * time.Millisecond}
	h := start(t, cfg, sink)
	_, err := h.udp(t).Write(sipHEP(t, "lonely", 1))
	require.NoError(t, err)
	// a partial batch is delivered by the timer, not held for more records
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 1 }, waitFor, time.Millisecond)
}

func TestResourcePerNode(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.Batch = logbatch.Config{MaxSize: 4, Timeout: time.Hour}
	cfg.Resource.Attributes = map[string]string{"deployment.environment.name": "test"}
	cfg.Resource.Nodes = map[string]map[string]string{"2001": {"host.name": "sbc-1"}, "edge-b": {"host.name": "sbc-2"}}
	h := start(t, cfg, sink)
	c := h.stream(t, 0)
	named := func(p *hep.Packet) { p.NodeName = []byte("edge-b") }
	for _, p := range [][]byte{sipHEP(t, "a", 2001), sipHEP(t, "b", 2002, named), sipHEP(t, "c", 2001), sipHEP(t, "d", 7)} {
		_, err := c.Write(p)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 4 }, waitFor, time.Millisecond)
	require.Len(t, sink.AllLogs(), 1)
	got := map[string]any{}
	for _, rl := range sink.AllLogs()[0].ResourceLogs().All() {
		attrs := rl.Resource().Attributes().AsRaw()
		got[attrs["service.instance.id"].(string)] = []any{attrs, rl.ScopeLogs().At(0).LogRecords().Len()}
	}
	assert.Equal(t, map[string]any{
		"2001":   []any{map[string]any{"service.name": "siphon", "service.instance.id": "2001", "deployment.environment.name": "test", "host.name": "sbc-1"}, 2},
		"edge-b": []any{map[string]any{"service.name": "siphon", "service.instance.id": "edge-b", "deployment.environment.name": "test", "host.name": "sbc-2"}, 1},
		"7":      []any{map[string]any{"service.name": "siphon", "service.instance.id": "7", "deployment.environment.name": "test"}, 1},
	}, got)
}

func TestAuthKey(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.AuthKey = "s3cret"
	h := start(t, cfg, sink)
	c := h.udp(t)
	withKey := func(k string) func(*hep.Packet) { return func(p *hep.Packet) { p.AuthKey = []byte(k) } }
	for _, p := range [][]byte{
		sipHEP(t, "no-key", 1), sipHEP(t, "bad-key", 1, withKey("s3cre")), sipHEP(t, "good", 1, withKey("s3cret")),
		append([]byte{1, 16, 2, 17, 0, 1, 0, 2, 10, 0, 0, 1, 10, 0, 0, 2}, "OPTIONS sip:a SIP/2.0\r\n\r\n"...),
	} {
		_, err := c.Write(p)
		require.NoError(t, err)
	}
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, int64(3), h.counter(ct, "hep_receiver_packets_dropped", tr("udp"), reason("unauthorized")))
		assert.Equal(ct, 1, sink.LogRecordCount())
	}, waitFor, time.Millisecond)
	assert.Equal(t, map[string]int{"good": 1}, callIDs(sink))
}

// keyChunk is chunk 0x0e written by hand: the codec's encoders write one
// copy at most.
func keyChunk(vendor uint16, key string) []byte {
	b := binary.BigEndian.AppendUint16(nil, vendor)
	b = binary.BigEndian.AppendUint16(b, hep.ChunkAuthKey)
	b = binary.BigEndian.AppendUint16(b, uint16(hep.ChunkHeaderLen+len(key)))
	return append(b, key...)
}

// withKeys inserts copies of chunk 0x0e into the packet raw: one before its
// first chunk, one after its first chunk, one at its end, for each key of
// front, middle and back.
func withKeys(raw []byte, front, middle, back []byte) []byte {
	first := hep.HeaderLen + int(binary.BigEndian.Uint16(raw[hep.HeaderLen+4:]))
	out := append([]byte(hep.Magic+"\x00\x00"), front...)
	out = append(out, raw[hep.HeaderLen:first]...)
	out = append(out, middle...)
	out = append(out, raw[first:]...)
	out = append(out, back...)
	binary.BigEndian.PutUint16(out[4:], uint16(len(out)))
	return out
}

// TestAuthKeyCopies: a packet carrying chunk 0x0e several times passes
// auth_key only when every copy equals it; with or without auth_key, no
// copy reaches the record (hep.extra_chunks is what the exporters write
// out again).
func TestAuthKeyCopies(t *testing.T) {
	good, bad := keyChunk(hep.VendorGeneric, "s3cret"), keyChunk(hep.VendorGeneric, "s3cre")
	vendorGood, vendorBad := keyChunk(hep.VendorKamailio, "s3cret"), keyChunk(hep.VendorKamailio, "x")
	cat := func(chunks ...[]byte) []byte { return bytes.Join(chunks, nil) }
	packets := []struct {
		callID              string
		front, middle, back []byte
		authorized          bool
	}{
		{"two-good", good, nil, good, true},
		{"two-good-adjacent", nil, cat(good, good), nil, true},
		{"three-good", good, good, good, true},
		{"good-vendor-good", good, nil, vendorGood, true},
		{"good-then-bad", good, nil, bad, false},
		{"bad-then-good", bad, good, nil, false},
		{"three-one-bad", good, bad, good, false},
		{"vendor-bad-first", vendorBad, good, nil, false},
		{"good-then-empty", good, nil, keyChunk(hep.VendorGeneric, ""), false},
	}
	for _, authKey := range []string{"", "s3cret"} {
		t.Run(fmt.Sprintf("auth_key=%q", authKey), func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			cfg := testConfig()
			cfg.AuthKey = configopaque.String(authKey)
			h := start(t, cfg, sink)
			c := h.stream(t, 0)
			want := map[string]int{}
			for _, p := range packets {
				_, err := c.Write(withKeys(sipHEP(t, p.callID, 1), p.front, p.middle, p.back))
				require.NoError(t, err)
				if authKey == "" || p.authorized {
					want[p.callID] = 1
				}
			}
			unauthorized := int64(len(packets) - len(want))
			require.EventuallyWithT(t, func(ct *assert.CollectT) {
				assert.Equal(ct, int64(len(packets)), h.counter(ct, "hep_receiver_packets_received", tr("tcp")))
				assert.Equal(ct, len(want), sink.LogRecordCount())
			}, waitFor, time.Millisecond)
			assert.Equal(t, want, callIDs(sink))
			assert.Equal(t, unauthorized, h.counter(t, "hep_receiver_packets_dropped", tr("tcp"), reason("unauthorized")))
			assert.Zero(t, h.counter(t, "hep_receiver_packets_malformed"))
			for _, lr := range records(sink) {
				extra, ok := lr.Attributes().Get(record.AttrHEPExtraChunks)
				if !ok {
					continue
				}
				chunks, err := hep.ParseChunks(nil, extra.Bytes().AsRaw())
				require.NoError(t, err)
				for _, ch := range chunks {
					assert.NotEqual(t, hep.ChunkAuthKey, ch.Type, "chunk 0x0e in hep.extra_chunks: %q", ch.Data)
				}
			}
		})
	}
}

func TestMalformedCountedByReason(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.MaxPacketSize = 500
	h := start(t, cfg, sink)
	c := h.udp(t)
	good := sipHEP(t, "ok", 1, func(p *hep.Packet) { p.Payload = []byte("OPTIONS sip:x SIP/2.0\r\nCall-ID: ok\r\n\r\n") })
	short := append([]byte{}, good...)
	short[5]++ // length field one more than the datagram
	for _, p := range [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n"), short, sipHEP(t, "big", 1), []byte("HE"), good} {
		_, err := c.Write(p)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 1 }, waitFor, time.Millisecond)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, int64(4), h.counter(ct, "hep_receiver_packets_malformed"))
	}, waitFor, time.Millisecond)
	for _, r := range []string{"bad_magic", "length_mismatch", "oversized", "short"} {
		assert.Equal(t, int64(1), h.counter(t, "hep_receiver_packets_malformed", tr("udp"), reason(r)), r)
	}
	assert.Equal(t, int64(5), h.counter(t, "hep_receiver_packets_received", tr("udp")))
}

func TestCompressedPayload(t *testing.T) {
	sink := new(consumertest.LogsSink)
	h := start(t, testConfig(), sink)
	zipped := func(p *hep.Packet) {
		var buf bytes.Buffer
		require.NoError(t, hep.Deflate(&buf, p.Payload))
		p.Compressed, p.Payload = buf.Bytes(), nil
	}
	_, err := h.udp(t).Write(sipHEP(t, "zipped", 1, zipped))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 1 }, waitFor, time.Millisecond)
	lr := records(sink)[0]
	assert.True(t, strings.HasPrefix(lr.Body().Str(), "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"))
	v, _ := lr.Attributes().Get(record.AttrHEPPayloadCompressed)
	assert.True(t, v.Bool())
}

func TestStreamGarbage(t *testing.T) {
	t.Run("resync", func(t *testing.T) {
		sink := new(consumertest.LogsSink)
		h := start(t, testConfig(), sink)
		c := h.stream(t, 0)
		stream := append(sipHEP(t, "first", 1), "some garbage in between"...)
		stream = append(stream, sipHEP(t, "second", 1)...)
		_, err := c.Write(stream)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return sink.LogRecordCount() == 2 }, waitFor, time.Millisecond)
		assert.Equal(t, map[string]int{"first": 1, "second": 1}, callIDs(sink))
		assert.Equal(t, int64(1), h.counter(t, "hep_receiver_packets_malformed", tr("tcp"), reason("stream_garbage")))
	})
	t.Run("close", func(t *testing.T) {
		sink := new(consumertest.LogsSink)
		cfg := testConfig()
		cfg.TCP.Get().OnGarbage = "close"
		h := start(t, cfg, sink)
		c := h.stream(t, 0)
		_, err := c.Write(append(sipHEP(t, "first", 1), "garbage"...))
		require.NoError(t, err)
		_ = c.SetReadDeadline(time.Now().Add(waitFor))
		_, err = c.Read(make([]byte, 1))
		assert.ErrorIs(t, err, io.EOF, "the receiver closes the connection")
		require.Eventually(t, func() bool { return sink.LogRecordCount() == 1 }, waitFor, time.Millisecond)
		assert.Equal(t, int64(1), h.counter(t, "hep_receiver_packets_malformed", tr("tcp"), reason("bad_magic")))
	})
	t.Run("truncated", func(t *testing.T) {
		sink := new(consumertest.LogsSink)
		h := start(t, testConfig(), sink)
		c := h.stream(t, 0)
		p := sipHEP(t, "cut", 1)
		_, err := c.Write(p[:len(p)-10])
		require.NoError(t, err)
		require.NoError(t, c.Close())
		require.EventuallyWithT(t, func(ct *assert.CollectT) {
			assert.Equal(ct, int64(1), h.counter(ct, "hep_receiver_packets_malformed", tr("tcp"), reason("truncated")))
		}, waitFor, time.Millisecond)
		// shutdown delivers whatever was batched: nothing of the cut packet
		require.NoError(t, h.shutdown(context.Background()))
		assert.Zero(t, sink.LogRecordCount())
	})
}

func TestTLSWithClientCertificates(t *testing.T) {
	certs := pki.New(t)
	sink := new(consumertest.LogsSink)
	cfg := createDefaultConfig().(*Config)
	tc := cfg.TLS.GetOrInsertDefault()
	tc.Endpoint = "127.0.0.1:0"
	tc.CertFile, tc.KeyFile, tc.ClientCAFile = certs.ServerCert, certs.ServerKey, certs.CAFile
	h := start(t, cfg, sink)
	addr := h.r.servers[0].Addr().String()

	caPEM, err := os.ReadFile(certs.CAFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))

	// without a client certificate the handshake fails
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err == nil {
		_, err = c.Write(sipHEP(t, "anonymous", 1))
		if err == nil {
			_, err = c.Read(make([]byte, 1))
		}
		c.Close()
	}
	require.Error(t, err)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, int64(1), h.counter(ct, "hep_receiver_connections_rejected", tr("tls"), reason("tls_handshake")))
	}, waitFor, time.Millisecond)

	cert, err := tls.LoadX509KeyPair(certs.ClientCert, certs.ClientKey)
	require.NoError(t, err)
	c, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(append(sipHEP(t, "over-tls-1", 1), sipHEP(t, "over-tls-2", 1)...))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 2 }, waitFor, time.Millisecond)
	assert.Equal(t, map[string]int{"over-tls-1": 1, "over-tls-2": 1}, callIDs(sink))
	assert.Equal(t, int64(2), h.counter(t, "hep_receiver_packets_received", tr("tls")))
}

// gate refuses every batch until opened, then passes them to the sink.
type gate struct {
	consumertest.LogsSink
	open    atomic.Bool
	refused atomic.Int64
	err     error
}

func (g *gate) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if !g.open.Load() {
		g.refused.Add(1)
		return g.err
	}
	return g.LogsSink.ConsumeLogs(ctx, ld)
}

func TestTCPBackpressureLosesNothing(t *testing.T) {
	g := &gate{err: errors.New("memory limiter: data refused")}
	cfg := testConfig()
	cfg.Batch = logbatch.Config{MaxSize: 10, Timeout: time.Millisecond}
	h := start(t, cfg, g)
	c := h.stream(t, 0)
	const n = 300
	packets := make([][]byte, n) // built here: sipHEP may fail the test, which only this goroutine may do
	for i := range n {
		packets[i] = sipHEP(t, fmt.Sprintf("bp-%d", i), 1)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, p := range packets {
			if _, err := c.Write(p); err != nil {
				return
			}
		}
	}()
	// while the pipeline refuses, the connection stops being read: at most
	// one full batch plus the timer's partial batch are framed
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.GreaterOrEqual(ct, h.counter(ct, "hep_receiver_backpressure_retries", tr("tcp")), int64(10))
	}, waitFor, time.Millisecond)
	assert.LessOrEqual(t, h.counter(t, "hep_receiver_packets_received", tr("tcp")), int64(2*cfg.Batch.MaxSize))
	g.open.Store(true)
	wg.Wait()
	require.Eventually(t, func() bool { return g.LogRecordCount() == n }, waitFor, time.Millisecond)
	ids := callIDs(&g.LogsSink)
	assert.Len(t, ids, n)
	for id, count := range ids {
		assert.Equal(t, 1, count, id)
	}
	assert.Zero(t, h.counter(t, "hep_receiver_packets_dropped"))
}

func TestUDPRefusalIsCounted(t *testing.T) {
	g := &gate{err: errors.New("refused")}
	cfg := testConfig()
	cfg.Batch = logbatch.Config{MaxSize: 5, Timeout: time.Millisecond}
	h := start(t, cfg, g)
	c := h.udp(t)
	for i := range 20 {
		_, err := c.Write(sipHEP(t, fmt.Sprint(i), 1))
		require.NoError(t, err)
	}
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, int64(20), h.counter(ct, "hep_receiver_packets_dropped", tr("udp"), reason("pipeline_refused")))
	}, waitFor, time.Millisecond)
	assert.Zero(t, h.counter(t, "hep_receiver_backpressure_retries"))
	// obsreport's count is its own: not ordered with the drop counter
	assert.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, int64(20), h.counter(ct, "receiver_refused_log_records", tr("udp")))
	}, waitFor, time.Millisecond)
	assert.Zero(t, h.counter(t, "receiver_accepted_log_records"))
}

func TestPermanentErrorIsNotRetried(t *testing.T) {
	g := &gate{err: consumererror.NewPermanent(errors.New("bad data"))}
	cfg := testConfig()
	cfg.Batch = logbatch.Config{MaxSize: 2, Timeout: time.Hour}
	h := start(t, cfg, g)
	_, err := h.stream(t, 0).Write(append(sipHEP(t, "x", 1), sipHEP(t, "y", 1)...))
	require.NoError(t, err)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, int64(2), h.counter(ct, "hep_receiver_packets_dropped", tr("tcp"), reason("permanent_error")))
	}, waitFor, time.Millisecond)
	assert.Equal(t, int64(1), g.refused.Load())
}

func TestShutdownDeliversPendingRecords(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.Batch = logbatch.Config{MaxSize: 1000, Timeout: time.Hour}
	h := start(t, cfg, sink)
	c := h.stream(t, 0)
	for i := range 30 {
		_, err := c.Write(sipHEP(t, fmt.Sprint(i), 1))
		require.NoError(t, err)
	}
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, int64(30), h.counter(ct, "hep_receiver_packets_received"))
	}, waitFor, time.Millisecond)
	assert.Zero(t, sink.LogRecordCount(), "held in the batch")
	require.NoError(t, h.shutdown(context.Background()))
	assert.Equal(t, 30, sink.LogRecordCount())
}

func TestShutdownDoesNotHangOnRefusingPipeline(t *testing.T) {
	g := &gate{err: errors.New("refused forever")}
	cfg := testConfig()
	cfg.Batch = logbatch.Config{MaxSize: 3, Timeout: time.Hour}
	h := start(t, cfg, g)
	_, err := h.stream(t, 0).Write(append(append(sipHEP(t, "1", 1), sipHEP(t, "2", 1)...), sipHEP(t, "3", 1)...))
	require.NoError(t, err)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Positive(ct, h.counter(ct, "hep_receiver_backpressure_retries"))
	}, waitFor, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.NoError(t, h.shutdown(ctx))
	assert.Equal(t, int64(3), h.counter(t, "hep_receiver_packets_dropped", tr("tcp"), reason("shutdown")))
}

func TestStartFailsOnBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cfg := testConfig()
	cfg.TCP.Get().Endpoint = ln.Addr().String()
	r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	assert.ErrorContains(t, err, "hep receiver: tcp listen")
	assert.ErrorIs(t, r.udpConn.Close(), net.ErrClosed, "udp was closed by the failed start")
}

// TestMediaReports: RTCP statistics (HEP type 5) become records with their
// figures as media.* attributes; one whose JSON cannot be read is delivered
// too, without them, and counted by reason.
func TestMediaReports(t *testing.T) {
	sink := new(consumertest.LogsSink)
	h := start(t, testConfig(), sink)
	rtcp := func(payload string) []byte {
		return sipHEP(t, "rtcp-call@x", 2001, func(p *hep.Packet) {
			p.ProtoType, p.Payload = hep.TypeRTCP, []byte(payload)
			p.CorrelationID = []byte("rtcp-call@x")
		})
	}
	c := h.udp(t)
	for _, payload := range []string{string(fixture.Media("rtcp-json/heplify-rr.json")), `{"sender_information":`, `{"report_blocks":[{"fraction_lost":300}]}`} {
		_, err := c.Write(rtcp(payload))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 3 }, waitFor, time.Millisecond)
	var withFigures, without int
	for _, r := range record.All(sink.AllLogs()[0]) {
		assert.Equal(t, "hep.rtcp", r.Log.EventName())
		if _, ok := r.Log.Attributes().Get(record.AttrMediaSource); ok {
			withFigures++
		} else {
			without++
		}
	}
	assert.Equal(t, 1, withFigures, "the well-formed report has its figures")
	assert.Equal(t, 2, without, "the others are delivered without them")
	assert.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, int64(1), h.counter(ct, "hep_receiver_media_unreadable", tr("udp"), reason("malformed")))
		assert.Equal(ct, int64(1), h.counter(ct, "hep_receiver_media_unreadable", tr("udp"), reason("out_of_range")))
	}, waitFor, time.Millisecond)
}
