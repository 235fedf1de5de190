package siphoncdrreceiver

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/logbatch"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/streamserver/streamservertest"
	"github.com/siphon-otel/siphon-otel/internal/syslogmsg"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/pki"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/telemetry"
	"github.com/siphon-otel/siphon-otel/receivers/siphoncdrreceiver/internal/metadata"
)

const waitFor = 10 * time.Second

// sample is SIPhon's CDR, sampleLine its syslog line.
var sample, sampleLine = string(fixture.CDR()), string(fixture.SyslogLine())

func withCallID(id string) string { return string(fixture.CDRWithID(id)) }

// lineWithCallID is sampleLine with Call-ID id.
func lineWithCallID(id string) string { return strings.Replace(sampleLine, fixture.CDRCallID, id, 1) }

type harness struct {
	r       *cdrReceiver
	tel     *componenttest.Telemetry
	metrics *telemetry.Reader
	host    *streamservertest.Host // what the receiver reported
	stopped bool
	http    string // host:port
	udp     string
	tcp     string
	tls     string // syslog over TLS, when a test adds it
}

// sum reads one of the receiver's own metrics (otelcol_ prefix added); t
// may be the CollectT of an EventuallyWithT condition.
func (h *harness) sum(t assert.TestingT, name string, attrs ...attribute.KeyValue) int64 {
	return h.metrics.Sum(t, name, attrs...)
}

func tr(s string) attribute.KeyValue     { return attribute.String("transport", s) }
func reason(s string) attribute.KeyValue { return attribute.String("reason", s) }

func testConfig(t *testing.T) (*Config, *harness) {
	h := &harness{http: ports.Addr(t), udp: ports.Addr(t), tcp: ports.Addr(t)}
	cfg := createDefaultConfig().(*Config)
	cfg.HTTP.GetOrInsertDefault().NetAddr.Endpoint = h.http
	s := cfg.Syslog.GetOrInsertDefault()
	s.UDP.GetOrInsertDefault().Endpoint = h.udp
	s.TCP.GetOrInsertDefault().Endpoint = h.tcp
	return cfg, h
}

func start(t *testing.T, cfg *Config, h *harness, next consumer.Logs) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	h.tel = componenttest.NewTelemetry()
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = h.tel.NewTelemetrySettings()
	r, err := newReceiver(set, cfg, next)
	require.NoError(t, err)
	h.metrics, err = telemetry.NewReader(h.tel, "metadata.yaml")
	require.NoError(t, err)
	h.r, h.host = r, streamservertest.NewHost()
	require.NoError(t, r.Start(context.Background(), h.host))
	t.Cleanup(func() {
		h.shutdown(t)
		require.NoError(t, h.tel.Shutdown(context.Background()))
	})
	return h
}

// shutdown stops the receiver, once.
func (h *harness) shutdown(t *testing.T) {
	t.Helper()
	if !h.stopped {
		h.stopped = true
		require.NoError(t, h.r.Shutdown(context.Background()))
	}
}

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

// siphonRequest is exactly what SIPhon's http backend sends.
func siphonRequest(addr, path, auth string, body []byte) []byte {
	req := "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n"
	if auth != "" {
		req += "Authorization: " + auth + "\r\n"
	}
	req += fmt.Sprintf("Connection: close\r\nContent-Length: %d\r\n\r\n", len(body))
	return append([]byte(req), body...)
}

