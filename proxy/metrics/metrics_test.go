package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSiphonSeries checks names, types and label names against
// docs/siphon-formats.md#metrics for every series this proxy shares with SIPhon.
func TestSiphonSeries(t *testing.T) {
	s := New()
	// vectors only show once a label set exists
	s.Requests.WithLabelValues("INVITE").Inc()
	s.Responses.WithLabelValues("200").Inc()
	s.ConnectionsActive.WithLabelValues("TCP").Set(1)
	s.RequestDuration.WithLabelValues("INVITE").Observe(0.002)
	s.TransactionDuration.WithLabelValues("INVITE", "server").Observe(0.2)
	s.ScriptExec.WithLabelValues("on_request").Inc()
	s.RTPEngineInstance.WithLabelValues("127.0.0.1:22222").Set(1)

	want := map[string]struct {
		typ    dto.MetricType
		labels string
	}{
		"siphon_requests_total":               {dto.MetricType_COUNTER, "method"},
		"siphon_responses_total":              {dto.MetricType_COUNTER, "code"},
		"siphon_transactions_active":          {dto.MetricType_GAUGE, ""},
		"siphon_dialogs_active":               {dto.MetricType_GAUGE, ""},
		"siphon_registrations_active":         {dto.MetricType_GAUGE, ""},
		"siphon_connections_active":           {dto.MetricType_GAUGE, "transport"},
		"siphon_request_duration_seconds":     {dto.MetricType_HISTOGRAM, "method"},
		"siphon_transaction_duration_seconds": {dto.MetricType_HISTOGRAM, "method,type"},
		"siphon_uptime_seconds":               {dto.MetricType_GAUGE, ""},
		"siphon_uac_pending_requests":         {dto.MetricType_GAUGE, ""},
		"siphon_proxy_dialog_sessions":        {dto.MetricType_GAUGE, ""},
		"siphon_cdr_sessions":                 {dto.MetricType_GAUGE, ""},
		"siphon_subscribe_dialogs":            {dto.MetricType_GAUGE, ""},
		"siphon_rf_sessions":                  {dto.MetricType_GAUGE, ""},
		"siphon_ro_sessions":                  {dto.MetricType_GAUGE, ""},
		"siphon_memory_allocated_bytes":       {dto.MetricType_GAUGE, ""},
		"siphon_memory_resident_bytes":        {dto.MetricType_GAUGE, ""},
		"siphon_memory_active_bytes":          {dto.MetricType_GAUGE, ""},
		"siphon_memory_retained_bytes":        {dto.MetricType_GAUGE, ""},
		"siphon_memory_mapped_bytes":          {dto.MetricType_GAUGE, ""},
		"siphon_pyexec_pool_size":             {dto.MetricType_GAUGE, ""},
		"siphon_pyexec_pool_max":              {dto.MetricType_GAUGE, ""},
		"siphon_pyexec_inflight":              {dto.MetricType_GAUGE, ""},
		"siphon_pyexec_queue_depth":           {dto.MetricType_GAUGE, ""},
		"siphon_pyexec_jobs_completed_total":  {dto.MetricType_COUNTER, ""},
		"siphon_pyexec_jobs_shed_total":       {dto.MetricType_COUNTER, ""},
		"siphon_script_executions_total":      {dto.MetricType_COUNTER, "handler"},
		"siphon_script_errors_total":          {dto.MetricType_COUNTER, ""},
		"siphon_banned_ips":                   {dto.MetricType_GAUGE, ""},
		"siphon_auth_failures_total":          {dto.MetricType_COUNTER, ""},
		"siphon_handshake_failures_total":     {dto.MetricType_COUNTER, ""},
		"siphon_malformed_messages_total":     {dto.MetricType_COUNTER, ""},
		"siphon_scanner_blocked_total":        {dto.MetricType_COUNTER, ""},
		"siphon_rate_limited_total":           {dto.MetricType_COUNTER, ""},
		"siphon_rtpengine_instances_up":       {dto.MetricType_GAUGE, ""},
		"siphon_rtpengine_instances_total":    {dto.MetricType_GAUGE, ""},
		"siphon_rtpengine_instance_up":        {dto.MetricType_GAUGE, "address"},
	}
	families, err := s.Registry.Gather()
	require.NoError(t, err)
	got := map[string]*dto.MetricFamily{}
	for _, f := range families {
		got[f.GetName()] = f
	}
	for name, w := range want {
		f, ok := got[name]
		if !assert.True(t, ok, "missing %s", name) {
			continue
		}
		assert.Equal(t, w.typ, f.GetType(), name)
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		assert.Equal(t, w.labels, strings.Join(labels, ","), name)
	}
	// SIPhon's buckets, exactly
	h := got["siphon_request_duration_seconds"].GetMetric()[0].GetHistogram()
	var bounds []float64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	assert.Equal(t, []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}, bounds)
	h = got["siphon_transaction_duration_seconds"].GetMetric()[0].GetHistogram()
	bounds = nil
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	assert.Equal(t, []float64{.01, .05, .1, .5, 1, 5, 16, 32}, bounds)
	assert.Greater(t, got["siphon_memory_allocated_bytes"].GetMetric()[0].GetGauge().GetValue(), 0.0)
	assert.Contains(t, got, "go_goroutines")
	assert.Contains(t, got, "process_resident_memory_bytes")
}

