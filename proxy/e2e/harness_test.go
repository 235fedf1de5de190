//go:build integration

// Package e2e drives the real sipproxy binary with real peers over
// loopback: sipp for SIP, our hep receiver for HEP, HTTP and files for CDRs,
// Debian's rtpengine for NG pings, sipvicious for scans.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipp"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipproxy"
	"github.com/siphon-otel/siphon-otel/internal/testenv/telemetry"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver"
)

// proxyOpts shapes one sipproxy instance; zero values take the defaults
// of the config template.
type proxyOpts struct {
	HEPEndpoint   string
	HEPTransport  string
	CDR           string // the whole cdr block; default: file backend
	DrainSecs     int
	InviteTimeout string
	FailoverTime  string
	Extra         string // more top-level YAML
	Registrar     string // the whole registrar block
	AdminToken    string
	TLSCert       string // with TLSKey: a TLS listener on TLSPort
	TLSKey        string
	LogLevel      string // default debug (the log is shown when a test fails)
	CPUProfile    string // write a CPU profile of the whole run there
}

// proxy is one sipproxy with the ports its configuration names.
type proxy struct {
	*sipproxy.Proxy
	SIPPort int
	TLSPort int
}

var configTmpl = template.Must(template.New("cfg").Parse(`listen:
  udp: ["127.0.0.1:{{.Port}}"]
  tcp: ["127.0.0.1:{{.Port}}"]
{{- if .Opts.TLSCert}}
  tls: ["127.0.0.1:{{.TLSPort}}"]
tls: {cert_file: "{{.Opts.TLSCert}}", key_file: "{{.Opts.TLSKey}}"}
{{- end}}
domain:
  local: ["127.0.0.1", "example.com"]
metrics:
  prometheus: {listen: "{{.Metrics}}", path: /metrics}
admin:
  listen: "{{.Admin}}"
{{- if .Opts.AdminToken}}
  auth: {token: "{{.Opts.AdminToken}}"}
{{- end}}
{{.CDR}}
{{- if .Opts.HEPEndpoint}}
tracing:
  hep: {endpoint: "{{.Opts.HEPEndpoint}}", version: 3, transport: {{.Opts.HEPTransport}}, agent_id: "siphon-e2e"}
{{- end}}
server:
  drain_secs: {{.Opts.DrainSecs}}
proxy:
  invite_timeout: {{.Opts.InviteTimeout}}
{{- if .Opts.FailoverTime}}
  failover_timeout: {{.Opts.FailoverTime}}
{{- end}}
{{.Registrar}}
{{.Opts.Extra}}
`))

// startProxy writes a config and runs sipproxy until the test ends.
func startProxy(t testing.TB, o proxyOpts) *proxy {
	t.Helper()
	if o.HEPTransport == "" {
		o.HEPTransport = "udp"
	}
	if o.DrainSecs == 0 {
		o.DrainSecs = 10
	}
	if o.InviteTimeout == "" {
		o.InviteTimeout = "2s"
	}
	p := &proxy{SIPPort: ports.Port(t)}
	metricsAddr, adminAddr := ports.Addr(t), ports.Addr(t)
	if o.TLSCert != "" {
		p.TLSPort = ports.Port(t)
	}
	cdrPath := filepath.Join(t.TempDir(), "cdr.jsonl")
	cdrBlock := o.CDR
	if cdrBlock == "" {
		cdrBlock = fmt.Sprintf("cdr:\n  enabled: true\n  auto_emit: true\n  include_register: true\n  backend: file\n  file: {path: %q}", cdrPath)
	}
	if o.Registrar == "" {
		o.Registrar = "registrar: {min_expires: 1, default_expires: 300}"
	}
	var cfg bytes.Buffer
	require.NoError(t, configTmpl.Execute(&cfg, map[string]any{"Port": p.SIPPort, "Metrics": metricsAddr,
		"Admin": adminAddr, "CDR": cdrBlock, "Registrar": o.Registrar, "TLSPort": p.TLSPort, "Opts": o}))
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	args := []string{"-log-level", o.LogLevel}
	if o.CPUProfile != "" {
		args = append(args, "-cpuprofile", o.CPUProfile)
	}
	p.Proxy = sipproxy.Start(t, sipproxy.Options{Config: cfg.String(), Admin: adminAddr, Metrics: metricsAddr,
		CDRFile: cdrPath, Args: args})
	return p
}