// send sends req on a plain socket and reads the answer; with halfClose it
// then shuts its sending side, as a client that stops short does. It may
// run on any goroutine.
func send(addr string, req []byte, halfClose bool) (int, http.Header, string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, nil, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitFor))
	if _, err := c.Write(req); err != nil {
		return 0, nil, "", err
	}
	if halfClose {
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			return 0, nil, "", err
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

// post is send of a whole request.
func post(addr string, req []byte) (int, http.Header, string, error) { return send(addr, req, false) }

// rawPOST sends exactly what SIPhon's http backend sends, on a plain socket.
func rawPOST(t *testing.T, addr, path, auth, body string) (int, http.Header, string) {
	t.Helper()
	status, hdr, b, err := post(addr, siphonRequest(addr, path, auth, []byte(body)))
	require.NoError(t, err)
	return status, hdr, b
}

func TestHTTPExactSIPhonRequest(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	cfg.HTTP.Get().AuthHeader = "Bearer tok123"
	start(t, cfg, h, sink)
	status, _, body := rawPOST(t, h.http, "/v1/cdr", "Bearer tok123", sample)
	assert.Equal(t, http.StatusOK, status, body)
	assert.JSONEq(t, `{"accepted":1}`, body)
	require.Len(t, records(sink), 1)
	lr := records(sink)[0]
	assert.Equal(t, record.EventCDR, lr.EventName())
	assert.Equal(t, sample, lr.Body().Str())
	assert.Equal(t, time.Date(2026, 3, 6, 14, 23, 1, 42e6, time.UTC), lr.Timestamp().AsTime())
	a := lr.Attributes().AsRaw()
	assert.Equal(t, fixture.CDRCallID, a[record.AttrSIPCallID])
	assert.Equal(t, int64(200), a[record.AttrSIPResponseStatusCode])
	assert.Equal(t, "carrier-a", a["cdr.extra.trunk"])
	res := sink.AllLogs()[0].ResourceLogs().At(0).Resource().Attributes().AsRaw()
	assert.Equal(t, map[string]any{"service.name": "siphon", "service.instance.id": "127.0.0.1"}, res)
	// obsreport counts before the response is written: no wait
	assert.Equal(t, int64(1), h.sum(t, "receiver_accepted_log_records", tr("http")))
}

func TestHTTPAuth(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	cfg.HTTP.Get().AuthHeader = "Bearer tok123"
	start(t, cfg, h, sink)
	for _, auth := range []string{"", "Bearer tok12", "Bearer tok1234", "bearer tok123"} {
		status, hdr, body := rawPOST(t, h.http, "/v1/cdr", auth, sample)
		assert.Equal(t, http.StatusUnauthorized, status, auth)
		assert.Equal(t, "Bearer", hdr.Get("WWW-Authenticate"))
		assert.JSONEq(t, `{"error":"unauthorized"}`, body)
	}
	assert.Zero(t, sink.LogRecordCount())
	assert.Equal(t, int64(4), h.sum(t, "siphon_cdr_receiver_requests_refused", tr("http"), reason("unauthorized")))
}

func TestHTTPBatches(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	start(t, cfg, h, sink)
	array := "[" + withCallID("a1") + ",\n " + withCallID("a2") + "]"
	ndjson := withCallID("n1") + "\n" + withCallID("n2") + "\r\n" + withCallID("n3") + "\n"
	for _, body := range []string{array, ndjson} {
		status, _, resp := rawPOST(t, h.http, "/v1/cdr", "", body)
		require.Equal(t, http.StatusOK, status, resp)
	}
	assert.Equal(t, map[string]int{"a1": 1, "a2": 1, "n1": 1, "n2": 1, "n3": 1}, callIDs(sink))
	assert.Len(t, sink.AllLogs(), 2, "one ConsumeLogs per request")
}

// TestHTTPRefusals sends, on raw sockets, every kind of request the
// receiver refuses before the pipeline: each is answered with its status
// and counted once with its reason (the ones net/http refuses before any
// handler too), and none of them accepts a record.
func TestHTTPRefusals(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	cfg.HTTP.Get().MaxRecordsPerRequest = 2
	cfg.HTTP.Get().MaxRequestBodySize = 4096
	start(t, cfg, h, sink)
	badCode := strings.Replace(sample, `"response_code":200`, `"response_code":"200"`, 1)
	siphon := func(body string) func(string) []byte {
		return func(addr string) []byte { return siphonRequest(addr, "/v1/cdr", "", []byte(body)) }
	}
	raw := func(head, body string) func(string) []byte {
		return func(addr string) []byte {
			return []byte(strings.Replace(head, "{addr}", addr, 1) + "\r\n" + body)
		}
	}
	const post = "POST /v1/cdr HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n"
	tests := []struct {
		name      string
		req       func(addr string) []byte
		halfClose bool // the client shuts its side after the request
		status    int
		want      string // the JSON answer, when checked
		reason    string // of requests_refused
		malformed string // of records_malformed, if counted there too
	}{
		{"bad field", siphon(badCode), false, 400, `{"error":"cdr: field \"response_code\": want integer, got string","field":"response_code"}`, "bad_field", "bad_field"},
		{"bad field in batch", siphon("[" + withCallID("ok") + "," + badCode + "]"), false, 400, `{"error":"cdr: field \"response_code\": want integer, got string","field":"response_code","index":1}`, "bad_field", "bad_field"},
		{"missing call_id", siphon(`{"timestamp":"2026-03-06T14:23:01.042Z"}`), false, 400, `{"error":"cdr: field \"call_id\": required","field":"call_id"}`, "bad_field", "bad_field"},
		{"not json", siphon(`call_id=1`), false, 400, ``, "not_json", "not_json"},
		{"empty", siphon(``), false, 400, `{"error":"empty body"}`, "not_json", "not_json"},
		{"stray bracket after NDJSON", siphon(withCallID("1") + "]"), false, 400, ``, "not_json", "not_json"},
		{"too many", siphon(withCallID("1") + withCallID("2") + withCallID("3")), false, 413, `{"error":"too many records in one request: more than 2"}`, "too_many_records", "too_large"},
		{"too many in an array", siphon("[" + withCallID("1") + "," + withCallID("2") + "," + withCallID("3") + "]"), false, 413, `{"error":"too many records in one request: more than 2"}`, "too_many_records", "too_large"},
		{"too many in a broken array", siphon("[1,2,3,"), false, 413, `{"error":"too many records in one request: more than 2"}`, "too_many_records", "too_large"},
		{"too large", siphon(strings.Repeat(" ", 5000) + sample), false, 413, `{"error":"body larger than 4096 bytes"}`, "too_large", "too_large"},
		{"too large chunked", raw(post+"Transfer-Encoding: chunked\r\n", "1388\r\n"+strings.Repeat(" ", 5000)+"\r\n0\r\n\r\n"), false, 413, `{"error":"body larger than 4096 bytes"}`, "too_large", "too_large"},
		{"wrong path", func(addr string) []byte { return siphonRequest(addr, "/cdr", "", []byte(sample)) }, false, 404, `{"error":"not found"}`, "not_found", ""},
		{"GET", raw("GET /v1/cdr HTTP/1.1\r\nHost: {addr}\r\n", ""), false, 405, `{"error":"method not allowed"}`, "method_not_allowed", ""},
		{"zstd not enabled", raw(post+"Content-Encoding: zstd\r\nContent-Length: 4\r\n", "abcd"), false, 400, `{"error":"unsupported Content-Encoding: zstd"}`, "bad_encoding", ""},
		{"not gzip", raw(post+"Content-Encoding: gzip\r\nContent-Length: 4\r\n", "abcd"), false, 400, ``, "bad_encoding", ""},
		{"broken chunks", raw(post+"Transfer-Encoding: chunked\r\n", "zz\r\n"), false, 400, ``, "bad_body", ""},
		{"cut short", raw(post+"Content-Length: 1000\r\n", sample[:100]), true, 400, ``, "incomplete", ""},
		{"malformed header", raw(post+"Content-Length 5\r\n", ""), false, 400, ``, "bad_request", ""},
		{"headers cut short", func(addr string) []byte { return []byte(strings.Replace(post, "{addr}", addr, 1) + "Content-") }, true, 400, ``, "incomplete", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refused := func(c assert.TestingT) int64 {
				return h.sum(c, "siphon_cdr_receiver_requests_refused", tr("http"), reason(tt.reason))
			}
			before := refused(t)
			var malformedBefore int64
			if tt.malformed != "" {
				malformedBefore = h.sum(t, "siphon_cdr_receiver_records_malformed", tr("http"), reason(tt.malformed))
			}
			status, _, body, err := send(h.http, tt.req(h.http), tt.halfClose)
			require.NoError(t, err)
			assert.Equal(t, tt.status, status, body)
			if tt.want != "" {
				assert.JSONEq(t, tt.want, body)
			}
			// what net/http refuses itself is counted when it closes the connection
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.Equal(c, before+1, refused(c))
			}, waitFor, time.Millisecond)
			if tt.malformed != "" {
				assert.Equal(t, malformedBefore+1, h.sum(t, "siphon_cdr_receiver_records_malformed", tr("http"), reason(tt.malformed)))
			}
		})
	}
	assert.Zero(t, sink.LogRecordCount(), "a refused request accepts nothing")
	assert.Equal(t, int64(len(tests)), h.sum(t, "siphon_cdr_receiver_requests_refused", tr("http")), "each refusal counted once")
	resp, err := http.Get("http://" + h.http + "/v1/cdr")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "POST", resp.Header.Get("Allow"))
}