func TestCustom(t *testing.T) {
	s := New()
	calls, err := s.Custom.Counter("trunk_calls_total", "Calls per trunk", "trunk")
	require.NoError(t, err)
	again, err := s.Custom.Counter("trunk_calls_total", "Calls per trunk", "trunk")
	require.NoError(t, err)
	assert.Same(t, calls, again, "created once")
	_, err = s.Custom.Gauge("trunk_calls_total", "x", "trunk")
	assert.ErrorContains(t, err, "exists as a counter")

	require.NoError(t, calls.Inc("carrier-a"))
	require.NoError(t, calls.Add(2, "carrier-a"))
	assert.Error(t, calls.Set(1, "carrier-a"), "Set on a counter")
	v, err := calls.With("carrier-a")
	require.NoError(t, err)
	var m dto.Metric
	require.NoError(t, v.Write(&m))
	assert.Equal(t, 3.0, m.GetCounter().GetValue())

	for i := 1; i < MaxLabelCombinations; i++ {
		require.NoError(t, calls.Inc("t"+strings.Repeat("x", i)))
	}
	assert.ErrorIs(t, calls.Inc("one-too-many"), ErrTooManySeries)
	assert.NoError(t, calls.Inc("carrier-a"), "existing series still work at the cap")

	g, err := s.Custom.Gauge("queue_len", "Queue", "q")
	require.NoError(t, err)
	require.NoError(t, g.Set(5, "a"))
	h, err := s.Custom.Histogram("lookup_seconds", "Lookup time", []float64{.01, .1}, "db")
	require.NoError(t, err)
	require.NoError(t, h.Observe(0.05, "redis"))
	assert.Error(t, h.Inc("redis"), "Add on a histogram")
	_, err = s.Custom.Counter("bad name", "x")
	assert.ErrorContains(t, err, "not a valid metric name")
	_, err = s.Custom.Counter("ok_total", "x", "bad-label")
	assert.ErrorContains(t, err, "not a valid label name")

	n, err := testutil.GatherAndCount(s.Registry, "trunk_calls_total", "queue_len", "lookup_seconds")
	require.NoError(t, err)
	assert.Equal(t, MaxLabelCombinations+2, n)
}

// TestRTPEngineSeries: sipproxy's anchoring series exist (at 0) only once
// a proxy with RTPEngine instances asks for them.
func TestRTPEngineSeries(t *testing.T) {
	s := New()
	n, err := testutil.GatherAndCount(s.Registry, "sipproxy_rtpengine_commands_total", "sipproxy_rtpengine_unanchored_total")
	require.NoError(t, err)
	assert.Zero(t, n)
	s.RTPEngineSeries()
	n, err = testutil.GatherAndCount(s.Registry, "sipproxy_rtpengine_commands_total")
	require.NoError(t, err)
	assert.Equal(t, 9, n, "offer, answer, delete by ok, error, timeout")
	n, err = testutil.GatherAndCount(s.Registry, "sipproxy_rtpengine_unanchored_total")
	require.NoError(t, err)
	assert.Equal(t, 3, n, "offer and answer passed, offer rejected")
	assert.Zero(t, testutil.ToFloat64(s.RTPEngineCommands.WithLabelValues("offer", "timeout")))
}

// TestDropCountersStartAtZero: every reason a drop counter can be given
// has its series at 0 from the start, so that rate() and the alerts see
// the first drop (oversized, given by heptrace, had none).
func TestDropCountersStartAtZero(t *testing.T) {
	s := New()
	for name, reasons := range map[string][]string{
		"siphon_cdr_dropped_total":         {"channel_full", "backend_error"},
		"siphon_hep_packets_dropped_total": {"queue_full", "send_error", "oversized"},
	} {
		n, err := testutil.GatherAndCount(s.Registry, name)
		require.NoError(t, err)
		assert.Equal(t, len(reasons), n, name)
	}
	assert.Zero(t, testutil.ToFloat64(s.HEPDropped.WithLabelValues("oversized")))
}
