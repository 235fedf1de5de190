package e2e

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkProxyCalls places b.N calls (INVITE/100/180/200/ACK/20 ms/BYE/200)
// through sipproxy with sipp, first with telemetry off (no HEP, no CDRs),
// then with all of it on (HEP to our hep receiver, CDRs to a file), in
// one run, and reports both rates and the proxy's CPU time per call (its
// own process_cpu_seconds_total), whose ratio is the telemetry overhead.
// SIPPROXY_PROFILE_OFF / SIPPROXY_PROFILE_ON name files for CPU profiles of
// the two runs (go tool pprof).
// The offered rate stays below what sipp and the proxy sustain together on
// two cores, so every call succeeds; run it with -benchtime Nx (make bench
// does).
func BenchmarkProxyCalls(b *testing.B) {
	const rate, concurrent = 1500, 300
	calls := b.N
	run := func(o proxyOpts) (callsPerSec, cpuPerCall float64) {
		p := startProxy(b, o)
		uasPort := freeSIPPort(b)
		startSipp(b, "uas-answer", "u1", uasPort, "") // runs until the benchmark ends
		startSipp(b, "register", "u1", freeSIPPort(b), "127.0.0.1:"+strconv.Itoa(p.SIPPort), "-m", "1",
			"-key", "user", "bench", "-key", "contact_port", strconv.Itoa(uasPort), "-key", "expires", "300").Wait()
		cpu0 := p.metrics()["process_cpu_seconds_total"]
		start := time.Now()
		uac := startSipp(b, "uac-call", "u1", freeSIPPort(b), "127.0.0.1:"+strconv.Itoa(p.SIPPort),
			"-m", strconv.Itoa(calls), "-r", strconv.Itoa(rate), "-l", strconv.Itoa(concurrent), "-s", "bench", "-d", "20")
		uac.Wait()
		elapsed := time.Since(start)
		m := p.metrics()
		if got := m["siphon_requests_total{method=INVITE}"]; got != float64(calls) {
			b.Fatalf("proxy saw %v INVITEs, want %d", got, calls)
		}
		if o.CPUProfile != "" { // the profile is written as the proxy exits
			p.signal(syscall.SIGTERM)
			<-p.done
		}
		return float64(calls) / elapsed.Seconds(), (m["process_cpu_seconds_total"] - cpu0) / float64(calls)
	}
	b.ResetTimer()
	// info, as in production: debug logging would dominate both runs
	off, cpuOff := run(proxyOpts{CDR: "cdr: {enabled: false}", LogLevel: "info", CPUProfile: os.Getenv("SIPPROXY_PROFILE_OFF")})
	hep := startHEP(b, "udp")
	on, cpuOn := run(proxyOpts{HEPEndpoint: hep.Endpoint, LogLevel: "info", CPUProfile: os.Getenv("SIPPROXY_PROFILE_ON")})
	b.ReportMetric(off, "calls/s-telemetry-off")
	b.ReportMetric(on, "calls/s-telemetry-on")
	b.ReportMetric(cpuOff*1e6, "cpu-µs/call-off")
	b.ReportMetric(cpuOn*1e6, "cpu-µs/call-on")
	b.ReportMetric(cpuOn/cpuOff, "cpu-on/off")

	fmt.Printf("sipproxy: %d calls offered at %d/s: telemetry off %.0f calls/s, %.0f µs CPU/call; on %.0f calls/s, %.0f µs CPU/call; rate on/off %.3f, CPU on/off %.2f\n",
		calls, rate, off, cpuOff*1e6, on, cpuOn*1e6, on/off, cpuOn/cpuOff)
}