// gate refuses every batch until opened.
type gate struct {
	consumertest.LogsSink
	open    atomic.Bool
	refused atomic.Int64
}

func (g *gate) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if !g.open.Load() {
		g.refused.Add(1)
		return errors.New("memory limiter: data refused")
	}
	return g.LogsSink.ConsumeLogs(ctx, ld)
}

func TestHTTPPipelineRefusalIs503(t *testing.T) {
	g := &gate{}
	cfg, h := testConfig(t)
	start(t, cfg, h, g)
	status, hdr, body := rawPOST(t, h.http, "/v1/cdr", "", sample)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "5", hdr.Get("Retry-After"))
	assert.JSONEq(t, `{"error":"pipeline busy, retry later"}`, body)
	assert.Equal(t, int64(1), h.sum(t, "receiver_refused_log_records", tr("http")))
	assert.Zero(t, h.sum(t, "siphon_cdr_receiver_records_dropped"), "the client keeps it: not a drop")
	assert.Equal(t, int64(1), h.sum(t, "siphon_cdr_receiver_requests_refused", tr("http"), reason("pipeline_refused")))
	g.open.Store(true)
	status, _, _ = rawPOST(t, h.http, "/v1/cdr", "", sample)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, 1, g.LogRecordCount())
}

func TestHTTPOverTLS(t *testing.T) {
	certs := pki.New(t)
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	tlsCfg := configtls.NewDefaultServerConfig()
	tlsCfg.CertFile, tlsCfg.KeyFile = certs.ServerCert, certs.ServerKey
	cfg.HTTP.Get().TLS = configoptional.Some(tlsCfg)
	start(t, cfg, h, sink)
	ca, err := os.ReadFile(certs.CAFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Post("https://"+h.http+"/v1/cdr", "application/json", strings.NewReader(sample))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, 1, sink.LogRecordCount())
}

