//go:build integration

package distro_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/distro"
	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/hepsink"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

func TestComponents(t *testing.T) {
	out, err := testenv.Run(t, childproc.Spec{Path: collector.Binary(t), Args: []string{"components"}})
	require.NoError(t, err, out)
	for _, name := range []string{
		"hep", "siphon_cdr", "otlp", "prometheus", "file_log", // receivers
		"batch", "memory_limiter", "transform", "filter", "attributes", "sip_correlation", "tail_sampling", // processors
		"homer", "siphon_file", "siphon_http", "siphon_syslog", "siphon_kafka", "debug", "otlp_grpc", "otlp_http", "file", // exporters
		"prometheus_remote_write", "nop", "load_balancing",
		"sipkpi", "sipcall", // connectors
		"file_storage", "health_check", "pprof", // extensions
	} {
		assert.Contains(t, string(out), "- name: "+name+"\n", name)
	}
}

// overlays are shipped configs that only make sense on top of others: the
// configs each goes on.
var overlays = map[string][]string{
	"kpi-remote-write.yaml": {"config.yaml"},
	"call-traces.yaml":      {"config.yaml", "gateway.yaml"},
}

func TestValidateShippedConfigs(t *testing.T) {
	bin := collector.Binary(t)
	for _, name := range distro.Names() { // every file of distro/ (TestEmbeddedConfigsAreTheShippedFiles)
		for _, uri := range []string{name, "siphon:" + name} {
			bases := overlays[name]
			if bases == nil {
				bases = []string{""}
			}
			for _, base := range bases {
				t.Run(strings.TrimPrefix(base+"+"+uri, "+"), func(t *testing.T) {
					args := []string{"validate", "--config", uri}
					if base != "" {
						args = []string{"validate", "--config", strings.Replace(uri, name, base, 1), "--config", uri}
					}
					out, err := testenv.Run(t, childproc.Spec{Path: bin, Args: args})
					assert.NoError(t, err, out)
				})
			}
		}
	}
	// and validate really checks: a broken copy fails
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	cfg, err := os.ReadFile("config.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(broken, bytes.Replace(cfg, []byte("udp:"), []byte("udp:\n      readers: 0"), 1), 0o600))
	out, err := testenv.Run(t, childproc.Spec{Path: bin, Args: []string{"validate", "--config", broken}})
	assert.Error(t, err)
	assert.Contains(t, out, "udp: readers must be at least 1")
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// readLines returns the JSON objects of a JSON Lines file; t may be an
// EventuallyWithT condition's CollectT (a line still being written fails
// that tick only).
func readLines(t assert.TestingT, path string) []map[string]any {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var m map[string]any
		if !assert.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text()) {
			return nil
		}
		out = append(out, m)
	}
	return out
}

// TestDefaultConfigEndToEnd starts the appliance on its embedded default
// config and feeds it HEP over UDP and TCP.
func TestDefaultConfigEndToEnd(t *testing.T) {
	state := t.TempDir()
	hepAddr := ports.Addr(t)
	health := ports.Addr(t)
	telemetry := port(ports.Addr(t))
	p := collector.Start(t, collector.Options{
		Config: "siphon:config.yaml",
		Env: map[string]string{
			"SIPHON_HEP_ENDPOINT": hepAddr, "SIPHON_HEALTH_ENDPOINT": health,
			"SIPHON_TELEMETRY_PORT": telemetry, "SIPHON_STATE_DIR": state,
			"SIPHON_KPI_ENDPOINT": ports.Addr(t), "SIPHON_HOMER_ENDPOINT": ports.Addr(t),
		},
		HealthAddr: health, TelemetryPort: telemetry,
	})

	udp, err := net.Dial("udp", hepAddr)
	require.NoError(t, err)
	defer udp.Close()
	_, err = udp.Write(fixture.HEPSpecExample())
	require.NoError(t, err)

	invite := fixture.Invite()
	pkt := hep.Packet{Payload: invite, ProtoType: hep.TypeSIP, CaptureID: 2001, Fields: hep.HasProtoType | hep.HasCaptureID}
	pkt.SetTime(time.Unix(1772806981, 0))
	raw, err := pkt.AppendV3(nil)
	require.NoError(t, err)
	tcp, err := net.Dial("tcp", hepAddr)
	require.NoError(t, err)
	_, err = tcp.Write(raw)
	require.NoError(t, err)
	require.NoError(t, tcp.Close())

	var recs []map[string]any
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		recs = readLines(c, filepath.Join(state, "sip.jsonl"))
		assert.Len(c, recs, 2)
	}, 30*time.Second, 50*time.Millisecond)
	byMessage := map[string]map[string]any{}
	for _, r := range recs {
		byMessage[r["message"].(string)] = r
	}
	spec := byMessage["INVITE sip:bob"]
	assert.Equal(t, record.EventSIPMessage, spec["event"])
	assert.Equal(t, "212.202.0.1:12010", spec["source"])
	assert.Equal(t, "82.116.0.211:5060", spec["destination"])
	assert.Equal(t, 228.0, spec["capture_id"])
	assert.Equal(t, "2011-08-15T20:34:19.120Z", spec["timestamp"])
	full := byMessage[string(invite)]
	assert.Equal(t, "a84b4c76e66710@pc33.atlanta.example.com", full["call_id"])
	assert.Equal(t, "INVITE", full["method"])
	assert.Equal(t, "314159 INVITE", full["cseq"])

	p.WaitMetric(10*time.Second, 2, "otelcol_receiver_accepted_log_records", exposition.Labels{"receiver": "hep"})
	got, err := p.Value("otelcol_hep_receiver_packets_received", nil)
	require.NoError(t, err)
	assert.Equal(t, 2.0, got)
	_, err = os.Stat(filepath.Join(state, "queue"))
	assert.NoError(t, err, "persistent queue directory")
	assert.NoError(t, p.Stop(30*time.Second), "clean exit on SIGTERM")
}