// labels select the series of a metric.
type labels = exposition.Labels

// scrape reads the proxy's metrics; on the test's goroutine only (it
// fails the test), never in an Eventually condition.
func (p *proxy) scrape(t testing.TB) exposition.Families {
	t.Helper()
	m, err := p.Metrics()
	require.NoError(t, err)
	return m
}

// count reads a counter: one that was never incremented has no series
// yet, which reads 0.
func count(m exposition.Families, name string, l labels) float64 {
	v, _ := m.Sum(name, l)
	return v
}

// delta is how much a counter moved from before to after.
func delta(before, after exposition.Families, name string, l labels) float64 {
	return count(after, name, l) - count(before, name, l)
}

// waitGauge waits until a gauge exists and reads want.
func (p *proxy) waitGauge(t testing.TB, name string, l labels, want float64) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m, err := p.Metrics()
		if !assert.NoError(c, err) {
			return
		}
		v, err := m.Value(name, l)
		if assert.NoError(c, err) {
			assert.Equal(c, want, v, exposition.Series(name, l))
		}
	}, 10*time.Second, 50*time.Millisecond)
}

// cdrs reads the file backend's records.
func (p *proxy) cdrs(t testing.TB) []map[string]any {
	t.Helper()
	recs, err := p.CDRs()
	require.NoError(t, err)
	return recs
}

// startSipp runs scenario (a name of proxy/testdata/sipp, or a path) on
// localPort; target may be empty for a UAS.
func startSipp(t testing.TB, scenario, transport string, localPort int, target string, args ...string) *sipp.Sipp {
	t.Helper()
	if target != "" {
		args = append(args, target)
	}
	return sipp.Start(t, scenario, transport, localPort, args...)
}

// hepSink is our hep receiver, in process, on a loopback port, with its
// own metrics (metrics.Sum: the names of its metadata.yaml).
type hepSink struct {
	Endpoint  string
	Transport string
	sink      *consumertest.LogsSink
	metrics   *telemetry.Reader
}

func startHEP(t testing.TB, transport string) *hepSink {
	t.Helper()
	f := hepreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*hepreceiver.Config)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	metrics, err := telemetry.NewReader(tel, filepath.Join(testenv.RepoRoot(), "receivers", "hepreceiver", "metadata.yaml"))
	require.NoError(t, err)
	h := &hepSink{Transport: transport, sink: &consumertest.LogsSink{}, metrics: metrics}
	h.Endpoint = ports.Addr(t)
	if transport == "udp" {
		cfg.UDP.GetOrInsertDefault().Endpoint = h.Endpoint
		// one reader keeps the proxy's order, which barrier relies on
		cfg.UDP.GetOrInsertDefault().Readers = 1
	} else {
		cfg.TCP.GetOrInsertDefault().Endpoint = h.Endpoint
	}
	cfg.Batch.Timeout = 20 * time.Millisecond
	require.NoError(t, cfg.Validate())
	set := receivertest.NewNopSettings(f.Type())
	set.TelemetrySettings = tel.NewTelemetrySettings()
	r, err := f.CreateLogs(context.Background(), set, cfg, h.sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return h
}

// hepMsg is one sip.message record from the receiver.
type hepMsg struct {
	First                string
	CSeq                 string
	CallID               string
	SrcPort, DstPort     int64
	Transport            string
	CaptureID            int64
	CorrelationID        string
	Raw                  string
	SrcAddress, DstAddrs string
}