func TestSyslogUDP(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	cfg.Resource.Nodes = map[string]map[string]string{"127.0.0.1": {"service.instance.id": "sbc-1", "host.name": "sbc-1"}}
	start(t, cfg, h, sink)
	c, err := net.Dial("udp", h.udp)
	require.NoError(t, err)
	defer c.Close()
	for _, msg := range []string{
		sampleLine,
		"<134>Mar  6 14:23:01 sbc-1 siphon[77]: " + withCallID("rfc3164"),
		"<134>1 2026-03-06T14:23:01.042Z siphon cdr - - - not json",
		"garbage",
	} {
		_, err := c.Write([]byte(msg + "\n"))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 2 }, waitFor, time.Millisecond)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, int64(2), h.sum(ct, "siphon_cdr_receiver_records_malformed", tr("syslog_udp")))
	}, waitFor, time.Millisecond)
	byID := map[string]plog.LogRecord{}
	for _, lr := range records(sink) {
		v, _ := lr.Attributes().Get(record.AttrSIPCallID)
		byID[v.Str()] = lr
	}
	require.Len(t, byID, 2)
	require.Contains(t, byID, "rfc3164")
	require.Contains(t, byID, fixture.CDRCallID)
	assert.Equal(t, sample, byID[fixture.CDRCallID].Body().Str(), "the JSON exactly as SIPhon sent it")
	res := sink.AllLogs()[0].ResourceLogs().At(0).Resource().Attributes().AsRaw()
	assert.Equal(t, map[string]any{"service.name": "siphon", "service.instance.id": "sbc-1", "host.name": "sbc-1"}, res)
	assert.Equal(t, int64(1), h.sum(t, "siphon_cdr_receiver_records_malformed", tr("syslog_udp"), reason("bad_syslog")))
	assert.Equal(t, int64(1), h.sum(t, "siphon_cdr_receiver_records_malformed", tr("syslog_udp"), reason("bad_field")))
}

