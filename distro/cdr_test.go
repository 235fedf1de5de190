//go:build integration

package distro_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/rotfile"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

var cdrFixture = fixture.CDR()

func cdrWithID(id string) []byte { return fixture.CDRWithID(id) }

// otelcol starts a shipped config on free loopback ports and a temp state
// dir; extra env is added.
type otelcol struct {
	*collector.Process
	state, httpAddr, syslogAddr string
}

func startConfig(t *testing.T, config string, state string, extra map[string]string) *otelcol {
	t.Helper()
	if state == "" {
		state = t.TempDir()
	}
	c := &otelcol{state: state}
	c.httpAddr, c.syslogAddr = ports.Addr(t), ports.Addr(t)
	health := ports.Addr(t)
	telemetry := port(ports.Addr(t))
	env := map[string]string{
		"SIPHON_HEP_ENDPOINT": ports.Addr(t), "SIPHON_CDR_HTTP_ENDPOINT": c.httpAddr,
		"SIPHON_CDR_SYSLOG_ENDPOINT": c.syslogAddr, "SIPHON_HEALTH_ENDPOINT": health,
		"SIPHON_TELEMETRY_PORT": telemetry, "SIPHON_STATE_DIR": state,
		"SIPHON_KPI_ENDPOINT": ports.Addr(t), "SIPHON_HOMER_ENDPOINT": ports.Addr(t),
	}
	for k, v := range extra {
		env[k] = v
	}
	c.Process = collector.Start(t, collector.Options{Config: "siphon:" + config, Env: env, HealthAddr: health, TelemetryPort: telemetry})
	return c
}

// siphonPOST sends one record exactly as SIPhon's http backend does, on a
// raw socket, and returns the status code.
func siphonPOST(addr string, body []byte) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	req := fmt.Sprintf("POST /v1/cdr HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body)
	if _, err := c.Write([]byte(req)); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// fileLines waits for the JSON Lines file to hold n lines and returns them.
func fileLines(t *testing.T, path string, n int, timeout time.Duration) []string {
	t.Helper()
	var lines []string
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(b) == 0 {
			lines = nil
		}
		return len(lines) >= n
	}, timeout, 50*time.Millisecond, "%s: %d of %d lines", path, len(lines), n)
	return lines
}

func callIDCounts(t *testing.T, lines []string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, l := range lines {
		r, err := cdr.Parse([]byte(l))
		require.NoError(t, err, l)
		ids[r.CallID()]++
	}
	return ids
}

// TestCDRsThreeWaysComeOutByteIdentical: the SIPhon fixture record posted as
// SIPhon posts it, sent as SIPhon's syslog line, and appended to a SIPhon
// CDR file, each comes out of siphon_file as the same bytes.
func TestCDRsThreeWaysComeOutByteIdentical(t *testing.T) {
	t.Parallel()
	c := startConfig(t, "config.yaml", "", nil)
	status, err := siphonPOST(c.httpAddr, cdrFixture)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	u, err := net.Dial("udp", c.syslogAddr)
	require.NoError(t, err)
	defer u.Close()
	_, err = u.Write(fixture.SyslogLine())
	require.NoError(t, err)
	for _, l := range fileLines(t, filepath.Join(c.state, "cdr.jsonl"), 2, 30*time.Second) {
		assert.Equal(t, string(cdrFixture), l)
	}

	dir := t.TempDir()
	w, err := rotfile.Open(rotfile.Options{Path: filepath.Join(dir, "cdr.jsonl"), MaxBytes: 100 << 20})
	require.NoError(t, err)
	require.NoError(t, w.Write(append(bytes.Clone(cdrFixture), '\n')))
	require.NoError(t, w.Close())
	out := filepath.Join(dir, "out.jsonl")
	startConfig(t, "cdr-file.yaml", "", map[string]string{"SIPHON_CDR_FILE": filepath.Join(dir, "cdr.jsonl"), "SIPHON_CDR_OUT": out})
	assert.Equal(t, []string{string(cdrFixture)}, fileLines(t, out, 1, 30*time.Second))
}

