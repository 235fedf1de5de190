//go:build integration

package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/prometheus"
	"github.com/siphon-otel/siphon-otel/internal/testenv/rtpengine"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipp"
)

// alertState returns the state of the named alert ("" when inactive).
func alertState(t *testing.T, p *prometheus.Server, name string) string {
	t.Helper()
	as, err := p.Alerts()
	require.NoError(t, err)
	state := ""
	for _, a := range as {
		if a.Labels["alertname"] == name && (state == "" || a.State == "firing") {
			state = a.State
		}
	}
	return state
}

func waitAlert(t *testing.T, p *prometheus.Server, name, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := alertState(t, p, name)
		if got == want {
			t.Logf("%s: %q", name, want)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %q after %s, want %q", name, got, within, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestFaultsRaiseAndClearAlerts induces faults in the running appliance and
// follows the matching alert in Prometheus to firing and back to inactive.
// Prometheus runs a time-compressed copy of alerts/ (same expressions,
// windows and `for` in seconds; see compression).
func TestFaultsRaiseAndClearAlerts(t *testing.T) {
	engine := rtpengine.Start(t, 31000, 31099)
	slow := testenv.GoBuild(t, "./e2e/testdata/slowproxy")
	a := startAppliance(t, options{compressRules: true, rtpengine: engine.Addr,
		proxy:       []string{slow, "-slow-user", "slow", "-slow-for", "2s"},
		proxyConfig: "script: {sync_pool_size: 2, sync_pool_max: 2, executor_queue_capacity: 2}"})
	p := a.prom
	for _, name := range []string{"SiphonRTPEngineUnhealthy", "OtelcolExporterSendFailing", "SIPScannerActivity",
		"SiphonPoolSaturated", "SiphonJobsShed"} {
		require.Equal(t, "", alertState(t, p, name), "%s before any fault", name)
	}

	t.Run("RTPEngine killed", func(t *testing.T) {
		p.WaitValue(t, "the engine is up", `siphon_rtpengine_instances_up`, near(1, 0))
		engine.Kill()
		waitAlert(t, p, "SiphonRTPEngineUnhealthy", "firing", 60*time.Second)
		rtpengine.StartOn(t, engine.Addr, 31100, 31199)
		waitAlert(t, p, "SiphonRTPEngineUnhealthy", "", 60*time.Second)
	})

	t.Run("CDR exporter target down", func(t *testing.T) {
		a.billingDown.Store(true)
		target := addr(a.sipPort)
		// calls to an unknown user (404): each CDR is refused by billing and
		// retried from the queue
		calls := a.sipp(sipp.Expect(t, "uac-fail", 404), ports.Port(t), "-m", "10", "-r", "2", "-s", "nobody", target)
		waitAlert(t, p, "OtelcolExporterSendFailing", "firing", 90*time.Second)
		calls.Wait()
		a.billingDown.Store(false)
		waitAlert(t, p, "OtelcolExporterSendFailing", "", 90*time.Second)
		// nothing was lost on the way: billing has every call the file has
		checkCDROutputs(t, a, len(a.fileCDRs().invites()))
	})

	t.Run("handler pool saturated", func(t *testing.T) {
		target := addr(a.sipPort)
		// every INVITE to "slow" holds a worker for 2 s; 2 workers, 2 queued
		calls := a.sipp(sipp.Expect(t, "uac-fail", 404), ports.Port(t), "-m", "60", "-r", "10", "-s", "slow", target)
		waitAlert(t, p, "SiphonPoolSaturated", "firing", 60*time.Second)
		waitAlert(t, p, "SiphonJobsShed", "firing", 60*time.Second)
		calls.Kill() // the callers give up; the pool drains
		waitAlert(t, p, "SiphonPoolSaturated", "", 60*time.Second)
		waitAlert(t, p, "SiphonJobsShed", "", 60*time.Second)
	})

	t.Run("scanner", func(t *testing.T) {
		out, err := testenv.Run(t, childproc.Spec{Path: "svmap", Args: []string{"-p" + strconv.Itoa(a.sipPort), "-P", strconv.Itoa(ports.Port(t)), "-t", "1", "127.0.0.1"}})
		require.NoError(t, err, "%s", out)
		waitAlert(t, p, "SIPScannerActivity", "firing", 60*time.Second)
		waitAlert(t, p, "SIPScannerActivity", "", 90*time.Second)
	})
}
