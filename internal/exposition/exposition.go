// Package exposition reads the Prometheus text format (a /metrics page):
// the tests' and the demo's one way to scrape the collector, sipproxy or a
// KPI endpoint and read a series from it.
package exposition

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Timeout bounds a Scrape whose context has no earlier deadline.
const Timeout = 5 * time.Second

// Labels select series: a series matches when each of these labels has
// exactly this value on it (a label it lacks reads as "").
type Labels map[string]string

// Families is one parsed exposition, by family name.
type Families map[string]*dto.MetricFamily

// Parse reads a text exposition.
func Parse(r io.Reader) (Families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("exposition: %w", err)
	}
	return fams, nil
}

// Scrape fetches url and parses it.
func Scrape(ctx context.Context, url string) (Families, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("exposition: %w", err)
	}
	// the text format, not OpenMetrics or protobuf
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("exposition: scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("exposition: scrape %s: %s", url, resp.Status)
	}
	f, err := Parse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%w (from %s)", err, url)
	}
	return f, nil
}

// Sum adds up the samples of name on the series that match labels, and
// says whether any matched. name is a counter, gauge or untyped family, or
// a histogram's or summary's name_count or name_sum.
func (f Families) Sum(name string, labels Labels) (float64, bool) {
	fam, value := f.lookup(name)
	if fam == nil {
		return 0, false
	}
	var total float64
	found := false
	for _, m := range fam.GetMetric() {
		if !matches(m, labels) {
			continue
		}
		if v, ok := value(m); ok {
			total += v
			found = true
		}
	}
	return total, found
}

// Value is Sum for a series that must exist: no match is an error that
// names what was looked for.
func (f Families) Value(name string, labels Labels) (float64, error) {
	v, ok := f.Sum(name, labels)
	if !ok {
		return 0, fmt.Errorf("exposition: no series %s", Series(name, labels))
	}
	return v, nil
}

// Has reports whether a series of name matches labels.
func (f Families) Has(name string, labels Labels) bool {
	_, ok := f.Sum(name, labels)
	return ok
}

// Names are the family names, sorted.
func (f Families) Names() []string {
	out := make([]string, 0, len(f))
	for n := range f {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Series writes name and labels as a selector, for messages:
// name{a="1",b="2"}.
func Series(name string, labels Labels) string {
	if len(labels) == 0 {
		return name
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, labels[k])
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// lookup finds the family of name and how to read name's value from one of
// its metrics.
func (f Families) lookup(name string) (*dto.MetricFamily, func(*dto.Metric) (float64, bool)) {
	if fam := f[name]; fam != nil {
		switch fam.GetType() {
		case dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_UNTYPED:
			return fam, scalar
		}
		return nil, nil // a histogram or summary has no value of its own
	}
	for suffix, value := range map[string]func(*dto.Metric) (float64, bool){"_count": count, "_sum": sum} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if fam := f[base]; fam != nil {
				return fam, value
			}
		}
	}
	return nil, nil
}

func scalar(m *dto.Metric) (float64, bool) {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue(), true
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), true
	case m.Untyped != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

func count(m *dto.Metric) (float64, bool) {
	switch {
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount()), true
	case m.Summary != nil:
		return float64(m.GetSummary().GetSampleCount()), true
	}
	return 0, false
}

func sum(m *dto.Metric) (float64, bool) {
	switch {
	case m.Histogram != nil:
		return m.GetHistogram().GetSampleSum(), true
	case m.Summary != nil:
		return m.GetSummary().GetSampleSum(), true
	}
	return 0, false
}

func matches(m *dto.Metric, want Labels) bool {
	if len(want) == 0 {
		return true
	}
	have := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
