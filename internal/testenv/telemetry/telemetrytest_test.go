package telemetry

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// recorder is an assert.TestingT that keeps what was reported.
type recorder struct{ errs []string }

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func newTelemetry(t *testing.T) *componenttest.Telemetry {
	tel := componenttest.NewTelemetry()
	meter := tel.NewTelemetrySettings().MeterProvider.Meter("test")
	c, err := meter.Int64Counter("otelcol_packets")
	require.NoError(t, err)
	c.Add(context.Background(), 2, metric.WithAttributes(attribute.String("transport", "udp"), attribute.String("reason", "a")))
	c.Add(context.Background(), 3, metric.WithAttributes(attribute.String("transport", "tcp"), attribute.String("reason", "a")))
	h, err := meter.Float64Histogram("otelcol_latency")
	require.NoError(t, err)
	h.Record(context.Background(), 1)
	return tel
}

func TestSum(t *testing.T) {
	tel := newTelemetry(t)
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	tests := []struct {
		name   string
		metric string
		attrs  []attribute.KeyValue
		want   int64
		errs   int
	}{
		{"all points", "otelcol_packets", nil, 5, 0},
		{"points with every attribute", "otelcol_packets", []attribute.KeyValue{attribute.String("transport", "udp"), attribute.String("reason", "a")}, 2, 0},
		{"no point matches", "otelcol_packets", []attribute.KeyValue{attribute.String("reason", "b")}, 0, 0},
		{"never recorded", "otelcol_other", nil, 0, 0},
		{"not an int sum", "otelcol_latency", nil, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			assert.Equal(t, tt.want, Sum(&r, tel, tt.metric, tt.attrs...))
			assert.Len(t, r.errs, tt.errs, r.errs)
		})
	}
}

// TestSumInEventuallyWithT: an error inside a condition is reported, with
// its cause, by the test's own goroutine, not lost as a timeout.
func TestSumInEventuallyWithT(t *testing.T) {
	tel := newTelemetry(t)
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	var r recorder
	var calls atomic.Int32
	ok := assert.EventuallyWithT(&r, func(c *assert.CollectT) {
		calls.Add(1)
		Sum(c, tel, "otelcol_latency")
	}, 50*time.Millisecond, 10*time.Millisecond)
	assert.False(t, ok)
	assert.Positive(t, calls.Load())
	assert.Contains(t, fmt.Sprint(r.errs), "otelcol_latency is not an int sum")
}

func TestValueAfterShutdownIsAnError(t *testing.T) {
	tel := newTelemetry(t)
	require.NoError(t, tel.Shutdown(context.Background()))
	_, err := Value(tel, "otelcol_packets")
	assert.ErrorContains(t, err, "collect otelcol_packets")
}

func TestReaderRefusesUndeclaredNames(t *testing.T) {
	tel := newTelemetry(t)
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	md := filepath.Join(t.TempDir(), "metadata.yaml")
	require.NoError(t, os.WriteFile(md, []byte("type: x\nstatus:\n  class: receiver\ntelemetry:\n  metrics:\n    packets:\n      enabled: true\n"), 0o600))
	rd, err := NewReader(tel, md) // a receiver's: obsreport's counters too
	require.NoError(t, err)

	var r recorder
	assert.Equal(t, int64(3), rd.Sum(&r, "packets", attribute.String("transport", "tcp")))
	assert.Zero(t, rd.Sum(&r, "receiver_accepted_log_records"), "declared, never recorded")
	assert.Empty(t, r.errs)
	assert.Zero(t, rd.Sum(&r, "exporter_sent_log_records"))
	require.Len(t, r.errs, 1, "an exporter's counter is not a receiver's")
	r.errs = nil
	assert.Zero(t, rd.Sum(&r, "packet"))
	require.Len(t, r.errs, 1)
	assert.Contains(t, r.errs[0], "telemetry metric packet is not declared")

	require.NoError(t, os.WriteFile(md, []byte("type: x\n"), 0o600))
	_, err = NewReader(tel, md)
	assert.ErrorContains(t, err, "declares no telemetry metrics")
}
