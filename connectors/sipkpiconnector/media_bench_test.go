package sipkpiconnector

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/connectors/sipkpiconnector/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/mediaflow"
)

// mediaBatches records n calls whose media RTPEngine anchors: their SIP
// (INVITE with SDP to 200 and ACK on both hops, then BYE and 200: 11
// messages) and their RTCP report blocks (rtpengine's 4 on A's stream and
// 4 on B's: 8 hep.rtcp records), each in batches of about 100 records.
func mediaBatches(b *testing.B, n int) (setup, rtcp, bye []plog.Logs, sipRecords, rtcpRecords int) {
	group := func(out *[]plog.Logs, count *int, call *mediaflow.Call, cur *plog.Logs, pkts []hep.Packet, last bool) {
		if cur.ResourceLogs().Len() == 0 {
			*cur = call.Logs("sbc-1")
		}
		call.Append(cur.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords(), pkts...)
		if cur.LogRecordCount() >= 100 || last {
			*count += cur.LogRecordCount()
			*out = append(*out, *cur)
			*cur = plog.NewLogs()
		}
	}
	s, r, y := plog.NewLogs(), plog.NewLogs(), plog.NewLogs()
	var setupN, byeN int
	for i := range n {
		call := mediaflow.New(b, fmt.Sprintf("%08x-4b1c-9a2e-%012d@127.0.0.10", i, i))
		last := i == n-1
		group(&setup, &setupN, call, &s, call.Setup(time.Second), last)
		blocks := call.RTCP()
		group(&rtcp, &rtcpRecords, call, &r, append([]hep.Packet{blocks[1], blocks[2], blocks[4], blocks[5]}, call.RTCPFromA(26, 370)...), last)
		group(&bye, &byeN, call, &y, call.Bye(0, true, "", ""), last)
	}
	return setup, rtcp, bye, setupN + byeN, rtcpRecords
}

// BenchmarkMediaReport measures, in one run, what a hep.rtcp record costs
// sipkpi against a sip.message record: CPU and allocations a record for
// 1,000 calls' SIP (media on, and media off: what the media state adds to
// the SIP path) and for their RTCP report blocks (8 a call, into 2,000
// streams of known calls). The streams' end is not included (one
// observation a stream, not a report).
func BenchmarkMediaReport(b *testing.B) {
	ctx := context.Background()
	const calls = 1000
	setup, rtcp, bye, sipN, rtcpN := mediaBatches(b, calls)
	start := func(b *testing.B, media bool) *kpiConnector {
		cfg := createDefaultConfig().(*Config)
		cfg.FlushInterval = time.Hour
		cfg.Media.Enabled = media
		c, err := newConnector(connectortest.NewNopSettings(metadata.Type), cfg, new(consumertest.MetricsSink))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
			b.Fatal(err)
		}
		return c
	}
	consume := func(b *testing.B, c *kpiConnector, batches []plog.Logs) {
		for _, ld := range batches {
			if err := c.ConsumeLogs(ctx, ld); err != nil {
				b.Fatal(err)
			}
		}
	}
	// each: the batches timed, and what runs untimed before them
	for _, bc := range []struct {
		name    string
		media   bool
		before  [][]plog.Logs
		timed   [][]plog.Logs
		records int
	}{
		{"sip_message/media_on", true, nil, [][]plog.Logs{setup, bye}, sipN},
		{"sip_message/media_off", false, nil, [][]plog.Logs{setup, bye}, sipN},
		{"hep_rtcp", true, [][]plog.Logs{setup}, [][]plog.Logs{rtcp}, rtcpN},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var ms runtime.MemStats
			var mallocs uint64
			var cpu time.Duration // the process's CPU time (GC included), not the wall clock of a shared machine
			for b.Loop() {
				b.StopTimer()
				c := start(b, bc.media)
				for _, ld := range bc.before {
					consume(b, c, ld)
				}
				runtime.ReadMemStats(&ms)
				before := ms.Mallocs
				cpuBefore := processCPU(b)
				b.StartTimer()
				for _, ld := range bc.timed {
					consume(b, c, ld)
				}
				b.StopTimer()
				cpu += processCPU(b) - cpuBefore
				runtime.ReadMemStats(&ms)
				mallocs += ms.Mallocs - before
				// what it measures: every call's SDP kept, every report in
				// a stream of a known call
				if bc.media {
					calls, streams := c.kpi.media.agg.Len()
					if calls != 1000 || bc.name == "hep_rtcp" && streams != 2*1000 {
						b.Fatalf("%d calls, %d streams", calls, streams)
					}
				}
				if err := c.Shutdown(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			n := float64(b.N * bc.records)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
			b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/record")
			b.ReportMetric(float64(mallocs)/n, "allocs/record")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkMediaMemory measures the heap the media state holds: per call
// whose SDP is kept (its setup consumed) and per stream (then its RTCP: 2
// streams a call); sipkpi's own state for the same SIP, measured with
// media off, is taken off.
func BenchmarkMediaMemory(b *testing.B) {
	const calls = 2000
	setup, rtcp, _, _, _ := mediaBatches(b, calls)
	feed := func(k *kpi, batches []plog.Logs) {
		now := time.Now()
		for _, ld := range batches {
			for _, r := range record.All(ld) {
				if r.Log.EventName() == record.EventSIPMessage {
					k.message(r.Resource.Attributes(), r.Log.Attributes(), r.Log.Timestamp().AsTime(), now)
				}
				k.mediaRecord(r.Resource.Attributes(), r.Log, r.Log.Timestamp().AsTime(), now)
			}
		}
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	newK := func(media bool) *kpi {
		cfg := createDefaultConfig().(*Config)
		cfg.Media.Enabled = media
		return newKPI(cfg)
	}
	base := heap()
	off := newK(false)
	feed(off, setup)
	sipOnly := float64(heap() - base)
	runtime.KeepAlive(off)
	off = nil
	for b.Loop() {
		before := heap()
		k := newK(true)
		feed(k, setup)
		withCalls := heap()
		feed(k, rtcp)
		withStreams := heap()
		if c, s := k.media.agg.Len(); c != calls || s != 2*calls {
			b.Fatalf("%d calls, %d streams", c, s)
		}
		b.ReportMetric((float64(withCalls-before)-sipOnly)/calls, "B/call")
		b.ReportMetric(float64(withStreams-withCalls)/(2*calls), "B/stream")
		runtime.KeepAlive(k)
	}
	b.ReportMetric(0, "ns/op")
}

// processCPU is the CPU time the process used so far (user and system,
// every thread).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