// TestHomerRelaySurvivesKillWhileHomerIsDown sends HEP to the relay while
// Homer is down, kills the collector hard, restarts it and then brings Homer
// up: every packet accepted before the kill must arrive, once.
func TestHomerRelaySurvivesKillWhileHomerIsDown(t *testing.T) {
	state := t.TempDir()
	hepAddr := ports.Addr(t)
	homer := ports.Addr(t) // nothing listens here yet
	health := ports.Addr(t)
	telemetry := port(ports.Addr(t))
	opts := collector.Options{
		Config: "siphon:homer-relay.yaml",
		Env: map[string]string{
			"SIPHON_HEP_ENDPOINT": hepAddr, "SIPHON_HOMER_ENDPOINT": homer, "SIPHON_HOMER_TRANSPORT": "tcp",
			"SIPHON_HEALTH_ENDPOINT": health, "SIPHON_TELEMETRY_PORT": telemetry, "SIPHON_STATE_DIR": state,
		},
		HealthAddr: health, TelemetryPort: telemetry,
	}
	first := collector.Start(t, opts)

	const n = 200
	conn, err := net.Dial("tcp", hepAddr)
	require.NoError(t, err)
	var stream []byte
	for i := range n {
		p := hep.Packet{
			Payload:   []byte(fmt.Sprintf("OPTIONS sip:x SIP/2.0\r\nCall-ID: durable-%d\r\nCSeq: 1 OPTIONS\r\n\r\n", i)),
			ProtoType: hep.TypeSIP, CaptureID: 7, CorrelationID: []byte(fmt.Sprintf("durable-%d", i)),
			Fields: hep.HasProtoType | hep.HasCaptureID,
		}
		p.SetTime(time.Now())
		stream, err = p.AppendV3(stream)
		require.NoError(t, err)
	}
	_, err = conn.Write(stream)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	// accepted = enqueued in the disk-backed queue
	first.WaitMetric(30*time.Second, n, "otelcol_receiver_accepted_log_records", exposition.Labels{"receiver": "hep"})
	first.WaitMetric(30*time.Second, 1, "otelcol_homer_exporter_connects", exposition.Labels{"outcome": "failure"})
	first.Kill()

	second := collector.Start(t, opts)
	srv := hepsink.NewStream(t, homer, nil)
	got := srv.WaitFor(n, 90*time.Second)
	seen := map[string]int{}
	for _, p := range got {
		seen[string(p.CorrelationID)]++
	}
	for i := range n {
		assert.Equal(t, 1, seen[fmt.Sprintf("durable-%d", i)], "durable-%d", i)
	}
	assert.Len(t, got, n, "no duplicates")
	second.WaitMetric(30*time.Second, n, "otelcol_homer_exporter_packets_sent", nil)
	assert.NoError(t, second.Stop(30*time.Second))
}
