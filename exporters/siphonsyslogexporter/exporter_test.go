package siphonsyslogexporter

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/exporters/siphonsyslogexporter/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/pki"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/records"
	"github.com/siphon-otel/siphon-otel/internal/testenv/telemetry"
	"github.com/siphon-otel/siphon-otel/receivers/siphoncdrreceiver"
)

const waitFor = 10 * time.Second

// sample and sampleLine are SIPhon's record and its syslog line.
var sample, sampleLine = string(fixture.CDR()), string(fixture.SyslogLine())

// once shuts the exporter down at most once (exporterhelper panics on a
// second Shutdown); tests that need the stream closed call it early.
type once struct {
	exporter.Logs
	done sync.Once
}

func (o *once) Shutdown(ctx context.Context) error {
	var err error
	o.done.Do(func() { err = o.Logs.Shutdown(ctx) })
	return err
}

func newSyslog(t *testing.T, mutate func(*Config)) *once {
	t.Helper()
	o, _ := newSyslogTelemetry(t, mutate)
	return o
}

// newSyslogTelemetry is newSyslog with the exporter's own telemetry.
func newSyslogTelemetry(t *testing.T, mutate func(*Config)) (*once, *componenttest.Telemetry) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	mutate(cfg)
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := exportertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	exp, err := NewFactory().CreateLogs(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	o := &once{Logs: exp}
	t.Cleanup(func() {
		require.NoError(t, o.Shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	return o, tel
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	load := func(name string) (*Config, error) {
		cfg := createDefaultConfig().(*Config)
		sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
		require.NoError(t, err)
		require.NoError(t, sub.Unmarshal(cfg))
		return cfg, confmap.Validate(cfg)
	}
	def, err := load("")
	require.NoError(t, err)
	assert.Equal(t, 134, def.priority(), "local0.info, SIPhon's <134>")
	cfg, err := load("tls")
	require.NoError(t, err)
	assert.Equal(t, 17*8+5, cfg.priority())
	assert.Equal(t, FormatRFC3164, cfg.Format)
	assert.Equal(t, FramingNewline, cfg.Framing)
	assert.Equal(t, "sbc-1", cfg.Hostname)
	_, err = load("bad")
	for _, want := range []string{`endpoint "nohost" must be host:port`, `transport must be udp, tcp or tls, got "sctp"`,
		`format must be rfc5424 or rfc3164`, `framing must be octet_counting or newline`, `facility must be a name like local0 or a number 0-23, got "local9"`,
		`severity must be a name like info or a number 0-7, got "8"`, `app_name must be 1-48 characters without spaces`, `hostname must be 1-48 characters`} {
		assert.ErrorContains(t, err, want)
	}
}

func TestUDPIsSIPhonsDatagram(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	exp := newSyslog(t, func(c *Config) { c.Endpoint = pc.LocalAddr().String() })
	require.NoError(t, exp.ConsumeLogs(context.Background(), records.CDRs(t, "a84b4c76e66710@192.168.1.100")))
	buf := make([]byte, 65536)
	_ = pc.SetReadDeadline(time.Now().Add(waitFor))
	n, _, err := pc.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, sampleLine, string(buf[:n]), "byte for byte what SIPhon sends")
}

// TestUDPLossIsCounted: CDRs sent over UDP to a loopback port where nothing
// listens are all counted dropped (port_unreachable), none sent; to a
// listening one all sent, and all arrive. Every message is counted once.
func TestUDPLossIsCounted(t *testing.T) {
	const n = 100
	for _, tc := range []struct {
		name      string
		listening bool
	}{{"listening", true}, {"port closed", false}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := ports.Addr(t)
			var received atomic.Int64
			if tc.listening {
				pc, err := net.ListenPacket("udp", addr)
				require.NoError(t, err)
				require.NoError(t, pc.(*net.UDPConn).SetReadBuffer(4<<20))
				done := make(chan struct{})
				go func() {
					defer close(done)
					buf := make([]byte, 65536)
					for {
						if _, _, err := pc.ReadFrom(buf); err != nil {
							return
						}
						received.Add(1)
					}
				}()
				t.Cleanup(func() { pc.Close(); <-done })
			}
			exp, tel := newSyslogTelemetry(t, func(c *Config) { c.Endpoint = addr })
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("udp-%d@192.168.1.100", i)
			}
			require.NoError(t, exp.ConsumeLogs(context.Background(), records.CDRs(t, ids...)))
			var sent, dropped int64
			metrics, err := telemetry.NewReader(tel, "metadata.yaml")
			require.NoError(t, err)
			read := func(t assert.TestingT) {
				sent = metrics.Sum(t, "siphon_syslog_exporter_messages_sent")
				dropped = metrics.Sum(t, "siphon_syslog_exporter_records_dropped", attribute.String("reason", "port_unreachable"))
			}
			assert.EventuallyWithT(t, func(c *assert.CollectT) { read(c); assert.Equal(c, int64(n), sent+dropped) }, waitFor, time.Millisecond)
			read(t)
			require.Equal(t, int64(n), sent+dropped, "sent %d + dropped %d", sent, dropped)
			if !tc.listening {
				assert.Equal(t, int64(n), dropped)
				return
			}
			assert.Equal(t, int64(n), sent)
			assert.Eventually(t, func() bool { return received.Load() == n }, waitFor, time.Millisecond)
			assert.Equal(t, int64(n), received.Load())
		})
	}
}

