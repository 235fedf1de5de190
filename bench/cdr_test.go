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
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/procstat"
)

// cdrBatch is the number of records per request in batch mode.
const cdrBatch = 100

// cdrRate is the offered rate of the paced runs: the goal is
// 10,000 CDR/s under 15% of one core and 150 MiB.
const cdrRate = 10000

// cdrResult is one sub-benchmark's last (largest) run.
type cdrResult struct {
	perSec, cpuPer100k, corePct, rssMiB float64
}

// BenchmarkCDRPath posts b.N CDRs (SIPhon's record, each its own Call-ID)
// to otelcol-siphon over HTTP and waits until the exporter sent them all:
//   - otlp: the baseline, the core otlp receiver (protobuf, one log record
//     per CDR, its body the JSON) into the core nop exporter;
//   - file, kafka: siphon_cdr into siphon_file and into siphon_kafka (kfake
//     in this process), each through a disk queue as the shipped configs;
//   - file-memq: siphon_file through an in-memory queue (the disk queue's
//     share of the cost).
//
// single posts one record per request on a new connection (SIPhon's http
// backend: Connection: close), batch 100 per request on kept-alive ones.
// max sends as fast as the senders go, 10k paces them at 10,000 CDR/s.
// Each run has its own collector process; its CPU time (from /proc) is
// counted from healthy to the last record sent, its peak RSS is VmHWM.
// The parent prints each figure as a ratio of the baseline's.
// CDR_BENCH_ROUNDS (default 1) runs every setup that many times,
// interleaved, and reports the median; CDR_BENCH_SINKS picks setups.
func BenchmarkCDRPath(b *testing.B) {
	collector.Binary(b) // fail early when the distro is missing
	rounds := 1
	if r, err := strconv.Atoi(os.Getenv("CDR_BENCH_ROUNDS")); err == nil && r > 0 {
		rounds = r
	}
	samples := map[string][]cdrResult{}
	var names []string
	// rounds interleave the setups, so that a slow spell of this shared
	// machine hits them alike; each figure is the median round's (by CPU)
	for round := range rounds {
		for _, sink := range sinks() {
			for _, mode := range []string{"single", "batch"} {
				for _, pace := range []string{"max", "10k"} {
					name := sink + "/" + mode + "/" + pace
					if round == 0 {
						names = append(names, name)
					}
					b.Run(name, func(b *testing.B) {
						r := runCDR(b, sink, mode, pace == "10k")
						if b.N > 1 { // not the probe run
							samples[name] = append(samples[name], r)
						}
					})
				}
			}
		}
	}
	results := map[string]cdrResult{}
	for name, rs := range samples {
		sort.Slice(rs, func(i, j int) bool { return rs[i].cpuPer100k < rs[j].cpuPer100k })
		results[name] = rs[len(rs)/2]
	}
	sort.Strings(names)
	for _, n := range names {
		r, ok := results[n]
		if !ok {
			continue
		}
		_, rest, _ := strings.Cut(n, "/")
		base := results["otlp/"+rest]
		fmt.Printf("cdr path %-18s %8.0f CDR/s (%.2f of otlp)  %6.2f CPU-s/100k (%.2f of otlp)  %5.1f%% of a core  peak RSS %5.1f MiB (%.2f of otlp)  median of %d\n",
			n, r.perSec, r.perSec/base.perSec, r.cpuPer100k, r.cpuPer100k/base.cpuPer100k, r.corePct, r.rssMiB, r.rssMiB/base.rssMiB, len(samples[n]))
	}
}

