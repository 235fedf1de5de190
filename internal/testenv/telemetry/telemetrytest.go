// Package telemetry reads a component's own metrics in tests.
//
// Nothing here stops a goroutine: failures are reported through
// assert.TestingT's Errorf, so that the *assert.CollectT of an
// assert.EventuallyWithT condition (which runs on another goroutine) may be
// passed wherever a test's t may.
package telemetry

import (
	"context"
	"fmt"
	"os"
	"slices"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"gopkg.in/yaml.v3"
)

// Prefix is what the collector puts before a component's metric names.
const Prefix = "otelcol_"

// Reader reads the int sums of one component's telemetry by their names in
// its metadata.yaml. A name the component does not declare is an error, so
// that a misspelt name cannot read as a counter never incremented.
type Reader struct {
	tel      *componenttest.Telemetry
	declared []string
}

// helperMetrics are the log counters the collector's helpers record for a
// component of each class (receiverhelper's obsreport, exporterhelper), in
// addition to what its metadata.yaml declares.
var helperMetrics = map[string][]string{
	"receiver": {"receiver_accepted_log_records", "receiver_refused_log_records"},
	"exporter": {"exporter_sent_log_records", "exporter_send_failed_log_records", "exporter_enqueue_failed_log_records"},
}

// NewReader reads the telemetry metric names declared in metadataYAML (the
// component's metadata.yaml), plus those the collector's helpers record
// for a component of its class.
func NewReader(tel *componenttest.Telemetry, metadataYAML string) (*Reader, error) {
	b, err := os.ReadFile(metadataYAML)
	if err != nil {
		return nil, err
	}
	var md struct {
		Status struct {
			Class string `yaml:"class"`
		} `yaml:"status"`
		Telemetry struct {
			Metrics map[string]any `yaml:"metrics"`
		} `yaml:"telemetry"`
	}
	if err := yaml.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("%s: %w", metadataYAML, err)
	}
	if len(md.Telemetry.Metrics) == 0 {
		return nil, fmt.Errorf("%s declares no telemetry metrics", metadataYAML)
	}
	r := &Reader{tel: tel, declared: slices.Clone(helperMetrics[md.Status.Class])}
	for name := range md.Telemetry.Metrics {
		r.declared = append(r.declared, name)
	}
	slices.Sort(r.declared)
	return r, nil
}

// Sum is the package's Sum of name (without the otelcol_ prefix), which must
// be declared.
func (r *Reader) Sum(t assert.TestingT, name string, attrs ...attribute.KeyValue) int64 {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	if !slices.Contains(r.declared, name) {
		t.Errorf("telemetry metric %s is not declared (declared: %v)", name, r.declared)
		return 0
	}
	return Sum(t, r.tel, Prefix+name, attrs...)
}

// Sum adds up the data points of the int sum metric name whose attributes
// include every one of attrs. A metric never recorded reads 0, as the
// counter it is; a metric of another kind is reported through t.Errorf and
// reads 0.
func Sum(t assert.TestingT, tel *componenttest.Telemetry, name string, attrs ...attribute.KeyValue) int64 {
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	v, err := Value(tel, name, attrs...)
	if err != nil {
		t.Errorf("%v", err)
	}
	return v
}

// Value is Sum returning its error.
func Value(tel *componenttest.Telemetry, name string, attrs ...attribute.KeyValue) (int64, error) {
	var rm metricdata.ResourceMetrics
	if err := tel.Reader.Collect(context.Background(), &rm); err != nil {
		return 0, fmt.Errorf("collect %s: %w", name, err)
	}
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				return 0, fmt.Errorf("%s is not an int sum but %T", name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				if hasAll(dp.Attributes, attrs) {
					total += dp.Value
				}
			}
		}
	}
	return total, nil // 0 when never recorded
}

func hasAll(set attribute.Set, attrs []attribute.KeyValue) bool {
	for _, a := range attrs {
		if v, ok := set.Value(a.Key); !ok || v != a.Value {
			return false
		}
	}
	return true
}
