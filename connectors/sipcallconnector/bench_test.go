package sipcallconnector

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/siphon-otel/siphon-otel/connectors/sipkpiconnector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipflow"
)

// contender is a connector measured on the same records; out counts what
// it emitted (spans, metric data points).
type contender struct {
	name   string
	create func(b *testing.B, out *atomic.Int64) connector.Logs
}

func contenders() []contender {
	return []contender{
		{"sipcall", func(b *testing.B, out *atomic.Int64) connector.Logs {
			f := NewFactory()
			cfg := f.CreateDefaultConfig().(*Config)
			cfg.FlushInterval = time.Hour // the benchmark's own shutdown emits
			next, _ := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
				out.Add(int64(td.SpanCount()))
				return nil
			})
			c, err := f.CreateLogsToTraces(context.Background(), connectortest.NewNopSettings(f.Type()), cfg, next)
			if err != nil {
				b.Fatal(err)
			}
			return c
		}},
		{"sipkpi", func(b *testing.B, out *atomic.Int64) connector.Logs {
			f := sipkpiconnector.NewFactory()
			next, _ := consumer.NewMetrics(func(_ context.Context, md pmetric.Metrics) error {
				out.Add(int64(md.DataPointCount()))
				return nil
			})
			c, err := f.CreateLogsToMetrics(context.Background(), connectortest.NewNopSettings(f.Type()),
				f.CreateDefaultConfig(), next)
			if err != nil {
				b.Fatal(err)
			}
			return c
		}},
	}
}

// callBatches records n calls through P, captured on both hops, in batches
// of about 100 records: whole (answered and hung up: 13 messages) or only
// their setup (9 messages, up to the ACK: calls in flight).
func callBatches(n int, whole bool) (batches []plog.Logs, records int) {
	t := &testing.T{}
	ld := sipflow.Logs("sbc-1")
	for i := range n {
		f := sipflow.New(t, ld, t0.Add(time.Duration(i)*10*time.Millisecond), fmt.Sprintf("%08x-4b1c-9a2e-%012d@192.0.2.10", i, i))
		f.Invite(0)
		f.Answer(1.2, addrB, 180, "b1")
		f.Answer(5, addrB, 200, "b1")
		f.ACK2xx(5.1, 1, "b1")
		if whole {
			f.InDialog(60, "BYE", 2, "b1", true)
		}
		if ld.LogRecordCount() >= 100 || i == n-1 {
			records += ld.LogRecordCount()
			batches = append(batches, ld)
			ld = sipflow.Logs("sbc-1")
		}
	}
	return batches, records
}

// BenchmarkVersusSipkpi measures sipcall against sipkpi on the same
// records in one run: CPU and allocations per message over whole calls
// (consumed, then emitted at shutdown; every call must come out as its 7
// spans), and the heap held per call in flight (each call's setup consumed,
// nothing ended).
func BenchmarkVersusSipkpi(b *testing.B) {
	ctx := context.Background()
	host := componenttest.NewNopHost()
	const calls = 1000
	whole, msgs := callBatches(calls, true)
	for _, c := range contenders() {
		b.Run("messages/"+c.name, func(b *testing.B) {
			var ms runtime.MemStats
			var mallocs uint64
			for b.Loop() {
				b.StopTimer()
				var out atomic.Int64
				conn := c.create(b, &out)
				mustStart(b, conn, host)
				runtime.ReadMemStats(&ms)
				before := ms.Mallocs
				b.StartTimer()
				for _, ld := range whole {
					if err := conn.ConsumeLogs(ctx, ld); err != nil {
						b.Fatal(err)
					}
				}
				if err := conn.Shutdown(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				runtime.ReadMemStats(&ms)
				mallocs += ms.Mallocs - before
				// what it measures: every call traced (7 spans), KPIs emitted
				if n := out.Load(); c.name == "sipcall" && n != 7*calls || n == 0 {
					b.Fatalf("%s emitted %d", c.name, n)
				}
				b.StartTimer()
			}
			n := float64(b.N * msgs)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/message")
			b.ReportMetric(float64(mallocs)/n, "allocs/message")
			b.ReportMetric(0, "ns/op")
		})
	}
	const inFlight = 5000
	setups, _ := callBatches(inFlight, false)
	for _, c := range contenders() {
		b.Run("in_flight/"+c.name, func(b *testing.B) {
			for b.Loop() {
				var out atomic.Int64
				conn := c.create(b, &out)
				mustStart(b, conn, host)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for _, ld := range setups {
					if err := conn.ConsumeLogs(ctx, ld); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/inFlight, "B/call")
				runtime.KeepAlive(setups)
				if sc, ok := conn.(*callConnector); ok && sc.tr.calls.Len() != inFlight {
					b.Fatalf("%d calls in flight", sc.tr.calls.Len())
				}
				if err := conn.Shutdown(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

func mustStart(b *testing.B, c component.Component, host component.Host) {
	if err := c.Start(context.Background(), host); err != nil {
		b.Fatal(err)
	}
}
