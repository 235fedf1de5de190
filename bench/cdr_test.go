//go:build integration

package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/rotfile"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// cdrBatch is the number of records per request in batch mode.
const cdrBatch = 100

// cdrRate is the offered rate of the paced runs: the goal is
// 10,000 CDR/s under 15% of one core and 150 MiB.
const cdrRate = 10000

// cdrResult is one sub-benchmark's last (largest) run.
type cdrResult struct {
	perSec, cpuPer100k, corePct, rssMiB, anonMiB float64
}

// cdrBinary is one otelcol-siphon the benchmark runs, with the Go runtime
// settings (GOMEMLIMIT, GOGC ...) its shipped systemd unit gives it.
type cdrBinary struct {
	name, path string
	env        map[string]string
}

// BenchmarkCDRPath posts b.N CDRs (SIPhon's record, each its own Call-ID)
// to otelcol-siphon over HTTP and waits until the exporter sent them all:
//   - otlp: the anchor, the core otlp receiver (protobuf, one log record
//     per CDR, its body the JSON) into the core nop exporter;
//   - file: siphon_cdr into siphon_file as distro/config.yaml ships it (no
//     sending queue: written and fsynced before the answer);
//   - file-diskq: the same through the disk queue shipped until issue 18,
//     file-memq through an in-memory queue (the disk's share of that);
//   - kafka: siphon_cdr into siphon_kafka (kfake in this process) through
//     the disk queue of distro/cdr-kafka.yaml; kafka-sync without a queue
//     (answered once Kafka acknowledged).
//
// single posts one record per request on a new connection (SIPhon's http
// backend: Connection: close), batch 100 per request on kept-alive ones.
// max sends as fast as the senders go, 10k paces them at 10,000 CDR/s.
// Each run has its own collector process; its CPU time (from /proc) is
// counted from healthy to the last record sent, its peak RSS is VmHWM.
//
// The candidate is $OTELCOL_SIPHON; $OTELCOL_SIPHON_BASE, otelcol-siphon
// built at the ref BENCH_BASE (bench/collector-at.sh), runs the same setups
// as well, and
// each figure is printed with the baseline's and the ratio. Each binary
// runs with the Go settings of its own deploy/systemd unit.
// CDR_BENCH_ROUNDS (default 1) runs every setup that many times,
// interleaved, and reports the median; CDR_BENCH_SINKS, CDR_BENCH_MODES
// and CDR_BENCH_PACES pick setups.
func BenchmarkCDRPath(b *testing.B) {
	cand := cdrBinary{name: "cand", path: collector.Binary(b)} // fail early when the distro is missing
	cand.env = goSettings(b, "")
	// CDR_BENCH_GOENV="GOGC=200 ..." overrides the candidate's, to weigh
	// runtime settings before shipping them
	for _, kv := range strings.Fields(os.Getenv("CDR_BENCH_GOENV")) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			cand.env[k] = v
		}
	}
	bins := []cdrBinary{cand}
	if base := os.Getenv(EnvBaseBinary); base != "" {
		// BENCH_BASE is the ref the baseline was built at: its deploy
		// unit gives the baseline's Go settings
		ref := os.Getenv("BENCH_BASE")
		if ref == "" {
			b.Fatalf("%s=%s needs BENCH_BASE, the ref it was built at", EnvBaseBinary, base)
		}
		if _, err := os.Stat(base); err != nil {
			b.Fatalf("%s=%s: %v", EnvBaseBinary, base, err)
		}
		bins = append(bins, cdrBinary{name: "base", path: base, env: goSettings(b, ref)})
	}
	rounds := 1
	if r, err := strconv.Atoi(os.Getenv("CDR_BENCH_ROUNDS")); err == nil && r > 0 {
		rounds = r
	}
	samples := map[string][]cdrResult{}
	var setups []string
	// rounds interleave the setups and the binaries, so that a slow spell
	// of this shared machine hits them alike; which binary goes first
	// alternates. Each figure is the median round's (by CPU).
	for round := range rounds {
		for _, sink := range knob("CDR_BENCH_SINKS", "otlp", "file", "file-diskq", "kafka") {
			for _, mode := range knob("CDR_BENCH_MODES", "single", "batch") {
				for _, pace := range knob("CDR_BENCH_PACES", "max", "10k") {
					setup := sink + "/" + mode + "/" + pace
					if round == 0 {
						setups = append(setups, setup)
					}
					for i := range bins {
						bin := bins[(i+round)%len(bins)]
						name := bin.name + "/" + setup
						b.Run(name, func(b *testing.B) {
							r := runCDR(b, bin, sink, mode, pace == "10k")
							if b.N > 1 { // not the probe run
								samples[name] = append(samples[name], r)
							}
						})
					}
				}
			}
		}
	}
	results := map[string]cdrResult{}
	for name, rs := range samples {
		sort.Slice(rs, func(i, j int) bool { return rs[i].cpuPer100k < rs[j].cpuPer100k })
		results[name] = rs[len(rs)/2]
	}
	for _, setup := range setups {
		for _, bin := range bins {
			r, ok := results[bin.name+"/"+setup]
			if !ok {
				continue
			}
			fmt.Printf("cdr path %s %-20s %8.0f CDR/s  %6.2f CPU-s/100k  %5.1f%% of a core%s  peak RSS %5.1f MiB (anon %5.1f)  median of %d\n",
				bin.name, setup, r.perSec, r.cpuPer100k, r.corePct, atRate(setup, r), r.rssMiB, r.anonMiB, len(samples[bin.name+"/"+setup]))
		}
		c, okc := results["cand/"+setup]
		base, okb := results["base/"+setup]
		if okc && okb {
			fmt.Printf("cdr path cand/base %-20s CPU %.2f  %%core %.2f  peak RSS %.2f (anon %.2f)  CDR/s %.2f\n",
				setup, c.cpuPer100k/base.cpuPer100k, c.corePct/base.corePct, c.rssMiB/base.rssMiB, c.anonMiB/base.anonMiB, c.perSec/base.perSec)
		}
		// the file path as shipped now against the baseline as it shipped
		if sink, rest, _ := strings.Cut(setup, "/"); sink == "file" {
			if then, ok := results["base/file-diskq/"+rest]; okc && ok {
				fmt.Printf("cdr path cand file / base file-diskq (as shipped) %-12s CPU %.2f  peak RSS %.2f (anon %.2f)\n",
					rest, c.cpuPer100k/then.cpuPer100k, c.rssMiB/then.rssMiB, c.anonMiB/then.anonMiB)
			}
		}
	}
}

