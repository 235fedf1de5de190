//go:build integration

package dashboards

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/prometheus"
)

// mediaExposition is mediaMix after n minutes as OpenMetrics text, the way
// the prometheus exporter serves sipkpi's series to a Prometheus with
// exemplar storage: every bucket and class that grew carries an exemplar
// whose trace_id names the stream's label set and bucket.
func mediaExposition(n int64, now time.Time) string {
	var b strings.Builder
	ts := fmt.Sprintf("%.3f", float64(now.UnixMilli())/1000)
	exemplar := func(key string, v float64) string {
		return fmt.Sprintf(` # {trace_id="%032x",span_id="%016x"} %g %s`, hash(key), hash(key+"/span"), v, ts)
	}
	hist := func(family string, bounds []string, per func(mediaStream) map[string]int, value func(bound string) float64) {
		fmt.Fprintf(&b, "# TYPE %s histogram\n", family)
		for _, s := range mediaMix {
			labels := fmt.Sprintf(`node=%q,media_codec=%q,media_direction=%q`, s.node, s.codec, s.direction)
			cum, sum := int64(0), 0.0
			for _, bound := range bounds {
				k := per(s)[bound]
				cum += int64(k) * n
				line := fmt.Sprintf(`%s_bucket{%s,le="%s"} %d`, family, labels, bound, cum)
				if k > 0 {
					line += exemplar(family+labels+bound, value(bound))
					sum += float64(k) * float64(n) * value(bound)
				}
				b.WriteString(line + "\n")
			}
			fmt.Fprintf(&b, "%s_sum{%s} %g\n%s_count{%s} %d\n", family, labels, sum, family, labels, cum)
		}
	}
	rated := func(s mediaStream) int {
		r := 0
		for c, k := range s.classes {
			if c != "unknown" {
				r += k
			}
		}
		return r
	}
	// an observation just below its bucket's upper bound
	below := func(bound string) float64 {
		var v float64
		fmt.Sscanf(bound, "%g", &v)
		return v * 0.99
	}
	hist("sip_media_mos", mosBounds, func(s mediaStream) map[string]int { return s.mos }, below)
	hist("sip_media_jitter_seconds", jitterBounds, func(s mediaStream) map[string]int { return map[string]int{"0.02": rated(s)} }, below)
	hist("sip_media_packet_loss_ratio", lossBounds, func(s mediaStream) map[string]int { return map[string]int{"0.01": rated(s)} }, below)
	hist("sip_media_rtt_seconds", rttBounds, func(s mediaStream) map[string]int { return map[string]int{"0.1": rated(s)} }, below)
	b.WriteString("# TYPE sip_media_streams counter\n")
	for _, s := range mediaMix {
		labels := fmt.Sprintf(`node=%q,media_codec=%q,media_direction=%q`, s.node, s.codec, s.direction)
		for c, k := range s.classes {
			fmt.Fprintf(&b, `sip_media_streams_total{%s,media_quality_class=%q} %d%s`+"\n", labels, c, int64(k)*n, exemplar(labels+c, 1))
		}
	}
	b.WriteString("# EOF\n")
	return b.String()
}

// hash is FNV-1a, a stable id per key.
func hash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// TestMediaExemplarsAndRulesInPrometheus: a real Prometheus with exemplar
// storage scrapes the media series (with exemplars) and evaluates the
// shipped recording rules. Every media-row query that shows exemplars gets
// them back from Prometheus, each with the trace_id the provisioned
// datasource turns into a link to the call's trace; the poor and bad
// classes have theirs; the media recording rules are healthy and give the
// mix's values.
func TestMediaExemplarsAndRulesInPrometheus(t *testing.T) {
	var scrapes atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
		_, _ = io.WriteString(w, mediaExposition(scrapes.Add(1), time.Now()))
	}))
	t.Cleanup(target.Close)
	rules, err := filepath.Abs("../alerts/siphon-kpi.rules.yml")
	require.NoError(t, err)
	p := prometheus.Start(t, prometheus.Options{Flags: []string{"--enable-feature=exemplar-storage"}, Config: fmt.Sprintf(`
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: otelcol-siphon-kpi
    honor_labels: true
    static_configs: [{targets: [%q]}]
`, rules, strings.TrimPrefix(target.URL, "http://"))})

	// sbc-1: 3 poor or bad of 20 rated a minute; sbc-2: none of 10.
	within := func(want float64) func(float64) bool {
		return func(v float64) bool { return v > want-1e-9 && v < want+1e-9 }
	}
	p.WaitValue(t, "sbc-1's poor share", `node:sip_media_poor:ratio_rate5m{node="sbc-1"}`, within(0.15))
	p.WaitValue(t, "sbc-2's poor share", `node:sip_media_poor:ratio_rate5m{node="sbc-2"}`, within(0))
	p.WaitValue(t, "sbc-2's MOS p50", `node:sip_media_mos:p50_5m{node="sbc-2"}`, within(4.4))

	traceID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	checked := 0
	for _, pn := range mediaRow().Panels {
		for _, q := range pn.Queries {
			if !q.Exemplars {
				continue
			}
			checked++
			expr := strings.NewReplacer("$node", ".*", "$codec", ".*").Replace(q.Expr)
			var got []prometheus.Exemplar
			assert.EventuallyWithT(t, func(c *assert.CollectT) {
				var err error
				got, err = p.Exemplars(expr, time.Hour)
				assert.NoError(c, err)
				assert.NotEmpty(c, got)
			}, 30*time.Second, 250*time.Millisecond, "%s: no exemplars for %s", pn.Title, expr)
			for _, e := range got {
				assert.Regexp(t, traceID, e.Labels["trace_id"], "%s: %v", pn.Title, e)
			}
			if pn.Title == "Streams by quality class" {
				classes := map[string]bool{}
				for _, e := range got {
					classes[e.SeriesLabels["media_quality_class"]] = true
				}
				assert.True(t, classes["poor"] && classes["bad"], "exemplars of the poor and bad streams: %v", classes)
			}
		}
	}
	assert.Greater(t, checked, 10, "media queries with exemplars")

	health, err := p.Rules()
	require.NoError(t, err)
	n := 0
	for name, h := range health {
		if strings.Contains(name, "sip_media") {
			n++
			assert.Equal(t, "ok", h[0], "%s: %s", name, h[1])
		}
	}
	assert.Equal(t, 7, n, "media recording rules loaded")
}
