//go:build integration

package distro_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/hepsink"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipproxy"
)

// TestFleetConfig runs siphon-fleet.yaml on loopback against a real node
// (sipproxy) listed in a file_sd targets file: the node's series come out of
// the KPI endpoint with the file's labels, a CDR posted by the node's way
// reaches the CDR file, the KPIs and Homer (HEP type 100 over TCP).
func TestFleetConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nodeMetrics, nodeAdmin := ports.Addr(t), ports.Addr(t)
	nodeSIP := ports.Addr(t)
	cfg := fmt.Sprintf("listen:\n  udp: [%q]\ndomain:\n  local: [\"127.0.0.1\"]\nmetrics:\n  prometheus: {listen: %q}\nadmin:\n  listen: %q\n",
		nodeSIP, nodeMetrics, nodeAdmin)
	sipproxy.Start(t, sipproxy.Options{Config: cfg, Admin: nodeAdmin, Metrics: nodeMetrics})

	targets := filepath.Join(dir, "targets.yaml")
	require.NoError(t, os.WriteFile(targets, []byte(fmt.Sprintf("- targets: [%q]\n  labels: {site: lab1}\n", nodeMetrics)), 0o600))
	homer := hepsink.NewStream(t, "127.0.0.1:0", nil)
	listen := map[string]string{}
	for _, k := range []string{"SIPHON_HEP_PORT", "SIPHON_CDR_HTTP_PORT", "SIPHON_CDR_SYSLOG_PORT", "SIPHON_KPI_PORT",
		"SIPHON_HEALTH_PORT", "SIPHON_TELEMETRY_PORT"} {
		listen[k] = strconv.Itoa(ports.Port(t))
	}
	env := map[string]string{"SIPHON_LISTEN_ADDRESS": "127.0.0.1", "SIPHON_TARGETS_FILE": targets,
		"SIPHON_HOMER_ENDPOINT": homer.Addr(), "SIPHON_STATE_DIR": filepath.Join(dir, "state"),
		"SIPHON_CDR_AUTH_HEADER": "Bearer fleet-token"}
	for k, v := range listen {
		env[k] = v
	}
	collector.Start(t, collector.Options{Config: "siphon:siphon-fleet.yaml", Env: env,
		HealthAddr: "127.0.0.1:" + listen["SIPHON_HEALTH_PORT"], TelemetryPort: listen["SIPHON_TELEMETRY_PORT"]})

	cdrAddr := "127.0.0.1:" + listen["SIPHON_CDR_HTTP_PORT"]
	code, err := siphonPOST(cdrAddr, cdrWithID("fleet-1@10.0.0.5"))
	require.NoError(t, err)
	assert.Equal(t, 401, code, "the fleet config requires the Authorization header")
	req, err := http.NewRequest("POST", "http://"+cdrAddr+"/v1/cdr", strings.NewReader(string(cdrWithID("fleet-1@10.0.0.5"))))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer fleet-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	lines := fileLines(t, filepath.Join(dir, "state", "cdr.jsonl"), 1, 30*time.Second)
	assert.Contains(t, lines[0], `"call_id":"fleet-1@10.0.0.5"`)
	require.Eventually(t, func() bool {
		for _, p := range homer.Packets() {
			if p.ProtoType == hep.TypeLog && string(p.CorrelationID) == "fleet-1@10.0.0.5" {
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "the CDR reaches Homer as HEP type 100")

	// the node's series, named by its scrape address, with the file's
	// labels; the KPIs of the CDR
	kpi := "http://127.0.0.1:" + listen["SIPHON_KPI_PORT"] + "/metrics"
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m, err := exposition.Scrape(context.Background(), kpi)
		if !assert.NoError(c, err) {
			return
		}
		assert.True(c, m.Has("siphon_uptime_seconds", exposition.Labels{"instance": nodeMetrics, "job": "siphon", "site": "lab1"}),
			"the node's uptime, by its scrape address, job and file_sd labels")
		assert.True(c, m.Has("sip_calls_total", exposition.Labels{"sip_call_result": "answered"}), "the CDR's KPIs")
	}, 60*time.Second, 500*time.Millisecond)
}