// atRate is, for a paced setup, the share of a core its CPU per record
// costs at the offered rate: a run that fell behind the pace (a busy spell
// of the machine, or a collector that cannot keep up) spreads its CPU time
// over a longer run, so its measured share understates the cost.
func atRate(setup string, r cdrResult) string {
	if !strings.HasSuffix(setup, "/10k") {
		return ""
	}
	return fmt.Sprintf(" (%5.1f%% at %d/s)", r.cpuPer100k/100000*cdrRate*100, cdrRate)
}

// knob is the comma-separated list in the environment variable, or def.
func knob(env string, def ...string) []string {
	if s := os.Getenv(env); s != "" {
		return strings.Split(s, ",")
	}
	return def
}

// goSettings returns the Go runtime variables (GO*) that deploy/systemd's
// otelcol-siphon.service sets, in the working tree or, for a ref, at that
// ref: the benchmark runs each binary as it is shipped.
func goSettings(b *testing.B, ref string) map[string]string {
	const unit = "deploy/systemd/otelcol-siphon.service"
	var text []byte
	var err error
	if ref == "" {
		text, err = os.ReadFile(filepath.Join(testenv.RepoRoot(), unit))
	} else {
		text, err = exec.Command("git", "-C", testenv.RepoRoot(), "show", ref+":"+unit).Output()
	}
	if err != nil {
		b.Fatalf("%s at %q: %v", unit, ref, err)
	}
	env := map[string]string{}
	for line := range strings.Lines(string(text)) {
		kv, ok := strings.CutPrefix(strings.TrimSpace(line), "Environment=")
		if k, v, _ := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "GO") {
			env[k] = v
		}
	}
	return env
}

