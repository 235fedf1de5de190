package exposition

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

// A SIPhon node's page: counters and gauges with and without labels, and
// histograms (see internal/testdata/siphon/siphon-metrics.prom).
func TestSumOnSIPhonMetrics(t *testing.T) {
	f, err := Parse(bytes.NewReader(fixture.Metrics()))
	require.NoError(t, err)
	tests := []struct {
		name   string
		series string
		labels Labels
		want   float64
		found  bool
	}{
		{"counter, every series", "siphon_requests_total", nil, 1204 + 1180 + 1102 + 5530 + 880, true},
		{"counter, one series", "siphon_requests_total", Labels{"method": "REGISTER"}, 5530, true},
		{"label values match exactly, not by prefix", "siphon_responses_total", Labels{"code": "20"}, 0, false},
		{"label names match exactly, not by suffix", "siphon_responses_total", Labels{"ode": "200"}, 0, false},
		{"no series with the label value", "siphon_requests_total", Labels{"method": "SUBSCRIBE"}, 0, false},
		{"gauge without labels", "siphon_dialogs_active", nil, 42, true},
		{"a zero is a value", "siphon_connections_active", Labels{"transport": "UDP"}, 0, true},
		{"a label the series lacks reads as empty", "siphon_dialogs_active", Labels{"transport": ""}, 42, true},
		{"a label the series lacks is not a value", "siphon_dialogs_active", Labels{"transport": "TCP"}, 0, false},
		{"histogram count", "siphon_request_duration_seconds_count", Labels{"method": "INVITE"}, 1204, true},
		{"histogram sum", "siphon_request_duration_seconds_sum", nil, 3.71, true},
		{"histogram count, two labels", "siphon_transaction_duration_seconds_count", Labels{"method": "INVITE", "type": "server"}, 1180, true},
		{"histogram count, other label value", "siphon_transaction_duration_seconds_count", Labels{"type": "client"}, 0, false},
		{"a histogram has no value of its own", "siphon_request_duration_seconds", nil, 0, false},
		{"not a family", "siphon_requests", nil, 0, false},
		{"a longer name is another family", "siphon_rtpengine_instances_up", nil, 1, true},
		{"counter of several labels", "calls_total", Labels{"direction": "inbound", "result": "busy"}, 12, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := f.Sum(tt.series, tt.labels)
			assert.Equal(t, tt.found, found)
			assert.InDelta(t, tt.want, got, 1e-9)
			assert.Equal(t, tt.found, f.Has(tt.series, tt.labels))
			v, err := f.Value(tt.series, tt.labels)
			if tt.found {
				require.NoError(t, err)
				assert.InDelta(t, tt.want, v, 1e-9)
			} else {
				assert.EqualError(t, err, "exposition: no series "+Series(tt.series, tt.labels))
			}
		})
	}
	assert.Contains(t, f.Names(), "siphon_request_duration_seconds")
	assert.True(t, sort.StringsAreSorted(f.Names()))
	assert.Len(t, f.Names(), len(f))
}

// A histogram as the collector's own telemetry serves it, with buckets
// out of order and a summary next to it.
func TestHistogramAndSummary(t *testing.T) {
	page := `# HELP otelcol_exporter_send_duration Send duration.
# TYPE otelcol_exporter_send_duration histogram
otelcol_exporter_send_duration_bucket{exporter="homer",le="1"} 3
otelcol_exporter_send_duration_bucket{exporter="homer",le="0.1"} 1
otelcol_exporter_send_duration_bucket{exporter="homer",le="+Inf"} 4
otelcol_exporter_send_duration_sum{exporter="homer"} 2.5
otelcol_exporter_send_duration_count{exporter="homer"} 4
otelcol_exporter_send_duration_bucket{exporter="siphon_file",le="+Inf"} 6
otelcol_exporter_send_duration_sum{exporter="siphon_file"} 0.5
otelcol_exporter_send_duration_count{exporter="siphon_file"} 6
# TYPE rpc_latency summary
rpc_latency{quantile="0.5"} 0.2
rpc_latency_sum 7
rpc_latency_count 30
`
	f, err := Parse(strings.NewReader(page))
	require.NoError(t, err)
	for _, tt := range []struct {
		series string
		labels Labels
		want   float64
	}{
		{"otelcol_exporter_send_duration_count", nil, 10},
		{"otelcol_exporter_send_duration_count", Labels{"exporter": "homer"}, 4},
		{"otelcol_exporter_send_duration_sum", Labels{"exporter": "homer"}, 2.5},
		{"otelcol_exporter_send_duration_sum", nil, 3},
		{"rpc_latency_count", nil, 30},
		{"rpc_latency_sum", nil, 7},
	} {
		v, err := f.Value(tt.series, tt.labels)
		require.NoError(t, err, tt.series)
		assert.InDelta(t, tt.want, v, 1e-9, Series(tt.series, tt.labels))
	}
	assert.False(t, f.Has("otelcol_exporter_send_duration_bucket", nil), "buckets are not read")
}

func TestParseErrors(t *testing.T) {
	for name, page := range map[string]string{
		"no value":            "up{job=\"x\"}\n",
		"bad value":           "up 1x\n",
		"family split in two": "# TYPE a counter\na 1\n# TYPE b gauge\nb 2\n# TYPE a counter\na 3\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(page))
			assert.ErrorContains(t, err, "exposition: ")
		})
	}
}

func TestScrape(t *testing.T) {
	status, body := http.StatusOK, fixture.Metrics()
	var accept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept = r.Header.Get("Accept")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	defer srv.Close()

	f, err := Scrape(context.Background(), srv.URL)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(accept, "text/plain; version=0.0.4"), "asks for the text format: %s", accept)
	v, err := f.Value("siphon_uptime_seconds", nil)
	require.NoError(t, err)
	assert.Equal(t, 86400.0, v)

	status = http.StatusServiceUnavailable
	_, err = Scrape(context.Background(), srv.URL)
	assert.EqualError(t, err, "exposition: scrape "+srv.URL+": 503 Service Unavailable")

	status, body = http.StatusOK, []byte("up 1x\n")
	_, err = Scrape(context.Background(), srv.URL)
	assert.ErrorContains(t, err, "(from "+srv.URL+")")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Scrape(ctx, srv.URL)
	assert.ErrorIs(t, err, context.Canceled)
}
