package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// TestDurability: calls run while billing and syslog are down, the collector
// is SIGKILLed and restarted on its state directory, then the downstreams
// come back. Every call's CDR must reach every output (at least once: a
// kill can repeat what was not yet acknowledged), and sipproxy drops none.
func TestDurability(t *testing.T) {
	a := startAppliance(t, options{})
	target := addr(a.sipPort)
	const calls = 120
	uasPort := ports.Port(t)
	uas := a.sipp("uas-answer", uasPort, "-m", strconv.Itoa(calls))
	a.sipp("register", ports.Port(t), "-m", "1", "-key", "user", "alice", "-key", "contact_port", strconv.Itoa(uasPort),
		"-key", "expires", "300", target).Wait()
	uac := a.sipp("uac-call", ports.Port(t), "-m", strconv.Itoa(calls), "-r", "10", "-s", "alice", "-d", "500", target)

	time.Sleep(2 * time.Second)
	a.billingDown.Store(true)
	a.pauseSyslog()
	time.Sleep(2 * time.Second)
	a.collector.Kill() // SIGKILL: no drain, no goodbye
	time.Sleep(2 * time.Second)
	a.collector = collector.Start(t, a.collectorOpts) // same state dir: the disk queues resume
	time.Sleep(3 * time.Second)
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
	require.Eventually(t, func() bool {
		for id := range a.fileCDRs().invites() {
			want[id] = true
		}
		return len(want) == calls
	}, 90*time.Second, 250*time.Millisecond, "the CDR file has %d of %d calls", len(want), calls)
	for name, set := range map[string]*cdrSet{"billing (HTTP)": a.billing, "syslog": a.syslog, "kafka": a.kafka} {
		require.Eventually(t, func() bool { return len(set.invites()) == calls }, 90*time.Second, 250*time.Millisecond,
			"%s has %d of %d calls", name, len(set.invites()), calls)
		for id := range set.invites() {
			assert.True(t, want[id], "%s has a call the file has not: %s", name, id)
		}
	}
	dups := 0
	for _, n := range a.fileCDRs().invites() {
		dups += n - 1
	}
	t.Logf("%d calls; CDRs repeated after the kill (at least once): %d in the file; billing refused %d times", calls, dups, a.billingRefused.Load())
	assert.Positive(t, a.billingRefused.Load())
}