func runCDR(b *testing.B, bin cdrBinary, sink, mode string, paced bool) cdrResult {
	state := b.TempDir()
	health, cdrHTTP, otlpHTTP, pprofAddr := ports.Addr(b), ports.Addr(b), ports.Addr(b), ports.Addr(b)
	_, telemetry, _ := net.SplitHostPort(ports.Addr(b))
	env := map[string]string{
		"BENCH_HEALTH": health, "BENCH_STATE": state, "BENCH_CDR_HTTP": cdrHTTP,
		"BENCH_OTLP_HTTP": otlpHTTP, "BENCH_TELEMETRY_PORT": telemetry, "BENCH_PPROF": pprofAddr,
	}
	for k, v := range bin.env {
		env[k] = v
	}
	var brokers []string
	if strings.HasPrefix(sink, "kafka") {
		k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "siphon-cdr"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(k.Close)
		brokers = k.ListenAddrs()
		env["BENCH_KAFKA"] = brokers[0]
	}
	config := map[string]string{"otlp": "otlp-nop.yaml", "file": "cdr-file.yaml", "file-diskq": "cdr-file-diskq.yaml", "file-memq": "cdr-file-memq.yaml", "kafka": "cdr-kafka.yaml", "kafka-sync": "cdr-kafka-sync.yaml", "kafka-nobatch": "cdr-kafka-nobatch.yaml"}[sink]
	wd, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	p := collector.Start(b, collector.Options{
		Binary:        bin.path,
		Config:        filepath.Join(wd, "testdata", "cdr-common.yaml"),
		Overlays:      []string{filepath.Join(wd, "testdata", config)},
		Env:           env,
		HealthAddr:    health,
		TelemetryPort: telemetry,
		Args:          collectorArgs(),
	})
	url, contentType, body := "http://"+cdrHTTP+"/v1/cdr", "application/json", cdrJSON
	if sink == "otlp" {
		url, contentType, body = "http://"+otlpHTTP+"/v1/logs", "application/x-protobuf", cdrOTLP
	}
	per := 1
	if mode == "batch" {
		per = cdrBatch
	}
	rate := 0.0
	if paced {
		rate = cdrRate
	}

	run := startMeasuring(b, p.Pid(), pprofAddr, os.Getenv("CDR_BENCH_PROFILE"))
	refused := postCDRs(b, url, contentType, b.N, per, rate, mode == "single", body)
	metric, label := "otelcol_exporter_sent_log_records", exposition.Labels{"exporter": map[string]string{"file": "siphon_file", "file-diskq": "siphon_file", "file-memq": "siphon_file", "kafka": "siphon_kafka", "kafka-sync": "siphon_kafka", "kafka-nobatch": "siphon_kafka"}[sink]}
	if sink == "otlp" { // nop has no exporterhelper: the receiver's count is synchronous with it
		metric, label = "otelcol_receiver_accepted_log_records", exposition.Labels{"receiver": "otlp"}
	}
	p.WaitMetric(5*time.Minute, float64(b.N), metric, label)
	elapsed, cpuTime, rss := run.stop()
	if err := p.Stop(30 * time.Second); err != nil {
		b.Errorf("collector stop: %v", err)
	}
	switch sink { // every record arrived, once
	case "file", "file-diskq", "file-memq":
		if n := countLines(b, filepath.Join(state, "cdr.jsonl")); n != b.N {
			b.Fatalf("siphon_file wrote %d lines, want %d", n, b.N)
		}
	case "kafka", "kafka-sync", "kafka-nobatch":
		if n := countKafka(b, brokers, b.N); n != b.N {
			b.Fatalf("kafka holds %d records, want %d", n, b.N)
		}
	}
	cpu := cpuTime.Seconds()
	r := cdrResult{
		perSec:     float64(b.N) / elapsed.Seconds(),
		cpuPer100k: cpu / float64(b.N) * 100000,
		corePct:    100 * cpu / elapsed.Seconds(),
		rssMiB:     float64(rss) / (1 << 20),
		anonMiB:    float64(run.peakAnon) / (1 << 20),
	}
	b.ReportMetric(r.perSec, "CDR/s")
	b.ReportMetric(r.cpuPer100k, "CPU-s/100k")
	b.ReportMetric(r.corePct, "%core")
	b.ReportMetric(r.rssMiB, "peak-RSS-MiB")
	b.ReportMetric(r.anonMiB, "peak-anon-MiB")
	b.ReportMetric(float64(refused), "refused")
	return r
}

// collectorArgs are further command-line arguments for every collector a
// benchmark starts, from BENCH_COLLECTOR_ARGS: a feature gate to weigh, say
// (--feature-gates=+pdata.useProtoPooling).
func collectorArgs() []string { return strings.Fields(os.Getenv("BENCH_COLLECTOR_ARGS")) }