// TestCDRFileAcrossRotationsAndRestart writes a SIPhon CDR file that rotates
// many times while the collector reads it, restarts the collector in the
// middle, and checks every record arrives exactly once. The output is
// rendered from the attributes the file_log chain built, so it also proves
// the chain yields the same records as the siphon_cdr receiver.
func TestCDRFileAcrossRotationsAndRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	src := filepath.Join(dir, "cdr.jsonl")
	out := filepath.Join(dir, "out.jsonl")
	env := map[string]string{"SIPHON_CDR_FILE": src, "SIPHON_CDR_OUT": out, "SIPHON_CDR_SOURCE": "attributes"}
	w, err := rotfile.Open(rotfile.Options{Path: src, MaxBytes: 64 << 10})
	require.NoError(t, err)
	defer w.Close()
	const total = 3000
	n := 0
	write := func(count int) {
		for range count {
			require.NoError(t, w.Write(append(cdrWithID(fmt.Sprintf("file-%05d", n)), '\n')))
			n++
			if n%50 == 0 {
				require.NoError(t, w.Flush())
				time.Sleep(2 * time.Millisecond) // SIPhon writes as calls end, not all at once
			}
		}
		require.NoError(t, w.Flush())
	}
	first := startConfig(t, "cdr-file.yaml", state, env)
	write(total / 2)
	fileLines(t, out, total/4, 60*time.Second)
	require.NoError(t, first.Stop(30*time.Second)) // a graceful restart mid-stream
	write(total / 4)
	startConfig(t, "cdr-file.yaml", state, env)
	write(total / 4)

	lines := fileLines(t, out, total, 60*time.Second)
	ids := callIDCounts(t, lines)
	assert.Len(t, ids, total, "no gaps")
	for id, c := range ids {
		if c != 1 {
			t.Errorf("%s delivered %d times", id, c)
		}
	}
	rotated, err := rotfile.Rotated(src)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(rotated), 10, "the file rotated many times")
	// rendered from the chain's attributes, each record is SIPhon's object
	for i, l := range lines[:20] {
		var got, want map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &got))
		r, err := cdr.Parse([]byte(l))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(cdrWithID(r.CallID()), &want))
		assert.Equal(t, want, got, "line %d", i)
	}
}

// kafkaCluster starts kfake on a fixed loopback port (so that a restart is
// the same broker address).
func kafkaCluster(t *testing.T, port int) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(4, "siphon-cdr", "siphon-sip"))
	require.NoError(t, err)
	return c
}

func consumeKafka(t *testing.T, brokers []string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("siphon-cdr"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "%d of %d records", len(out), n)
		out = append(out, fs.Records()...)
	}
	return out
}

