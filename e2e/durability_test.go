//go:build integration

package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// The CDR outputs of outputs.yaml that go down in TestDurability.
var downstreams = []string{"siphon_http/billing", "siphon_syslog/cdr"}

// TestDurability: calls run while billing and syslog are down, the collector
// is SIGKILLed while their disk queues hold CDRs and restarted on its state
// directory, then the downstreams come back. Every call's CDR must reach
// every output (at least once: a kill can repeat what was not yet
// acknowledged), and sipproxy drops none.
func TestDurability(t *testing.T) {
	a := startAppliance(t, options{})
	target := addr(a.sipPort)
	const calls = 120
	uasPort := ports.Port(t)
	uas := a.sipp("uas-answer", uasPort, "-m", strconv.Itoa(calls))
	a.sipp("register", ports.Port(t), "-m", "1", "-key", "user", "alice", "-key", "contact_port", strconv.Itoa(uasPort),
		"-key", "expires", "300", target).Wait()
	uac := a.sipp("uac-call", ports.Port(t), "-m", strconv.Itoa(calls), "-r", "10", "-s", "alice", "-d", "500", target)

	// the downstreams go down once CDRs flow
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.GreaterOrEqual(c, len(a.fileCDRs().invites()), 5, "calls in the CDR file")
	}, 60*time.Second, 100*time.Millisecond)
	a.billingDown.Store(true)
	a.pauseSyslog()

	// SIGKILL (no drain, no goodbye) at a moment when both downstreams'
	// disk queues provably hold CDRs and billing has refused some
	queued := map[string]float64{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m, err := a.collector.Metrics()
		if !assert.NoError(c, err) {
			return
		}
		for _, e := range downstreams {
			v, err := m.Value("otelcol_exporter_queue_size", exposition.Labels{"exporter": e})
			if assert.NoError(c, err) && assert.Positive(c, v, "%s queue", e) {
				queued[e] = v
			}
		}
		assert.Positive(c, a.billingRefused.Load(), "billing refusals")
	}, 60*time.Second, 20*time.Millisecond)
	a.collector.Kill()
	t.Logf("killed with %v records queued", queued)

	// calls end while the collector is down: their CDRs wait in sipproxy's
	// retries
	byes := func() (float64, error) {
		m, err := a.proxy.Metrics()
		if err != nil {
			return 0, err
		}
		return m.Value("siphon_requests_total", exposition.Labels{"method": "BYE"})
	}
	atKill, err := byes()
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		n, err := byes()
		if assert.NoError(c, err) {
			assert.GreaterOrEqual(c, n-atKill, 5.0, "calls ended while the collector was down")
		}
	}, 60*time.Second, 50*time.Millisecond)

	a.collector = collector.Start(t, a.collectorOpts) // same state dir: the disk queues resume
	// the proxy's retries reach the new collector before the downstreams
	// come back
	a.collector.WaitMetric(60*time.Second, 1, "otelcol_receiver_accepted_log_records", exposition.Labels{"receiver": "siphon_cdr"})
	a.billingDown.Store(false)
	a.resumeSyslog()

	ok, failed := finish(uac)
	uas.Wait()
	require.Equal(t, calls, ok, "sipp completed every call")
	require.Zero(t, failed)

	// the proxy emitted one CDR per call (plus the REGISTER) and dropped none
	a.prom.WaitValue(t, "CDRs the proxy handed to its backend", `sum(siphon_cdr_written_total)`, near(calls+1, 0))
	assert.Zero(t, value(t, a.prom, `sum(siphon_cdr_dropped_total)`), "the proxy dropped no CDR")

	want := map[string]bool{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for id := range a.fileCDRs().invites() {
			want[id] = true
		}
		assert.Len(c, want, calls, "calls in the CDR file")
	}, 90*time.Second, 250*time.Millisecond)
	for name, set := range map[string]*cdrSet{"billing (HTTP)": a.billing, "syslog": a.syslog, "kafka": a.kafka} {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Len(c, set.invites(), calls, "calls in %s", name)
		}, 90*time.Second, 250*time.Millisecond)
		for id := range set.invites() {
			assert.True(t, want[id], "%s has a call the file has not: %s", name, id)
		}
	}
	dups := 0
	for _, n := range a.fileCDRs().invites() {
		dups += n - 1
	}
	t.Logf("%d calls; CDRs repeated after the kill (at least once): %d in the file; billing refused %d times", calls, dups, a.billingRefused.Load())
}