// profileCollector saves a CPU profile and an allocation profile of the
// collector, from now, to dir/<sub-benchmark>.prof and .allocs.prof when dir
// is set: 5 s, or BENCH_PROFILE_SECONDS (a longer run, -benchtime, wants
// a longer profile); the returned channel closes when both are written (at
// once when not profiling).
func profileCollector(b *testing.B, addr, dir string) <-chan struct{} {
	done := make(chan struct{})
	if dir == "" {
		close(done)
		return done
	}
	seconds := "5"
	if s := os.Getenv("BENCH_PROFILE_SECONDS"); s != "" {
		seconds = s
	}
	name := strings.TrimSuffix(profileName(b.Name()), ".prof")
	var wg sync.WaitGroup
	for kind, suffix := range map[string]string{"profile": ".prof", "allocs": ".allocs.prof"} {
		wg.Go(func() {
			resp, err := http.Get("http://" + addr + "/debug/pprof/" + kind + "?seconds=" + seconds)
			if err != nil {
				b.Errorf("%s: %v", kind, err)
				return
			}
			defer resp.Body.Close()
			out, err := os.Create(filepath.Join(dir, name+suffix))
			if err != nil {
				b.Errorf("%s: %v", kind, err)
				return
			}
			defer out.Close()
			if _, err := io.Copy(out, resp.Body); err != nil {
				b.Errorf("%s: %v", kind, err)
			}
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// profileName is a sub-benchmark's profile file: its name without the
// benchmark's, "/" as "-".
func profileName(bench string) string {
	_, sub, _ := strings.Cut(bench, "/")
	return strings.ReplaceAll(sub, "/", "-") + ".prof"
}

// postCDRs sends n records in requests of per records, from several
// goroutines, at rate records/s (0: unpaced). A request the collector
// refuses (503, backpressure) is sent again; postCDRs returns how many were.
func postCDRs(b *testing.B, url, contentType string, n, per int, rate float64, closeEach bool, body func(first, count int) []byte) int64 {
	workers := 4
	if closeEach {
		workers = 8 // new connections cost round trips: more in flight
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DisableKeepAlives: closeEach, MaxIdleConnsPerHost: workers,
	}}
	defer client.CloseIdleConnections()
	jobs := make(chan int, workers)
	var refused atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range jobs {
				count := min(per, n-first)
				payload := body(first, count)
				for {
					resp, err := client.Post(url, contentType, bytes.NewReader(payload))
					if err != nil {
						failed.CompareAndSwap(nil, err)
						break
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
					if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests {
						failed.CompareAndSwap(nil, fmt.Errorf("POST %s: %s", url, resp.Status))
						break
					}
					refused.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	start := time.Now()
	for first := 0; first < n; first += per {
		if rate > 0 { // paced by schedule, so a late request does not slow the rest
			if d := time.Until(start.Add(time.Duration(float64(first) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		jobs <- first
	}
	close(jobs)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return refused.Load()
}

// cdrWithID is SIPhon's fixture record with Call-ID bench-<i>.
func cdrWithID(i int) []byte { return fixture.CDRWithID("bench-" + strconv.Itoa(i)) }

// cdrJSON is one record, or a JSON array of count records.
func cdrJSON(first, count int) []byte {
	if count == 1 {
		return cdrWithID(first)
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := range count {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(cdrWithID(first + i))
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

// cdrOTLP is the same records as an OTLP/HTTP protobuf request, one log
// record each with the JSON as its body.
func cdrOTLP(first, count int) []byte {
	ld := plog.NewLogs()
	records := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := range count {
		records.AppendEmpty().Body().SetStr(string(cdrWithID(first + i)))
	}
	raw, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		panic(err)
	}
	return raw
}

func countLines(b *testing.B, path string) int {
	// a long run (-benchtime) fills more than one file: siphon_file
	// rotates at rotate_size_mb (100 by default), uncompressed here
	files, err := rotfile.Rotated(path)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, name := range append(files, path) {
		f, err := os.Open(name)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			n++
		}
		f.Close()
		if err := sc.Err(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
	}
	return n
}

// countKafka consumes the topic until want records came or none came for
// 5 seconds.
func countKafka(b *testing.B, brokers []string, want int) int {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("siphon-cdr"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	n := 0
	for n < want {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		if ctx.Err() != nil && fs.NumRecords() == 0 {
			break
		}
		n += fs.NumRecords()
	}
	return n
}
