package homerexporter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/exporters/homerexporter/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
	"github.com/siphon-otel/siphon-otel/internal/testenv/hepsink"
	"github.com/siphon-otel/siphon-otel/internal/testenv/pki"
	"github.com/siphon-otel/siphon-otel/internal/testenv/telemetry"
)

const waitFor = 10 * time.Second

func sipPacket(i int) hep.Packet {
	return hep.Packet{
		Version: 3, Family: hep.FamilyIPv4, Protocol: hep.ProtoUDP,
		SrcIP: netip.MustParseAddr("192.168.1.100"), DstIP: netip.MustParseAddr("10.0.0.1"),
		SrcPort: 5060, DstPort: uint16(5060 + i), TimeSec: 1772806981, TimeUsec: uint32(i),
		ProtoType: hep.TypeSIP, CaptureID: 2001,
		Payload: []byte(fmt.Sprintf("OPTIONS sip:x SIP/2.0\r\nCall-ID: call-%d\r\nCSeq: 1 OPTIONS\r\n\r\n", i)),
		Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort |
			hep.HasDstPort | hep.HasTimeSec | hep.HasTimeUsec | hep.HasProtoType | hep.HasCaptureID,
	}
}

// sipLogs holds n sip.message records made from HEP packets, as the hep
// receiver makes them.
func sipLogs(from, n int) (plog.Logs, []hep.Packet) {
	ld := plog.NewLogs()
	recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	var want []hep.Packet
	for i := from; i < from+n; i++ {
		p := sipPacket(i)
		heprecord.FromHEP(&p, p.Payload, false, time.Now(), recs.AppendEmpty())
		want = append(want, p)
	}
	return ld, want
}

type harness struct {
	exp     exporter.Logs
	tel     *componenttest.Telemetry
	metrics *telemetry.Reader // the exporter's own, by their names in metadata.yaml
}

// newHomer builds the exporter through its factory, without a queue so
// that ConsumeLogs returns when the data is sent (or retries give up).
func newHomer(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 50 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = waitFor
	mutate(cfg)
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := exportertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	exp, err := NewFactory().CreateLogs(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, exp.Shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	metrics, err := telemetry.NewReader(tel, "metadata.yaml")
	require.NoError(t, err)
	return &harness{exp: exp, tel: tel, metrics: metrics}
}

func byPort(ps []hep.Packet) map[uint16]hep.Packet {
	m := map[uint16]hep.Packet{}
	for _, p := range ps {
		m[p.DstPort] = p
	}
	return m
}

func TestSendSIPMessages(t *testing.T) {
	certs := pki.New(t)
	serverCert, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	require.NoError(t, err)
	caPEM, err := os.ReadFile(certs.CAFile)
	require.NoError(t, err)
	clients := x509.NewCertPool()
	require.True(t, clients.AppendCertsFromPEM(caPEM))
	serverTLS := &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: clients, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}

	for _, transport := range []string{TransportUDP, TransportTCP, TransportTLS} {
		t.Run(transport, func(t *testing.T) {
			var srv *hepsink.Server
			switch transport {
			case TransportUDP:
				srv = hepsink.NewUDP(t, "127.0.0.1:0")
			case TransportTCP:
				srv = hepsink.NewStream(t, "127.0.0.1:0", nil)
			case TransportTLS:
				srv = hepsink.NewStream(t, "127.0.0.1:0", serverTLS)
			}
			h := newHomer(t, func(c *Config) {
				c.Endpoint, c.Transport = srv.Addr(), transport
				if transport == TransportTLS {
					c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile = certs.CAFile, certs.ClientCert, certs.ClientKey
				}
			})
			ld, want := sipLogs(0, 50)
			require.NoError(t, h.exp.ConsumeLogs(context.Background(), ld))
			got := byPort(srv.WaitFor(50, waitFor))
			for _, p := range want {
				assert.Equal(t, p, got[p.DstPort])
			}
			// over UDP counted once confirmed, a grace after the write
			assert.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.Equal(c, int64(50), h.metrics.Sum(c, "homer_exporter_packets_sent"))
			}, waitFor, time.Millisecond)
		})
	}
}