func runCDR(b *testing.B, sink, mode string, paced bool) cdrResult {
	state := b.TempDir()
	health, cdrHTTP, otlpHTTP, pprofAddr := ports.Addr(b), ports.Addr(b), ports.Addr(b), ports.Addr(b)
	_, telemetry, _ := net.SplitHostPort(ports.Addr(b))
	env := map[string]string{
		"BENCH_HEALTH": health, "BENCH_STATE": state, "BENCH_CDR_HTTP": cdrHTTP,
		"BENCH_OTLP_HTTP": otlpHTTP, "BENCH_TELEMETRY_PORT": telemetry, "BENCH_PPROF": pprofAddr,
	}
	var brokers []string
	if sink == "kafka" {
		k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "siphon-cdr"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(k.Close)
		brokers = k.ListenAddrs()
		env["BENCH_KAFKA"] = brokers[0]
	}
	config := map[string]string{"otlp": "otlp-nop.yaml", "file": "cdr-file.yaml", "file-memq": "cdr-file-memq.yaml", "kafka": "cdr-kafka.yaml"}[sink]
	wd, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	p := collector.Start(b, collector.Options{
		Config:        filepath.Join(wd, "testdata", "cdr-common.yaml"),
		Overlays:      []string{filepath.Join(wd, "testdata", config)},
		Env:           env,
		HealthAddr:    health,
		TelemetryPort: telemetry,
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

	cpu0, err := procstat.CPU(p.Pid())
	if err != nil {
		b.Fatal(err)
	}
	profiled := profileCollector(b, pprofAddr, os.Getenv("CDR_BENCH_PROFILE"))
	b.ResetTimer()
	start := time.Now()
	refused := postCDRs(b, url, contentType, b.N, per, rate, mode == "single", body)
	metric, label := "otelcol_exporter_sent_log_records", exposition.Labels{"exporter": map[string]string{"file": "siphon_file", "file-memq": "siphon_file", "kafka": "siphon_kafka"}[sink]}
	if sink == "otlp" { // nop has no exporterhelper: the receiver's count is synchronous with it
		metric, label = "otelcol_receiver_accepted_log_records", exposition.Labels{"receiver": "otlp"}
	}
	p.WaitMetric(5*time.Minute, float64(b.N), metric, label)
	elapsed := time.Since(start)
	b.StopTimer()
	cpu1, err := procstat.CPU(p.Pid())
	if err != nil {
		b.Fatal(err)
	}
	rss, err := procstat.PeakRSS(p.Pid())
	if err != nil {
		b.Fatal(err)
	}
	<-profiled
	if err := p.Stop(30 * time.Second); err != nil {
		b.Errorf("collector stop: %v", err)
	}
	switch sink { // every record arrived, once
	case "file", "file-memq":
		if n := countLines(b, filepath.Join(state, "cdr.jsonl")); n != b.N {
			b.Fatalf("siphon_file wrote %d lines, want %d", n, b.N)
		}
	case "kafka":
		if n := countKafka(b, brokers, b.N); n != b.N {
			b.Fatalf("kafka holds %d records, want %d", n, b.N)
		}
	}
	cpu := (cpu1 - cpu0).Seconds()
	r := cdrResult{
		perSec:     float64(b.N) / elapsed.Seconds(),
		cpuPer100k: cpu / float64(b.N) * 100000,
		corePct:    100 * cpu / elapsed.Seconds(),
		rssMiB:     float64(rss) / (1 << 20),
	}
	b.ReportMetric(r.perSec, "CDR/s")
	b.ReportMetric(r.cpuPer100k, "CPU-s/100k")
	b.ReportMetric(r.corePct, "%core")
	b.ReportMetric(r.rssMiB, "peak-RSS-MiB")
	b.ReportMetric(float64(refused), "refused")
	return r
}

// profileCollector saves a 5 s CPU profile of the collector, from now, to
// dir/<sub-benchmark>.prof when dir is set; the returned channel closes
// when it is written (at once when not profiling).
func profileCollector(b *testing.B, addr, dir string) <-chan struct{} {
	done := make(chan struct{})
	if dir == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		resp, err := http.Get("http://" + addr + "/debug/pprof/profile?seconds=5")
		if err != nil {
			b.Errorf("profile: %v", err)
			return
		}
		defer resp.Body.Close()
		out, err := os.Create(filepath.Join(dir, profileName(b.Name())))
		if err != nil {
			b.Errorf("profile: %v", err)
			return
		}
		defer out.Close()
		if _, err := io.Copy(out, resp.Body); err != nil {
			b.Errorf("profile: %v", err)
		}
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
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
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

// sinks are the collector setups to run: CDR_BENCH_SINKS=otlp,file picks
// some (the ratios need otlp among them).
func sinks() []string {
	if s := os.Getenv("CDR_BENCH_SINKS"); s != "" {
		return strings.Split(s, ",")
	}
	return []string{"otlp", "file", "file-memq", "kafka"}
}