// tcpCapture accepts one connection and returns everything it sent.
func tcpCapture(t *testing.T, tlsCfg *tls.Config) (string, <-chan []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		out <- b
	}()
	return ln.Addr().String(), out
}

func TestTCPFraming(t *testing.T) {
	two := strings.Replace(sampleLine, fixture.CDRCallID, "second", 1)
	tests := []struct {
		framing string
		want    string
	}{
		{FramingOctetCounting, itoa(len(sampleLine)) + " " + sampleLine + itoa(len(two)) + " " + two},
		{FramingNewline, sampleLine + "\n" + two + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.framing, func(t *testing.T) {
			addr, got := tcpCapture(t, nil)
			exp := newSyslog(t, func(c *Config) { c.Endpoint, c.Transport, c.Framing = addr, "tcp", tt.framing })
			require.NoError(t, exp.ConsumeLogs(context.Background(), records.CDRs(t, "a84b4c76e66710@192.168.1.100", "second")))
			require.NoError(t, exp.Shutdown(context.Background())) // closes the stream
			select {
			case b := <-got:
				assert.Equal(t, tt.want, string(b))
			case <-time.After(waitFor):
				t.Fatal("nothing received")
			}
		})
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func TestRFC3164OverTLS(t *testing.T) {
	certs := pki.New(t)
	cert, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	require.NoError(t, err)
	addr, got := tcpCapture(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	exp := newSyslog(t, func(c *Config) {
		c.Endpoint, c.Transport, c.Format, c.Framing = addr, "tls", FormatRFC3164, FramingNewline
		c.Facility, c.Severity, c.Hostname, c.AppName = "1", "err", "sbc-1", "siphon"
		c.TLS.CAFile = certs.CAFile
	})
	require.NoError(t, exp.ConsumeLogs(context.Background(), records.CDRs(t, "a84b4c76e66710@192.168.1.100")))
	require.NoError(t, exp.Shutdown(context.Background()))
	b := <-got
	assert.Equal(t, "<11>Mar  6 14:23:01 sbc-1 siphon: "+sample+"\n", string(b))
}

func TestSIPMessageRecords(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	exp := newSyslog(t, func(c *Config) { c.Endpoint = pc.LocalAddr().String() })
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(record.EventSIPMessage)
	lr.Body().SetStr("OPTIONS sip:x SIP/2.0\r\n\r\n")
	require.NoError(t, exp.ConsumeLogs(context.Background(), ld))
	buf := make([]byte, 65536)
	_ = pc.SetReadDeadline(time.Now().Add(waitFor))
	n, _, err := pc.ReadFrom(buf)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(buf[:n]), `<134>1 1970-01-01T00:00:00.000Z siphon cdr - - - {"timestamp":"1970-01-01T00:00:00.000Z","event":"sip.message"`), string(buf[:n]))
}

// TestIntoSiphonCDRReceiver closes the loop: what the exporter sends over
// TCP, the receiver's syslog listener turns back into the same records.
func TestIntoSiphonCDRReceiver(t *testing.T) {
	addr := ports.Addr(t)
	sink := new(consumertest.LogsSink)
	rf := siphoncdrreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*siphoncdrreceiver.Config)
	rcfg.Syslog.GetOrInsertDefault().TCP.GetOrInsertDefault().Endpoint = addr
	rcv, err := rf.CreateLogs(context.Background(), receivertest.NewNopSettings(rf.Type()), rcfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	exp := newSyslog(t, func(c *Config) { c.Endpoint, c.Transport = addr, "tcp" })
	ids := []string{"r1", "r2", "r3"}
	require.NoError(t, exp.ConsumeLogs(context.Background(), records.CDRs(t, ids...)))
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 3 }, waitFor, time.Millisecond)
	var bodies []string
	for _, ld := range sink.AllLogs() {
		for _, r := range record.All(ld) {
			lr := r.Log
			bodies = append(bodies, lr.Body().Str())
		}
	}
	var want []string
	for _, id := range ids {
		want = append(want, string(fixture.CDRWithID(id)))
	}
	assert.Equal(t, want, bodies)
}
