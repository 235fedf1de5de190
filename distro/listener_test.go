//go:build integration

package distro_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// TestHEPListenerKilled destroys the HEP TCP listener of the collector,
// running on its default config, from outside the process with `ss -K`
// (SOCK_DESTROY: what an operator's tool or a failure under the collector
// does to a socket), and checks what an operator sees: health_check turns
// unhealthy and names the listener, the log and a metric say so, and the
// rest of the collector goes on (HEP over UDP on the same port still lands).
func TestHEPListenerKilled(t *testing.T) {
	require.Zero(t, os.Geteuid(), "ss -K needs root (CAP_NET_ADMIN)")
	_, err := exec.LookPath("ss")
	require.NoError(t, err, "ss (iproute2)")
	state := t.TempDir()
	hepAddr := ports.Addr(t)
	health := ports.Addr(t)
	telemetry := port(ports.Addr(t))
	p := collector.Start(t, collector.Options{
		Config: "siphon:config.yaml",
		Env: map[string]string{
			// Go listens with MPTCP where the kernel has it, and SOCK_DESTROY
			// cannot destroy an MPTCP listener (ss -K answers EINVAL): plain
			// TCP, as where net.mptcp.enabled is 0
			"GODEBUG":             "multipathtcp=0",
			"SIPHON_HEP_ENDPOINT": hepAddr, "SIPHON_HEALTH_ENDPOINT": health,
			"SIPHON_TELEMETRY_PORT": telemetry, "SIPHON_STATE_DIR": state,
			"SIPHON_KPI_ENDPOINT": ports.Addr(t), "SIPHON_HOMER_ENDPOINT": ports.Addr(t),
			"SIPHON_CDR_HTTP_ENDPOINT": ports.Addr(t), "SIPHON_CDR_SYSLOG_ENDPOINT": ports.Addr(t),
		},
		HealthAddr: health, TelemetryPort: telemetry,
	})
	code, body, err := healthAnswer(p.Health)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)

	killListener(t, p.Pid(), port(hepAddr))

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		code, body, err = healthAnswer(p.Health)
		assert.NoError(c, err)
		assert.Equal(c, http.StatusInternalServerError, code, body)
	}, 30*time.Second, 50*time.Millisecond, "health_check turns unhealthy")
	assert.Contains(t, body, `"healthy":false`)
	assert.Contains(t, body, `"status":"StatusPermanentError"`)
	assert.Contains(t, body, "hep receiver: tcp listener on "+hepAddr+" stopped: accept tcp "+hepAddr+": accept4: invalid argument")
	assert.Contains(t, p.Log(), "Listener stopped: nothing is received on it until the collector restarts")
	p.WaitMetric(10*time.Second, 1, "otelcol_hep_receiver_listener_errors", exposition.Labels{"transport": "tcp", "outcome": "stopped"})
	_, err = net.DialTimeout("tcp", hepAddr, 5*time.Second)
	assert.Error(t, err, "the destroyed listener refuses connections")

	udp, err := net.Dial("udp", hepAddr)
	require.NoError(t, err)
	defer udp.Close()
	_, err = udp.Write(fixture.HEPSpecExample())
	require.NoError(t, err)
	var recs []map[string]any
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		recs = readLines(c, filepath.Join(state, "sip.jsonl"))
		assert.Len(c, recs, 1, "HEP over UDP after the TCP listener died")
	}, 30*time.Second, 50*time.Millisecond)
	assert.Equal(t, "INVITE sip:bob", recs[0]["message"])

	assert.NoError(t, p.Stop(30*time.Second), "clean exit on SIGTERM")
}

// healthAnswer is the health check's status code and body.
func healthAnswer(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// killListener destroys the IPv4 TCP listener on 127.0.0.1:port with
// `ss -K`. ss destroys every socket its filter matches, so the filter is
// checked first to match exactly one socket, the listener of pid.
func killListener(t *testing.T, pid int, port string) {
	t.Helper()
	n, err := strconv.Atoi(port)
	require.NoError(t, err)
	require.Positive(t, n)
	filter := []string{"-4", "-Htn", "state", "listening", "src", "127.0.0.1", "and", "sport", "=", ":" + port}
	out, err := exec.Command("ss", append([]string{"-p"}, filter...)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 1, "the filter must match the collector's listener only:\n%s", out)
	require.Contains(t, lines[0], fmt.Sprintf("pid=%d,", pid), "not the collector's listener")
	out, err = exec.Command("ss", append([]string{"-K"}, filter...)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	// ss exits 0 even when the kernel refuses (SOCK_DESTROY answers ...)
	require.NotContains(t, string(out), "SOCK_DESTROY", "ss -K")
	require.Len(t, strings.Split(strings.TrimSpace(string(out)), "\n"), 1, "ss -K destroyed one socket:\n%s", out)
	require.Contains(t, string(out), "127.0.0.1:"+port, "ss -K destroyed the listener:\n%s", out)
}
