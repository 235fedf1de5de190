// Package telemetrytest reads a component's own metrics in tests.
package telemetrytest

import (
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Sum adds up the data points of the int sum metric name whose attributes
// include every one of attrs. A metric never recorded reads 0.
func Sum(t testing.TB, tel *componenttest.Telemetry, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is not an int sum but %T", name, m.Data)
	}
	var total int64
	for _, dp := range sum.DataPoints {
		match := true
		for _, a := range attrs {
			if v, ok := dp.Attributes.Value(a.Key); !ok || v != a.Value {
				match = false
				break
			}
		}
		if match {
			total += dp.Value
		}
	}
	return total
}
