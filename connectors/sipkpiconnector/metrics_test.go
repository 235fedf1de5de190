package sipkpiconnector

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/connectors/sipkpiconnector/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/testenv/telemetry"
)

type harness struct {
	c       *kpiConnector
	tel     *componenttest.Telemetry
	metrics *telemetry.Reader

	mu  sync.Mutex // the flush timer reads the clock too
	now time.Time
}

// startConnector runs a connector whose clock the test moves.
func startConnector(t *testing.T, cfg *Config, next consumer.Metrics) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := connectortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	c, err := newConnector(set, cfg, next)
	require.NoError(t, err)
	metrics, err := telemetry.NewReader(tel, "metadata.yaml")
	require.NoError(t, err)
	h := &harness{c: c, tel: tel, metrics: metrics, now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	c.now = h.time
	require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, c.Shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	return h
}

func (h *harness) time() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

// advance moves the connector's clock.
func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

// counter reads one of the connector's own metrics (otelcol_ prefix added).
func (h *harness) counter(t assert.TestingT, name string, attrs ...attribute.KeyValue) int64 {
	return h.metrics.Sum(t, name, attrs...)
}

// dataPoint is one data point, flattened for assertions.
type dataPoint struct {
	attrs      map[string]string
	start      time.Time
	cumulative bool
	value      int64
	count      uint64
	sum        float64
	bounds     []float64
	buckets    []uint64
	exemplars  []string // call ids
}

type metricSet map[string][]dataPoint

func readMetrics(md pmetric.Metrics) metricSet {
	out := metricSet{}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				switch m.Type() {
				case pmetric.MetricTypeSum:
					cumulative := m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityCumulative
					for n := 0; n < m.Sum().DataPoints().Len(); n++ {
						dp := m.Sum().DataPoints().At(n)
						out[m.Name()] = append(out[m.Name()], dataPoint{attrs: strAttrs(dp.Attributes().AsRaw()),
							start: dp.StartTimestamp().AsTime(), cumulative: cumulative,
							value: dp.IntValue(), exemplars: exemplarIDs(dp.Exemplars())})
					}
				case pmetric.MetricTypeHistogram:
					cumulative := m.Histogram().AggregationTemporality() == pmetric.AggregationTemporalityCumulative
					for n := 0; n < m.Histogram().DataPoints().Len(); n++ {
						dp := m.Histogram().DataPoints().At(n)
						out[m.Name()] = append(out[m.Name()], dataPoint{attrs: strAttrs(dp.Attributes().AsRaw()),
							start: dp.StartTimestamp().AsTime(), cumulative: cumulative,
							count: dp.Count(), sum: dp.Sum(), bounds: dp.ExplicitBounds().AsRaw(),
							buckets: dp.BucketCounts().AsRaw(), exemplars: exemplarIDs(dp.Exemplars())})
					}
				default: // the connector emits no other kind: one would go unread
					panic(fmt.Sprintf("readMetrics: %s is a %s", m.Name(), m.Type()))
				}
			}
		}
	}
	return out
}

func strAttrs(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = v
		case bool:
			if v {
				out[k] = "true"
			} else {
				out[k] = "false"
			}
		}
	}
	return out
}

func exemplarIDs(es pmetric.ExemplarSlice) []string {
	var ids []string
	for i := 0; i < es.Len(); i++ {
		if v, ok := es.At(i).FilteredAttributes().Get(attrExemplarCallID); ok {
			ids = append(ids, v.Str())
		}
	}
	return ids
}

// matches applies PromQL-style anchored regex matchers (label=~"re").
func matches(attrs map[string]string, matchers []string) bool {
	for i := 0; i+1 < len(matchers); i += 2 {
		if !regexp.MustCompile("^(?:" + matchers[i+1] + ")$").MatchString(attrs[matchers[i]]) {
			return false
		}
	}
	return true
}

// present fails the test unless name is a metric of the connector's with
// at least one series: a sum over nothing reads 0 and proves nothing.
func (s metricSet) present(t *testing.T, name string) {
	t.Helper()
	defined(t, name)
	require.NotEmpty(t, s[name], "no series of %s", name)
}

// defined fails the test unless the connector defines a metric name.
func defined(t *testing.T, name string) {
	t.Helper()
	require.True(t, slices.ContainsFunc(Metrics(), func(m Metric) bool { return m.Name == name }), "the connector has no metric %s", name)
}

// absent asserts that the connector's metric name has no series.
func (s metricSet) absent(t *testing.T, name string) {
	t.Helper()
	defined(t, name)
	assert.Empty(t, s[name], "series of %s", name)
}

// sum is sum(metric{matchers}) for counters; the metric must have series
// (those matching may add up to 0).
func (s metricSet) sum(t *testing.T, name string, matchers ...string) float64 {
	t.Helper()
	var v int64
	for _, dp := range s.matching(t, name, matchers...) {
		v += dp.value
	}
	return float64(v)
}

// point returns the one series of name that matches.
func (s metricSet) point(t *testing.T, name string, matchers ...string) dataPoint {
	t.Helper()
	found := s.matching(t, name, matchers...)
	require.Len(t, found, 1, "series of %s%v", name, matchers)
	return found[0]
}

// matching returns the series of name that match; the metric must have
// series.
func (s metricSet) matching(t *testing.T, name string, matchers ...string) []dataPoint {
	t.Helper()
	require.Zero(t, len(matchers)%2, "matchers come in pairs: %v", matchers)
	s.present(t, name)
	var found []dataPoint
	for _, dp := range s[name] {
		if matches(dp.attrs, matchers) {
			found = append(found, dp)
		}
	}
	return found
}

// hist adds up the histogram points that match; at least one must.
func (s metricSet) hist(t *testing.T, name string, matchers ...string) (count uint64, sum float64, buckets []uint64) {
	t.Helper()
	found := s.matching(t, name, matchers...)
	require.NotEmpty(t, found, "no series of %s%v", name, matchers)
	for _, dp := range found {
		count += dp.count
		sum += dp.sum
		if buckets == nil {
			buckets = make([]uint64, len(dp.buckets))
		}
		for i, b := range dp.buckets {
			buckets[i] += b
		}
	}
	return count, sum, buckets
}
