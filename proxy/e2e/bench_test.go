//go:build integration

package e2e

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/testenv/kamailio"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/procstat"
)

// benchSystem is one system under test of BenchmarkProxyCalls: it starts
// a proxy on a SIP port and returns that port, the CPU time its processes
// used so far, and how many INVITEs it handled (nil when it cannot tell).
type benchSystem struct {
	name  string
	start func(b *testing.B) (port int, cpu func() time.Duration, invites func() float64, stop func())
}

// BenchmarkProxyCalls places b.N calls (INVITE/100/180/200/ACK/20 ms/BYE/200)
// through each system with sipp at 1,500 calls/s, one after another in one
// run, and reports calls/s and CPU time per call of the proxy's processes:
//   - off: sipproxy, no HEP, no CDRs (the baseline of the overhead ratio);
//   - hep-udp, hep-tcp: sipproxy with all telemetry, HEP over UDP
//     (SIPhon's default) or TCP to a hep receiver, CDRs to a file;
//   - kamailio: Kamailio (Debian) as a minimal stateful proxy and registrar
//     (testdata/kamailio-bench.cfg), the anchor;
//   - kamailio-siptrace: the same with siptrace sending HEP3 over UDP,
//     Kamailio's own telemetry cost.
//
// Each system runs PROXY_BENCH_ROUNDS times (default 5), interleaved; the
// median round is reported.
// The offered rate stays below what sipp and a proxy sustain together on
// two cores, so every call succeeds and CPU per call is the figure that
// differs; run it with -benchtime Nx (make bench does).
// PROXY_BENCH_SYSTEMS=off,kamailio runs only those systems.
// SIPPROXY_PROFILE_<NAME> (OFF, HEP_UDP, HEP_TCP) names a file for a CPU
// profile of that sipproxy run (go tool pprof).
func BenchmarkProxyCalls(b *testing.B) {
	const rate, concurrent = 1500, 300
	calls := b.N
	sipproxy := func(name string, o proxyOpts) benchSystem {
		return benchSystem{name: name, start: func(b *testing.B) (int, func() time.Duration, func() float64, func()) {
			o.LogLevel = "info" // as in production: debug logging would dominate
			o.CPUProfile = os.Getenv("SIPPROXY_PROFILE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
			if o.HEPTransport != "" {
				o.HEPEndpoint = startHEP(b, o.HEPTransport).Endpoint
			}
			p := startProxy(b, o)
			cpu := func() time.Duration {
				v, err := p.scrape(b).Value("process_cpu_seconds_total", nil)
				if err != nil {
					b.Fatal(err)
				}
				return time.Duration(v * float64(time.Second))
			}
			invites := func() float64 { return count(p.scrape(b), "siphon_requests_total", labels{"method": "INVITE"}) }
			stop := func() { // an idle proxy left running would still cost the next runs CPU
				// the profile, if any, is written as the proxy exits
				if err := p.Stop(30 * time.Second); err != nil {
					b.Errorf("sipproxy %s did not stop cleanly: %v", name, err)
				}
			}
			return p.SIPPort, cpu, invites, stop
		}}
	}
	systems := []benchSystem{
		sipproxy("off", proxyOpts{CDR: "cdr: {enabled: false}"}),
		sipproxy("hep-udp", proxyOpts{HEPTransport: "udp"}),
		sipproxy("hep-tcp", proxyOpts{HEPTransport: "tcp"}),
		{name: "kamailio", start: func(b *testing.B) (int, func() time.Duration, func() float64, func()) {
			return startKamailio(b, false)
		}},
		{name: "kamailio-siptrace", start: func(b *testing.B) (int, func() time.Duration, func() float64, func()) {
			return startKamailio(b, true)
		}},
	}
	if only := os.Getenv("PROXY_BENCH_SYSTEMS"); only != "" { // e.g. off,kamailio
		var keep []benchSystem
		for _, s := range systems {
			if strings.Contains(","+only+",", ","+s.name+",") {
				keep = append(keep, s)
			}
		}
		systems = keep
	}
	rounds := 5
	if r, err := strconv.Atoi(os.Getenv("PROXY_BENCH_ROUNDS")); err == nil && r > 0 {
		rounds = r
	}
	type result struct{ perSec, cpuPerCall float64 }
	samples := map[string][]result{}
	b.ResetTimer()
	// rounds interleave the systems, so that a slow spell of this shared
	// machine hits them alike; each system's figure is its median round
	for range rounds {
		for _, s := range systems {
			port, cpu, invites, stop := s.start(b)
			uasPort := ports.Port(b)
			uas := startSipp(b, "uas-answer", "u1", uasPort, "")
			startSipp(b, "register", "u1", ports.Port(b), "127.0.0.1:"+strconv.Itoa(port), "-m", "1",
				"-key", "user", "bench", "-key", "contact_port", strconv.Itoa(uasPort), "-key", "expires", "300").Wait()
			cpu0 := cpu()
			start := time.Now()
			uac := startSipp(b, "uac-call", "u1", ports.Port(b), "127.0.0.1:"+strconv.Itoa(port),
				"-m", strconv.Itoa(calls), "-r", strconv.Itoa(rate), "-l", strconv.Itoa(concurrent), "-s", "bench", "-d", "20")
			uac.Wait()
			elapsed := time.Since(start)
			used := cpu() - cpu0
			if invites != nil {
				if got := invites(); got != float64(calls) {
					b.Fatalf("%s saw %v INVITEs, want %d", s.name, got, calls)
				}
			}
			if ok, failed := uac.Stats(); ok != calls || failed != 0 {
				b.Fatalf("%s: %d of %d calls succeeded, %d failed", s.name, ok, calls, failed)
			}
			stop()
			uas.Kill()
			samples[s.name] = append(samples[s.name], result{float64(calls) / elapsed.Seconds(), used.Seconds() / float64(calls)})
		}
	}
	results := map[string]result{}
	for name, rs := range samples {
		sort.Slice(rs, func(i, j int) bool { return rs[i].cpuPerCall < rs[j].cpuPerCall })
		results[name] = rs[len(rs)/2]
		b.ReportMetric(rs[len(rs)/2].perSec, "calls/s-"+name)
		b.ReportMetric(rs[len(rs)/2].cpuPerCall*1e6, "cpu-µs/call-"+name)
	}
	if calls < 100 {
		return // the benchmark's probe run (b.N = 1): nothing worth reporting
	}
	off, kam := results["off"], results["kamailio"]
	for _, s := range systems {
		r := results[s.name]
		fmt.Printf("proxy calls %-18s %6.0f calls/s  %5.0f µs CPU/call  %.2f of sipproxy off  %.2f of kamailio\n",
			s.name, r.perSec, r.cpuPerCall*1e6, r.cpuPerCall/off.cpuPerCall, r.cpuPerCall/kam.cpuPerCall)
	}
	b.ReportMetric(results["hep-udp"].cpuPerCall/off.cpuPerCall, "cpu-hep-udp/off")
	b.ReportMetric(results["hep-tcp"].cpuPerCall/off.cpuPerCall, "cpu-hep-tcp/off")
	b.ReportMetric(off.cpuPerCall/kam.cpuPerCall, "cpu-off/kamailio")
}

// startKamailio runs Kamailio on testdata/kamailio-bench.cfg, with siptrace
// to a hep receiver when trace is set. Its CPU time is that of the main
// process and its children (the SIP workers, timers), from /proc.
func startKamailio(b *testing.B, trace bool) (int, func() time.Duration, func() float64, func()) {
	port := ports.Port(b)
	// one SIP worker: with several, a 180 and its 200 handled by two
	// workers can leave out of order, and sipp's scenario fails the call
	data := map[string]any{"Children": 1, "HEPPort": 0}
	if trace {
		hep := startHEP(b, "udp")
		_, p, _ := strings.Cut(hep.Endpoint, ":")
		data["HEPPort"] = p
	}
	// -m: shared memory in MB; the default 64 runs out at ~2,000 calls in flight or in tm wait
	kam := kamailio.Start(b, "testdata/kamailio-bench.cfg", port, data, "-m", "512")
	cpu := func() time.Duration {
		total, err := procstat.TreeCPU(kam.Pid())
		if err != nil {
			b.Fatal(err)
		}
		return total
	}
	stop := func() { _ = kam.Stop(5 * time.Second) } // SIGTERM ends it with an exit status
	return port, cpu, nil, stop
}