// TestTenThousandCDRsHTTPToKafka: 10,000 records in over HTTP, out through
// siphon_kafka into kfake, consumed back with a Kafka client.
func TestTenThousandCDRsHTTPToKafka(t *testing.T) {
	t.Parallel()
	kport := ports.Port(t)
	k := kafkaCluster(t, kport)
	defer k.Close()
	brokers := k.ListenAddrs()
	c := startConfig(t, "cdr-kafka.yaml", "", map[string]string{"SIPHON_KAFKA_BROKERS": brokers[0]})
	const total, per = 10000, 500
	client := &http.Client{Timeout: 30 * time.Second}
	for b := 0; b < total/per; b++ {
		var body bytes.Buffer
		for i := range per {
			body.Write(cdrWithID(fmt.Sprintf("k-%05d", b*per+i)))
			body.WriteByte('\n')
		}
		resp, err := client.Post("http://"+c.httpAddr+"/v1/cdr", "application/x-ndjson", &body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	recs := consumeKafka(t, brokers, total)
	keys := map[string]int{}
	partition := map[string]int32{}
	for _, r := range recs {
		parsed, err := cdr.Parse(r.Value)
		require.NoError(t, err)
		assert.Equal(t, parsed.CallID(), string(r.Key), "keyed by Call-ID")
		keys[string(r.Key)]++
		partition[string(r.Key)] = r.Partition
	}
	assert.Len(t, keys, total, "all present")
	for key, n := range keys {
		if n != 1 {
			t.Errorf("%s consumed %d times", key, n)
		}
	}
	c.WaitMetric(30*time.Second, total, "otelcol_siphon_kafka_exporter_messages_produced", nil)
}

// TestKafkaBrokerOutage stops the broker while CDRs keep coming, then starts
// it again: everything accepted reaches Kafka.
func TestKafkaBrokerOutage(t *testing.T) {
	t.Parallel()
	kport := ports.Port(t)
	first := kafkaCluster(t, kport)
	brokers := first.ListenAddrs()
	c := startConfig(t, "cdr-kafka.yaml", "", map[string]string{"SIPHON_KAFKA_BROKERS": brokers[0]})
	post := func(from, n int) {
		for i := from; i < from+n; i++ {
			status, err := siphonPOST(c.httpAddr, cdrWithID(fmt.Sprintf("o-%03d", i)))
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, status, "accepted into the disk queue even with the broker down")
		}
	}
	post(0, 50)
	assert.Len(t, consumeKafka(t, brokers, 50), 50)
	first.Close()
	post(50, 50)
	c.WaitMetric(30*time.Second, 100, "otelcol_receiver_accepted_log_records", exposition.Labels{"receiver": "siphon_cdr"})
	second := kafkaCluster(t, kport)
	defer second.Close()
	got := map[string]bool{}
	for _, r := range consumeKafka(t, brokers, 50) {
		got[string(r.Key)] = true
	}
	for i := 50; i < 100; i++ {
		assert.True(t, got[fmt.Sprintf("o-%03d", i)], "o-%03d", i)
	}
}

// TestBillingDownForThirtySeconds: the billing endpoint answers 503 for 30 s,
// then 200; every CDR SIPhon sent in the meantime is delivered.
func TestBillingDownForThirtySeconds(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	upAt := time.Now().Add(30 * time.Second)
	accepted := map[string]int{}
	var refused atomic.Int64
	billing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if time.Now().Before(upAt) {
			refused.Add(1)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		rec, err := cdr.Parse(body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		accepted[rec.CallID()]++
		mu.Unlock()
	}))
	defer billing.Close()
	c := startConfig(t, "cdr-billing.yaml", "", map[string]string{"SIPHON_BILLING_URL": billing.URL + "/cdr"})
	const total = 200
	for i := range total {
		status, err := siphonPOST(c.httpAddr, cdrWithID(fmt.Sprintf("b-%03d", i)))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) == total
	}, 120*time.Second, 100*time.Millisecond)
	// 10 queue consumers retrying once a second (Retry-After: 1) for 30 s
	assert.GreaterOrEqual(t, refused.Load(), int64(30), "billing really was down, and was retried")
	c.WaitMetric(10*time.Second, total, "otelcol_exporter_sent_log_records", exposition.Labels{"exporter": "siphon_http"})
}

// TestCollectorKilledMidStream: SIPhon posts CDRs one by one while the
// collector is SIGKILLed and restarted; SIPhon's requests that failed are
// resent (the test plays a SIPhon that does retry). With file_storage every
// accepted record is delivered at least once, and the unique count equals
// the count sent.
func TestCollectorKilledMidStream(t *testing.T) {
	t.Parallel()
	state := t.TempDir()
	first := startConfig(t, "config.yaml", state, nil)
	const total = 2000
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < total; {
			status, err := siphonPOST(first.httpAddr, cdrWithID(fmt.Sprintf("kill-%04d", i)))
			if err == nil && status == http.StatusOK {
				sent.Add(1)
				i++
				continue
			}
			time.Sleep(20 * time.Millisecond) // collector down: resend
		}
	}()
	require.Eventually(t, func() bool { return sent.Load() >= total/3 }, 60*time.Second, time.Millisecond)
	first.Kill()
	env := map[string]string{"SIPHON_CDR_HTTP_ENDPOINT": first.httpAddr}
	second := startConfig(t, "config.yaml", state, env)
	<-done
	// at least once: duplicates may fill `total` lines before the last
	// record is in, so wait for the unique count, over complete lines
	path := filepath.Join(state, "cdr.jsonl")
	complete := func() []string {
		b, _ := os.ReadFile(path)
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return strings.Split(string(b[:i]), "\n")
		}
		return nil
	}
	var ids map[string]int
	assert.Eventually(t, func() bool {
		ids = map[string]int{}
		for _, l := range complete() {
			if r, err := cdr.Parse([]byte(l)); err == nil {
				ids[r.CallID()]++
			}
		}
		return len(ids) == total
	}, 60*time.Second, 50*time.Millisecond)
	ids = callIDCounts(t, complete()) // every line a valid CDR
	assert.Len(t, ids, total, "unique records delivered = records sent")
	second.WaitMetric(30*time.Second, 1, "otelcol_receiver_accepted_log_records", exposition.Labels{"receiver": "siphon_cdr"})
}