func TestCDRGoesAsType100WithCallID(t *testing.T) {
	srv := hepsink.NewUDP(t, "127.0.0.1:0")
	h := newHomer(t, func(c *Config) {
		c.Endpoint, c.CaptureID, c.AuthKey = srv.Addr(), 2001, "s3cret"
	})
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(record.AttrServiceInstanceID, "sbc-1")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(record.EventCDR)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Date(2026, 3, 6, 14, 23, 1, 42e6, time.UTC)))
	body := `{"call_id":"a84b4c76e66710@192.168.1.100","response_code":200}`
	lr.Body().SetStr(body)
	lr.Attributes().PutStr(record.AttrSIPCallID, "a84b4c76e66710@192.168.1.100")
	lr.Attributes().PutStr(record.AttrSourceAddress, "192.168.1.100")
	lr.Attributes().PutStr(record.AttrDestinationAddress, "10.0.0.1")
	require.NoError(t, h.exp.ConsumeLogs(context.Background(), ld))
	p := srv.WaitFor(1, waitFor)[0]
	assert.Equal(t, hep.TypeLog, p.ProtoType)
	assert.Equal(t, "a84b4c76e66710@192.168.1.100", string(p.CorrelationID))
	assert.Equal(t, body, string(p.Payload))
	assert.Equal(t, uint32(2001), p.CaptureID)
	assert.Equal(t, "sbc-1", string(p.NodeName))
	assert.Equal(t, "s3cret", string(p.AuthKey))
	assert.Equal(t, uint32(1772806981), p.TimeSec)
	assert.Equal(t, uint32(42000), p.TimeUsec)
	assert.Equal(t, netip.MustParseAddr("192.168.1.100"), p.SrcIP)
	assert.Equal(t, hep.FamilyIPv4, p.Family)
}

func serverTLS(t *testing.T, certs pki.PKI) *tls.Config {
	t.Helper()
	serverCert, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	require.NoError(t, err)
	return &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS13}
}

func streamTarget(t *testing.T, transport, addr string, tlsCfg *tls.Config) *hepsink.Server {
	if transport == TransportTLS {
		return hepsink.NewStream(t, addr, tlsCfg)
	}
	return hepsink.NewStream(t, addr, nil)
}

func TestReconnectsAfterTargetRestart(t *testing.T) {
	certs := pki.New(t)
	for _, transport := range []string{TransportTCP, TransportTLS} {
		t.Run(transport, func(t *testing.T) {
			srvTLS := serverTLS(t, certs)
			srv := streamTarget(t, transport, "127.0.0.1:0", srvTLS)
			addr := srv.Addr()
			h := newHomer(t, func(c *Config) {
				c.Endpoint, c.Transport = addr, transport
				if transport == TransportTLS {
					c.TLS.CAFile = certs.CAFile
				}
			})
			// several batches on one connection: the liveness check before
			// each push must not block on an open, healthy connection
			for i := range 5 {
				ld, _ := sipLogs(i*10, 10)
				require.NoError(t, h.exp.ConsumeLogs(context.Background(), ld))
			}
			srv.WaitFor(50, waitFor)
			assert.Equal(t, int64(1), h.metrics.Sum(t, "homer_exporter_connects", attribute.String("outcome", "success")))
			srv.Close() // the target goes down, taking the connection with it

			done := make(chan error, 1)
			ld2, want := sipLogs(100, 10)
			go func() { done <- h.exp.ConsumeLogs(context.Background(), ld2) }()
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.GreaterOrEqual(c, h.metrics.Sum(c, "homer_exporter_connects", attribute.String("outcome", "failure")), int64(2),
					"redials while the target is down")
			}, waitFor, time.Millisecond)
			srv2 := streamTarget(t, transport, addr, srvTLS)
			require.NoError(t, <-done)
			got := byPort(srv2.WaitFor(10, waitFor))
			for _, p := range want {
				assert.Equal(t, p, got[p.DstPort])
			}
			assert.Equal(t, int64(2), h.metrics.Sum(t, "homer_exporter_connects", attribute.String("outcome", "success")))
		})
	}
}

func TestUnencodableRecordsAreCountedAndSkipped(t *testing.T) {
	srv := hepsink.NewStream(t, "127.0.0.1:0", nil)
	h := newHomer(t, func(c *Config) { c.Endpoint, c.Transport = srv.Addr(), TransportTCP })
	ld, want := sipLogs(0, 3)
	recs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	big := recs.AppendEmpty()
	big.SetEventName(record.EventCDR)
	big.Body().SetStr(strings.Repeat("x", 70000))
	bad := recs.AppendEmpty()
	bad.Attributes().PutStr(record.AttrSourceAddress, "not an address")
	require.NoError(t, h.exp.ConsumeLogs(context.Background(), ld))
	got := srv.WaitFor(3, waitFor)
	assert.Len(t, got, 3)
	for i, p := range want {
		assert.Equal(t, p, got[i])
	}
	assert.Equal(t, int64(1), h.metrics.Sum(t, "homer_exporter_records_dropped", attribute.String("reason", "oversized")))
	assert.Equal(t, int64(1), h.metrics.Sum(t, "homer_exporter_records_dropped", attribute.String("reason", "bad_attributes")))
}
