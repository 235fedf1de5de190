//go:build integration

package distro_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/prometheus"
)

// busyCDR turns the fixture into a 486 Busy Here that was never answered.
func busyCDR(id string) []byte {
	b := cdrWithID(id)
	for _, r := range [][2]string{
		{`"response_code":200`, `"response_code":486`},
		{`"timestamp_answer":"2026-03-06T14:20:16.307Z"`, `"timestamp_answer":null`},
		{`"duration_secs":164.735`, `"duration_secs":0`},
		{`"disconnect_initiator":"caller"`, `"disconnect_initiator":null`},
	} {
		b = bytes.Replace(b, []byte(r[0]), []byte(r[1]), 1)
	}
	return b
}

// sendWave posts answered and busy CDRs, as SIPhon does, and returns their
// Call-IDs.
func sendWave(t *testing.T, addr, wave string, answered, busy int) []string {
	t.Helper()
	var ids []string
	for i := range answered + busy {
		id := fmt.Sprintf("%s-%d@192.0.2.1", wave, i)
		body := cdrWithID(id)
		if i >= answered {
			body = busyCDR(id)
		}
		// a record time of now: exemplars are stamped with it
		body = bytes.Replace(body, []byte(`"timestamp":"2026-03-06T14:23:01.042Z"`),
			[]byte(`"timestamp":"`+time.Now().UTC().Format("2006-01-02T15:04:05.000Z")+`"`), 1)
		time.Sleep(2 * time.Millisecond) // distinct, increasing exemplar times
		code, err := siphonPOST(addr, body)
		require.NoError(t, err)
		require.Equal(t, 200, code)
		ids = append(ids, id)
	}
	return ids
}

func rulesPath(t *testing.T) string {
	p, err := filepath.Abs("../alerts/siphon-kpi.rules.yml")
	require.NoError(t, err)
	return p
}

// kpiWaves sends two waves of 3 answered + 2 busy calls (the second once
// Prometheus holds the first, so rate() sees an increase) and checks the
// shipped recording rules over what Prometheus received.
func kpiWaves(t *testing.T, c *otelcol, p *prometheus.Server, sel string) []string {
	ids := sendWave(t, c.httpAddr, "w1", 3, 2)
	p.WaitValue(t, "", `sum(sip_calls_total`+sel+`)`, func(v float64) bool { return v == 5 })
	ids = append(ids, sendWave(t, c.httpAddr, "w2", 3, 2)...)
	p.WaitValue(t, "", `sum(sip_calls_total`+sel+`)`, func(v float64) bool { return v == 10 })

	// The series carry the sipkpi labels under Prometheus names.
	got, err := p.Query(`sip_calls_total` + sel)
	require.NoError(t, err)
	require.Len(t, got, 2)
	for _, s := range got {
		assert.Equal(t, "127.0.0.1", s.Metric["node"], "node = the CDR sender (service.instance.id)")
		assert.Equal(t, "udp", s.Metric["transport"])
		switch s.Metric["sip_call_result"] {
		case "answered":
			assert.Equal(t, map[string]string{"code": "200", "initiator": "caller"},
				map[string]string{"code": s.Metric["sip_response_status_code"], "initiator": s.Metric["sip_call_disconnect_initiator"]})
			assert.Equal(t, 6.0, s.Value)
		case "busy":
			assert.Equal(t, "486", s.Metric["sip_response_status_code"])
			assert.Equal(t, "none", s.Metric["sip_call_disconnect_initiator"])
			assert.Equal(t, 4.0, s.Value)
		default:
			t.Errorf("unexpected series %v", s.Metric)
		}
	}
	// The recording rules over the second wave: 3 of 5 answered, the
	// fixture's duration 164.735 s, 486 counts in SEER but not in ISA.
	within := func(want float64) func(float64) bool {
		return func(v float64) bool { return v > want-1e-9 && v < want+1e-9 }
	}
	p.WaitValue(t, "", `node:sip_asr:ratio_rate5m{node="127.0.0.1"}`, within(0.6))
	p.WaitValue(t, "", `node:sip_ner:ratio_rate5m{node="127.0.0.1"}`, within(1))
	p.WaitValue(t, "", `node:sip_seer:ratio_rate5m{node="127.0.0.1"}`, within(1))
	p.WaitValue(t, "", `node:sip_isa:ratio_rate5m{node="127.0.0.1"}`, within(0))
	p.WaitValue(t, "", `node:sip_scr:ratio_rate5m{node="127.0.0.1"}`, within(0.6))
	p.WaitValue(t, "", `node:sip_acd_seconds:mean5m{node="127.0.0.1"}`, within(164.735))
	rules, err := p.Rules()
	require.NoError(t, err)
	require.NotEmpty(t, rules)
	for name, h := range rules {
		assert.NotEqual(t, "err", h[0], "%s: %s", name, h[1])
	}
	return ids
}

