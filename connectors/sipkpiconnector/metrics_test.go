package sipkpiconnector

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/siphon-otel/siphon-otel/connectors/sipkpiconnector/internal/metadata"
)

type harness struct {
	c   *kpiConnector
	tel *componenttest.Telemetry
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
	h := &harness{c: c, tel: tel, now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	c.now = func() time.Time { return h.now }
	require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, c.Shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	return h
}

// point is one data point, flattened for assertions.
type dataPoint struct {
	attrs     map[string]string
	value     int64
	count     uint64
	sum       float64
	bounds    []float64
	buckets   []uint64
	exemplars []string // call ids
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
					for n := 0; n < m.Sum().DataPoints().Len(); n++ {
						dp := m.Sum().DataPoints().At(n)
						out[m.Name()] = append(out[m.Name()], dataPoint{attrs: strAttrs(dp.Attributes().AsRaw()),
							value: dp.IntValue(), exemplars: exemplarIDs(dp.Exemplars())})
					}
				case pmetric.MetricTypeHistogram:
					for n := 0; n < m.Histogram().DataPoints().Len(); n++ {
						dp := m.Histogram().DataPoints().At(n)
						out[m.Name()] = append(out[m.Name()], dataPoint{attrs: strAttrs(dp.Attributes().AsRaw()),
							count: dp.Count(), sum: dp.Sum(), bounds: dp.ExplicitBounds().AsRaw(),
							buckets: dp.BucketCounts().AsRaw(), exemplars: exemplarIDs(dp.Exemplars())})
					}
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

// sum is sum(metric{matchers}) for counters.
func (s metricSet) sum(name string, matchers ...string) float64 {
	var v int64
	for _, dp := range s[name] {
		if matches(dp.attrs, matchers) {
			v += dp.value
		}
	}
	return float64(v)
}

// hist adds up the histogram points that match.
func (s metricSet) hist(name string, matchers ...string) (count uint64, sum float64, buckets []uint64) {
	for _, dp := range s[name] {
		if !matches(dp.attrs, matchers) {
			continue
		}
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
