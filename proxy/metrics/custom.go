package metrics

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
)

// MaxLabelCombinations is SIPhon's cap on the label sets of one script
// metric; further combinations are refused (and counted by the caller).
const MaxLabelCombinations = 128

// ErrTooManySeries is returned past MaxLabelCombinations.
var ErrTooManySeries = errors.New("metrics: more than 128 label combinations")

// Custom creates metrics for handler code, shown on the same endpoint, with
// names used as given, like SIPhon's metrics.counter(name, help, labels).
type Custom struct {
	r  *prometheus.Registry
	mu sync.Mutex
	m  map[string]*Metric
}

func newCustom(r *prometheus.Registry) *Custom { return &Custom{r: r, m: map[string]*Metric{}} }

// Metric is one custom metric with labels.
type Metric struct {
	kind string
	mu   sync.Mutex
	seen map[string]bool
	vec  interface {
		GetMetricWithLabelValues(...string) (prometheus.Metric, error)
	}
}

func (c *Custom) get(name, kind string, labels []string, make func() (prometheus.Collector, any)) (*Metric, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.m[name]; ok {
		if m.kind != kind {
			return nil, fmt.Errorf("metrics: %s exists as a %s", name, m.kind)
		}
		return m, nil
	}
	// text format 0.0.4 (SIPhon's: docs/siphon-formats.md#metrics) only
	// carries legacy names
	if !model.LegacyValidation.IsValidMetricName(name) {
		return nil, fmt.Errorf("metrics: %q is not a valid metric name", name)
	}
	for _, l := range labels {
		if !model.LegacyValidation.IsValidLabelName(l) || strings.HasPrefix(l, "__") {
			return nil, fmt.Errorf("metrics: %s: %q is not a valid label name", name, l)
		}
	}
	col, vec := make()
	if err := c.r.Register(col); err != nil {
		return nil, fmt.Errorf("metrics: %s: %w", name, err)
	}
	m := &Metric{kind: kind, seen: map[string]bool{}, vec: vec.(interface {
		GetMetricWithLabelValues(...string) (prometheus.Metric, error)
	})}
	c.m[name] = m
	return m, nil
}

// Counter returns (creating once) a counter vector.
func (c *Custom) Counter(name, help string, labels ...string) (*Metric, error) {
	return c.get(name, "counter", labels, func() (prometheus.Collector, any) {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		return v, &counterVec{v}
	})
}

// Gauge returns (creating once) a gauge vector.
func (c *Custom) Gauge(name, help string, labels ...string) (*Metric, error) {
	return c.get(name, "gauge", labels, func() (prometheus.Collector, any) {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		return v, &gaugeVec{v}
	})
}

// Histogram returns (creating once) a histogram vector.
func (c *Custom) Histogram(name, help string, buckets []float64, labels ...string) (*Metric, error) {
	return c.get(name, "histogram", labels, func() (prometheus.Collector, any) {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		return v, &histogramVec{v}
	})
}

type counterVec struct{ *prometheus.CounterVec }

func (v *counterVec) GetMetricWithLabelValues(l ...string) (prometheus.Metric, error) {
	return v.CounterVec.GetMetricWithLabelValues(l...)
}

type gaugeVec struct{ *prometheus.GaugeVec }

func (v *gaugeVec) GetMetricWithLabelValues(l ...string) (prometheus.Metric, error) {
	return v.GaugeVec.GetMetricWithLabelValues(l...)
}

type histogramVec struct{ *prometheus.HistogramVec }

func (v *histogramVec) GetMetricWithLabelValues(l ...string) (prometheus.Metric, error) {
	o, err := v.HistogramVec.GetMetricWithLabelValues(l...)
	if err != nil {
		return nil, err
	}
	return o.(prometheus.Metric), nil
}

// With returns the series of one label combination, refusing the 129th.
func (m *Metric) With(values ...string) (prometheus.Metric, error) {
	key := fmt.Sprintf("%q", values)
	m.mu.Lock()
	if !m.seen[key] {
		if len(m.seen) >= MaxLabelCombinations {
			m.mu.Unlock()
			return nil, ErrTooManySeries
		}
		m.seen[key] = true
	}
	m.mu.Unlock()
	return m.vec.GetMetricWithLabelValues(values...)
}

// Inc adds 1 to a counter or gauge series.
func (m *Metric) Inc(values ...string) error { return m.Add(1, values...) }

// Add adds v to a counter or gauge series.
func (m *Metric) Add(v float64, values ...string) error {
	s, err := m.With(values...)
	if err != nil {
		return err
	}
	switch x := s.(type) {
	case prometheus.Counter:
		x.Add(v)
	case prometheus.Gauge:
		x.Add(v)
	default:
		return errors.New("metrics: Add on a histogram")
	}
	return nil
}

// Set sets a gauge series.
func (m *Metric) Set(v float64, values ...string) error {
	s, err := m.With(values...)
	if err != nil {
		return err
	}
	g, ok := s.(prometheus.Gauge)
	if !ok {
		return errors.New("metrics: Set on a non-gauge")
	}
	g.Set(v)
	return nil
}

// Observe records v in a histogram series.
func (m *Metric) Observe(v float64, values ...string) error {
	s, err := m.With(values...)
	if err != nil {
		return err
	}
	h, ok := s.(prometheus.Observer)
	if !ok {
		return errors.New("metrics: Observe on a non-histogram")
	}
	h.Observe(v)
	return nil
}