func TestSyslogTCPFramings(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	start(t, cfg, h, sink)
	c, err := net.Dial("tcp", h.tcp)
	require.NoError(t, err)
	defer c.Close()
	var stream []byte
	stream = syslogmsg.AppendOctetCounted(stream, []byte(sampleLine))
	stream = append(stream, lineWithCallID("newline-framed")+"\n"...)
	stream = syslogmsg.AppendOctetCounted(stream, []byte(lineWithCallID("counted-2")))
	_, err = c.Write(stream)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 3 }, waitFor, time.Millisecond)
	assert.Equal(t, map[string]int{fixture.CDRCallID: 1, "newline-framed": 1, "counted-2": 1}, callIDs(sink))

	// a broken frame closes that connection and is counted
	_, err = c.Write([]byte("12x garbage"))
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, int64(1), h.sum(t, "siphon_cdr_receiver_records_malformed", tr("syslog_tcp"), reason("bad_frame")))
}

func TestSyslogTCPBackpressure(t *testing.T) {
	g := &gate{}
	cfg, h := testConfig(t)
	cfg.Batch = logbatch.Config{MaxSize: 10, Timeout: time.Millisecond}
	start(t, cfg, h, g)
	c, err := net.Dial("tcp", h.tcp)
	require.NoError(t, err)
	defer c.Close()
	const n = 200
	var stream []byte
	for i := range n {
		stream = syslogmsg.AppendOctetCounted(stream, []byte(lineWithCallID(fmt.Sprint("bp-", i))))
	}
	go func() { _, _ = c.Write(stream) }()
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.GreaterOrEqual(ct, h.sum(ct, "siphon_cdr_receiver_backpressure_retries"), int64(5))
	}, waitFor, time.Millisecond)
	g.open.Store(true)
	require.Eventually(t, func() bool { return g.LogRecordCount() == n }, waitFor, time.Millisecond)
	ids := callIDs(&g.LogsSink)
	assert.Len(t, ids, n)
	assert.Zero(t, h.sum(t, "siphon_cdr_receiver_records_dropped"))
}

func TestSyslogUDPRefusalIsCounted(t *testing.T) {
	g := &gate{}
	cfg, h := testConfig(t)
	cfg.Batch = logbatch.Config{MaxSize: 1, Timeout: time.Millisecond}
	start(t, cfg, h, g)
	c, err := net.Dial("udp", h.udp)
	require.NoError(t, err)
	defer c.Close()
	for range 5 {
		_, err := c.Write([]byte(sampleLine))
		require.NoError(t, err)
	}
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, int64(5), h.sum(ct, "siphon_cdr_receiver_records_dropped", tr("syslog_udp"), reason("pipeline_refused")))
	}, waitFor, time.Millisecond)
}

func TestSplitRecords(t *testing.T) {
	got, valid, err := splitRecords([]byte("  {\"a\":1}\n\n{\"b\":\n2}  "), 10)
	require.NoError(t, err)
	assert.False(t, valid, "NDJSON is split by the decoder")
	assert.Equal(t, []json.RawMessage{json.RawMessage(`{"a":1}`), json.RawMessage("{\"b\":\n2}")}, got)
	_, _, err = splitRecords([]byte(`[{"a":1}] {}`), 10)
	assert.ErrorContains(t, err, "data after the JSON array")
	_, _, err = splitRecords([]byte(`[{}, {}, {}]`), 2)
	assert.ErrorIs(t, err, errTooMany)
	// one object and one array are validated once and sliced
	got, valid, err = splitRecords([]byte(` [ {"a":"]"} , {"b":[1,{}]} ] `), 10)
	require.NoError(t, err)
	assert.True(t, valid)
	assert.Equal(t, []json.RawMessage{json.RawMessage(`{"a":"]"}`), json.RawMessage(`{"b":[1,{}]}`)}, got)
	got, valid, err = splitRecords([]byte("{\"a\":1}\n"), 10)
	require.NoError(t, err)
	assert.True(t, valid)
	assert.Equal(t, []json.RawMessage{json.RawMessage(`{"a":1}`)}, got)
	// a valid array of non-objects: each element is refused by the parser
	got, valid, err = splitRecords([]byte(`[1, "x"]`), 10)
	require.NoError(t, err)
	assert.True(t, valid)
	assert.Len(t, got, 2)
	_, err = cdr.ParseValid(got[0])
	assert.ErrorContains(t, err, "not a JSON object")
}