// messages returns every sip.message record received so far.
func (h *hepSink) Messages() []hepMsg {
	var out []hepMsg
	for _, ld := range h.sink.AllLogs() {
		for _, r := range record.All(ld) {
			lr := r.Log
			if lr.EventName() != record.EventSIPMessage {
				continue
			}
			a := lr.Attributes()
			str := func(k string) string {
				if v, ok := a.Get(k); ok {
					return v.AsString()
				}
				return ""
			}
			num := func(k string) int64 {
				if v, ok := a.Get(k); ok && v.Type() == pcommon.ValueTypeInt {
					return v.Int()
				}
				return -1
			}
			m := hepMsg{CallID: str(record.AttrSIPCallID), Transport: str(record.AttrNetworkTransport),
				CSeq:    str(record.AttrSIPCSeqNumber) + " " + str(record.AttrSIPCSeqMethod),
				SrcPort: num(record.AttrSourcePort), DstPort: num(record.AttrDestinationPort),
				CaptureID: num(record.AttrHEPCaptureID), CorrelationID: str(record.AttrHEPCorrelationID),
				Raw: lr.Body().AsString(), SrcAddress: str(record.AttrSourceAddress), DstAddrs: str(record.AttrDestinationAddress)}
			if c := num(record.AttrSIPResponseStatusCode); c > 0 {
				m.First = strconv.FormatInt(c, 10)
			} else {
				m.First = str(record.AttrSIPRequestMethod)
			}
			out = append(out, m)
		}
	}
	return out
}

// forCall returns the records of one Call-ID.
func (h *hepSink) forCall(callID string) []hepMsg {
	var out []hepMsg
	for _, m := range h.Messages() {
		if m.CallID == callID {
			out = append(out, m)
		}
	}
	return out
}

var markers atomic.Int64

// What one marker adds: its 200 answer, and the HEP records of the
// request and of the answer.
const (
	markerResponses = 1
	markerHEP       = 2
)

// marker is an OPTIONS to the proxy itself, which it answers 200, from
// local over nw: sent behind other messages, its answer proves the proxy
// has read and handled them (it reads a socket or a connection in order).
func marker(nw, local string) (callID, msg string) {
	n := markers.Add(1)
	callID = fmt.Sprintf("marker-%d@127.0.0.1", n)
	msg = fmt.Sprintf("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/%s %s;rport;branch=z9hG4bK-marker-%d\r\n"+
		"From: <sip:marker@127.0.0.1>;tag=m%d\r\nTo: <sip:127.0.0.1>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\n"+
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", strings.ToUpper(nw), local, n, n, callID)
	return callID, msg
}

// settle sends a marker on c, behind what the test sent there, and
// returns the first line the proxy answers next: "SIP/2.0 200 OK" when
// the proxy said nothing to what came before, "" when it closed the
// connection (a TCP framing error ends it), anything else when it
// answered earlier messages too. It fails the test when the proxy stays
// silent.
func settle(t *testing.T, c net.Conn) string {
	t.Helper()
	_, msg := marker(c.LocalAddr().Network(), c.LocalAddr().String())
	if _, err := c.Write([]byte(msg)); err != nil {
		return "" // closed already
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 70000)
	n, err := c.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the proxy answered neither the marker nor what came before it on %s", c.LocalAddr())
	}
	first, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return first
}

// closedByPeer says whether a read error is the other end closing the
// connection (not a read deadline passing).
func closedByPeer(err error) bool {
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// barrier sends a marker to the proxy and waits for its HEP records: what
// the proxy traced before it has arrived too (one queue and connection in
// the proxy, one reader in the receiver).
func (h *hepSink) barrier(t *testing.T, p *proxy) {
	t.Helper()
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(p.SIPPort))
	require.NoError(t, err)
	defer c.Close()
	id, msg := marker("udp", c.LocalAddr().String())
	_, err = c.Write([]byte(msg))
	require.NoError(t, err)
	require.Equal(t, "SIP/2.0 200 OK", readFirstLine(c, true), "the proxy answers the marker")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Len(c, h.forCall(id), markerHEP, "the marker's HEP records")
	}, 10*time.Second, 20*time.Millisecond)
}
