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
}

// startMeasuring reads the collector's CPU time so far, starts a profile
// into profileDir (none when empty) and the benchmark's timer.
func startMeasuring(b *testing.B, pid int, pprofAddr, profileDir string) *measuring {
	b.Helper()
	cpu0, err := procstat.CPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	m := &measuring{b: b, pid: pid, cpu0: cpu0, profiled: profileCollector(b, pprofAddr, profileDir)}
	b.ResetTimer()
	m.start = time.Now()
	return m
}

// stop gives the run's wall time, the collector's CPU time (user+system)
// over it and its peak RSS (VmHWM), once the profile is written.
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
	<-m.profiled
	return elapsed, cpu1 - m.cpu0, peakRSS
}