const promGlobal = `
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
`

// TestKPIsScrapedByPrometheus: the default config serves the KPIs for a
// real Prometheus to scrape, and the shipped recording rules compute the
// expected ASR, NER, SEER, ISA, SCR and ACD from them.
func TestKPIsScrapedByPrometheus(t *testing.T) {
	t.Parallel()
	kpiAddr := ports.Addr(t)
	c := startConfig(t, "config.yaml", "", map[string]string{"SIPHON_KPI_ENDPOINT": kpiAddr, "SIPHON_KPI_FLUSH_INTERVAL": "500ms"})
	p := prometheus.Start(t, prometheus.Options{Config: fmt.Sprintf(promGlobal, rulesPath(t)) + fmt.Sprintf(`
scrape_configs:
  - job_name: otelcol-siphon-kpi
    static_configs: [{targets: [%q]}]
`, kpiAddr)})
	kpiWaves(t, c, p, `{job="otelcol-siphon-kpi"}`)
}

// TestKPIsRemoteWrittenWithCallIDExemplars: with the kpi-remote-write
// overlay the KPIs reach Prometheus by remote write, and their exemplars
// carry the Call-IDs of the calls (label sip_call_id).
func TestKPIsRemoteWrittenWithCallIDExemplars(t *testing.T) {
	t.Parallel()
	p := prometheus.Start(t, prometheus.Options{Config: fmt.Sprintf(promGlobal, rulesPath(t)),
		Flags: []string{"--web.enable-remote-write-receiver", "--enable-feature=exemplar-storage"}})
	state := t.TempDir()
	c := &otelcol{state: state}
	c.httpAddr, c.syslogAddr = ports.Addr(t), ports.Addr(t)
	health, telemetry := ports.Addr(t), port(ports.Addr(t))
	c.Process = collector.Start(t, collector.Options{
		Config: "siphon:config.yaml", Overlays: []string{"siphon:kpi-remote-write.yaml"},
		Env: map[string]string{
			"SIPHON_HEP_ENDPOINT": ports.Addr(t), "SIPHON_CDR_HTTP_ENDPOINT": c.httpAddr,
			"SIPHON_CDR_SYSLOG_ENDPOINT": c.syslogAddr, "SIPHON_HEALTH_ENDPOINT": health,
			"SIPHON_TELEMETRY_PORT": telemetry, "SIPHON_STATE_DIR": state, "SIPHON_HOMER_ENDPOINT": ports.Addr(t),
			"SIPHON_KPI_ENDPOINT": ports.Addr(t), "SIPHON_KPI_FLUSH_INTERVAL": "500ms",
			"SIPHON_REMOTE_WRITE_URL": p.URL + "/api/v1/write",
		},
		HealthAddr: health, TelemetryPort: telemetry,
	})
	ids := kpiWaves(t, c, p, `{}`)

	var ex []prometheus.Exemplar
	require.Eventually(t, func() bool {
		var err error
		ex, err = p.Exemplars(`sip_calls_total`, time.Hour)
		return err == nil && len(ex) >= 2
	}, 30*time.Second, 250*time.Millisecond)
	seen := map[string]bool{}
	for _, e := range ex {
		id := e.Labels["sip_call_id"]
		require.NotEmpty(t, id, "exemplar without a Call-ID: %v", e.Labels)
		assert.Contains(t, ids, id)
		switch e.SeriesLabels["sip_call_result"] {
		case "answered":
			assert.True(t, strings.HasSuffix(id, "@192.0.2.1"))
			n := 0
			fmt.Sscanf(id[strings.Index(id, "-")+1:], "%d", &n)
			assert.Less(t, n, 3, "an answered series points at an answered call: %s", id)
		case "busy":
			n := 0
			fmt.Sscanf(id[strings.Index(id, "-")+1:], "%d", &n)
			assert.GreaterOrEqual(t, n, 3, "a busy series points at a busy call: %s", id)
		}
		seen[e.SeriesLabels["sip_call_result"]] = true
	}
	assert.True(t, seen["answered"] && seen["busy"], "exemplars on both series: %v", ex)
	// Histograms keep theirs too: the call duration's bucket points at a call.
	dur, err := p.Exemplars(`sip_call_duration_seconds_bucket`, time.Hour)
	require.NoError(t, err)
	require.NotEmpty(t, dur)
	assert.Contains(t, ids, dur[0].Labels["sip_call_id"])
	assert.InDelta(t, 164.735, dur[0].Value, 1e-9)
}
