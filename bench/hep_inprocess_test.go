//go:build integration

package bench

import (
	"context"
	"net"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/siphon-otel/siphon-otel/connectors/sipkpiconnector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver"
)

// BenchmarkHEPToKPI is BenchmarkHEPCollector's path in this process, for
// CPU and allocation profiles (go test -cpuprofile/-memprofile): b.N
// packets of calls over one TCP connection into the hep receiver and
// sipkpi, waiting until sipkpi consumed them all. allocs/op is per packet,
// process-wide (the sender's share is none: it writes prepared bytes).
func BenchmarkHEPToKPI(b *testing.B) {
	ctx := context.Background()
	host := componenttest.NewNopHost()
	n := max(b.N/callMessages, 1) * callMessages
	var got counter
	kf := sipkpiconnector.NewFactory()
	kpi, err := kf.CreateLogsToMetrics(ctx, connectortest.NewNopSettings(kf.Type()), kf.CreateDefaultConfig(),
		consumer.Metrics(nopMetrics{}))
	if err != nil {
		b.Fatal(err)
	}
	count, _ := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		err := kpi.ConsumeLogs(ctx, ld)
		got.add(ld.LogRecordCount())
		return err
	})
	addr := ports.Addr(b)
	rf := hepreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*hepreceiver.Config)
	rcfg.TLS = configoptional.None[hepreceiver.TLSConfig]()
	rcfg.UDP = configoptional.None[hepreceiver.UDPConfig]()
	rcfg.TCP.GetOrInsertDefault().Endpoint = addr
	rcv, err := rf.CreateLogs(ctx, receivertest.NewNopSettings(rf.Type()), rcfg, count)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []component.Component{kpi, rcv} {
		if err := c.Start(ctx, host); err != nil {
			b.Fatal(err)
		}
	}
	stream := newCallStream(b)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	var m0, m1 runtimeMem
	m0.read()
	b.ResetTimer()
	for i := range n {
		if _, err := conn.Write(stream.packet(i)); err != nil {
			b.Fatal(err)
		}
	}
	got.wait(b, int64(n), 0)
	b.StopTimer()
	m1.read()
	b.ReportMetric(float64(m1.mallocs-m0.mallocs)/float64(n), "allocs/packet")
	_ = conn.Close()
	for _, c := range []component.Component{rcv, kpi} {
		if err := c.Shutdown(ctx); err != nil {
			b.Error(err)
		}
	}
}

// nopMetrics takes sipkpi's flushes.
type nopMetrics struct{}

func (nopMetrics) Capabilities() consumer.Capabilities                   { return consumer.Capabilities{} }
func (nopMetrics) ConsumeMetrics(context.Context, pmetric.Metrics) error { return nil }
