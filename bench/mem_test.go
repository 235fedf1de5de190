//go:build integration

package bench

import "runtime"

// runtimeMem is the part of runtime.MemStats the benchmarks report.
type runtimeMem struct{ mallocs uint64 }

func (m *runtimeMem) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.mallocs = s.Mallocs
}
