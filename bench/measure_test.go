//go:build integration

package bench

import (
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/testenv/procstat"
)

// measuring is one collector run's cost as /proc tells it: begun just
// before the load (a CPU profile beside it when asked), ended once every
// record is accounted for.
type measuring struct {
	b        *testing.B
	pid      int
	cpu0     time.Duration
	start    time.Time
	profiled <-chan struct{}
	// the sampler of RssAnon: its highest reading once done is closed
	quit     chan struct{}
	done     chan struct{}
	peakAnon int64
}

// anonSampling is how often the anonymous RSS is read: the kernel keeps
// no peak of it, so the peak reported is the highest of these readings.
const anonSampling = 20 * time.Millisecond

// startMeasuring reads the collector's CPU time so far, starts a profile
// into profileDir (none when empty) and the benchmark's timer.
func startMeasuring(b *testing.B, pid int, pprofAddr, profileDir string) *measuring {
	b.Helper()
	cpu0, err := procstat.CPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	m := &measuring{b: b, pid: pid, cpu0: cpu0, profiled: profileCollector(b, pprofAddr, profileDir),
		quit: make(chan struct{}), done: make(chan struct{})}
	go m.sampleAnon()
	b.ResetTimer()
	m.start = time.Now()
	return m
}

// sampleAnon keeps the highest RssAnon of the collector until quit.
func (m *measuring) sampleAnon() {
	defer close(m.done)
	tick := time.NewTicker(anonSampling)
	defer tick.Stop()
	for {
		if anon, err := procstat.AnonRSS(m.pid); err == nil {
			m.peakAnon = max(m.peakAnon, anon)
		}
		select {
		case <-m.quit:
			return
		case <-tick.C:
		}
	}
}

// stop gives the run's wall time, the collector's CPU time (user+system)
// over it and its peak RSS (VmHWM), once the profile is written; peakAnon
// then holds the highest anonymous RSS sampled over the run. VmHWM counts
// the executable's resident pages, which differ between two binaries with
// the page cache's state; compare binaries by peakAnon.
func (m *measuring) stop() (elapsed, cpu time.Duration, peakRSS int64) {
	m.b.Helper()
	elapsed = time.Since(m.start)
	m.b.StopTimer()
	cpu1, err := procstat.CPU(m.pid)
	if err != nil {
		m.b.Fatal(err)
	}
	if peakRSS, err = procstat.PeakRSS(m.pid); err != nil {
		m.b.Fatal(err)
	}
	close(m.quit)
	<-m.done
	<-m.profiled
	return elapsed, cpu1 - m.cpu0, peakRSS
}
