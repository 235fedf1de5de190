// Package e2e drives the real sipproxy binary with real peers over
// loopback: sipp for SIP, our hep receiver for HEP, HTTP and files for CDRs,
// Debian's rtpengine for NG pings, sipvicious for scans.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipp"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver"
)

var (
	sipproxyBin string
	sippDir     string // the sipp scenarios
)

func TestMain(m *testing.M) {
	for _, tool := range []string{"sipp"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s not found: install Debian's sip-tester (make deps-apt)\n", tool)
			os.Exit(1)
		}
	}
	dir, err := os.MkdirTemp("", "sipproxy-e2e")
	if err != nil {
		panic(err)
	}
	sipproxyBin = filepath.Join(dir, "sipproxy")
	build := exec.Command("go", "build", "-o", sipproxyBin, "./proxy/cmd/sipproxy")
	build.Dir = collector.RepoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building sipproxy:", err)
		os.Exit(1)
	}
	sippDir = filepath.Join(collector.RepoRoot(), "proxy", "testdata", "sipp")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

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

type proxy struct {
	t          testing.TB
	SIPPort    int
	TLSPort    int
	MetricsURL string
	AdminURL   string
	CDRPath    string
	Dir        string
	cmd        *exec.Cmd
	logPath    string // the proxy's stdout and stderr
	done       chan struct{}
	exitErr    error
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
	dir := t.TempDir()
	if o.HEPTransport == "" {
		o.HEPTransport = "udp"
	}
	if o.DrainSecs == 0 {
		o.DrainSecs = 10
	}
	if o.InviteTimeout == "" {
		o.InviteTimeout = "2s"
	}
	p := &proxy{t: t, SIPPort: ports.Port(t), Dir: dir, CDRPath: filepath.Join(dir, "cdr.jsonl"),
		logPath: filepath.Join(dir, "sipproxy.log"), done: make(chan struct{})}
	metricsAddr, adminAddr := ports.Addr(t), ports.Addr(t)
	if o.TLSCert != "" {
		p.TLSPort = ports.Port(t)
	}
	p.MetricsURL = "http://" + metricsAddr + "/metrics"
	p.AdminURL = "http://" + adminAddr
	cdrBlock := o.CDR
	if cdrBlock == "" {
		cdrBlock = fmt.Sprintf("cdr:\n  enabled: true\n  auto_emit: true\n  include_register: true\n  backend: file\n  file: {path: %q}", p.CDRPath)
	}
	if o.Registrar == "" {
		o.Registrar = "registrar: {min_expires: 1, default_expires: 300}"
	}
	var cfg bytes.Buffer
	require.NoError(t, configTmpl.Execute(&cfg, map[string]any{"Port": p.SIPPort, "Metrics": metricsAddr,
		"Admin": adminAddr, "CDR": cdrBlock, "Registrar": o.Registrar, "TLSPort": p.TLSPort, "Opts": o}))
	cfgPath := filepath.Join(dir, "siphon.yaml")
	require.NoError(t, os.WriteFile(cfgPath, cfg.Bytes(), 0o600))

	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	args := []string{"-config", cfgPath, "-log-level", o.LogLevel}
	if o.CPUProfile != "" {
		args = append(args, "-cpuprofile", o.CPUProfile)
	}
	p.cmd = exec.Command(sipproxyBin, args...)
	logf, err := os.Create(p.logPath)
	require.NoError(t, err)
	t.Cleanup(func() { logf.Close() })
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	require.NoError(t, p.cmd.Start())
	go func() { p.exitErr = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("sipproxy log:\n%s", p.log())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := p.admin("GET", "/admin/ready", ""); code == 200 {
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("sipproxy exited at start: %v\n%s", p.exitErr, p.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sipproxy not ready\n%s", p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// admin calls the admin API; the body is returned as text.
func (p *proxy) admin(method, path, token string) (int, string) {
	req, err := http.NewRequest(method, p.AdminURL+path, nil)
	if err != nil {
		return 0, err.Error()
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// signal sends sig to the proxy.
func (p *proxy) signal(sig syscall.Signal) { require.NoError(p.t, p.cmd.Process.Signal(sig)) }

// metrics scrapes /metrics into "name{labels}" -> value; histograms add
// _count and _sum series.
func (p *proxy) metrics() map[string]float64 {
	p.t.Helper()
	resp, err := http.Get(p.MetricsURL)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(p.t, err)
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			key := name
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[strings.Replace(key, name, name+"_count", 1)] = float64(m.GetHistogram().GetSampleCount())
				out[strings.Replace(key, name, name+"_sum", 1)] = m.GetHistogram().GetSampleSum()
			case m.Untyped != nil:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

// cdrs reads the file backend's records.
func (p *proxy) cdrs() []map[string]any {
	p.t.Helper()
	b, err := os.ReadFile(p.CDRPath)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(p.t, err)
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		require.NoError(p.t, json.Unmarshal(line, &m), "CDR line %q", line)
		out = append(out, m)
	}
	return out
}

// waitCDR waits for the record of callID (and method).
func (p *proxy) waitCDR(callID, method string) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range p.cdrs() {
			if r["call_id"] == callID && r["method"] == method {
				return r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("no %s CDR for %s in %v", method, callID, p.cdrs())
	return nil
}

// waitGauge waits until a gauge reads want.
func (p *proxy) waitGauge(key string, want float64) {
	p.t.Helper()
	var got float64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = p.metrics()[key]; got == want {
			return
		}
	}
	p.t.Fatalf("%s = %v, want %v", key, got, want)
}

// log is what the proxy wrote so far.
func (p *proxy) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// startSipp runs scenario (a file in testdata/sipp, or a path) on
// localPort; target may be empty for a UAS.
func startSipp(t testing.TB, scenario, transport string, localPort int, target string, args ...string) *sipp.Sipp {
	t.Helper()
	sf := scenario
	if !strings.ContainsRune(sf, '/') {
		sf = filepath.Join(sippDir, scenario+".xml")
	}
	if target != "" {
		args = append(args, target)
	}
	return sipp.Start(t, sf, transport, localPort, args...)
}

// hepSink is our hep receiver, in process, on a loopback port.
type hepSink struct {
	Endpoint  string
	Transport string
	sink      *consumertest.LogsSink
}

func startHEP(t testing.TB, transport string) *hepSink {
	t.Helper()
	f := hepreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*hepreceiver.Config)
	h := &hepSink{Transport: transport, sink: &consumertest.LogsSink{}}
	if transport == "udp" {
		h.Endpoint = ports.Addr(t)
		cfg.UDP.GetOrInsertDefault().Endpoint = h.Endpoint
	} else {
		h.Endpoint = ports.Addr(t)
		cfg.TCP.GetOrInsertDefault().Endpoint = h.Endpoint
	}
	cfg.Batch.Timeout = 20 * time.Millisecond
	require.NoError(t, cfg.Validate())
	r, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, h.sink)
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
