package sipkpiconnector

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/telemetrytest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
)

var t0 = time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)

func TestExemplarsCarryTheCallID(t *testing.T) {
	h := startConnector(t, createDefaultConfig().(*Config), new(consumertest.MetricsSink))
	msgs, cdrs := recordedCalls(t, t0)
	require.NoError(t, h.c.ConsumeLogs(context.Background(), msgs))
	require.NoError(t, h.c.ConsumeLogs(context.Background(), cdrs))
	m := readMetrics(h.c.collect())
	for _, dp := range m["sip.calls"] {
		require.Len(t, dp.exemplars, 1, dp.attrs)
	}
	// The 486 series has exactly one call: its exemplar is that call.
	for _, dp := range m["sip.calls"] {
		if dp.attrs[labelStatusCode] == "486" {
			assert.Equal(t, []string{"call-3"}, dp.exemplars)
		}
	}
	// Histograms keep one per bucket: the 32 s PDD bucket points at call 9.
	pdd := m["sip.call.post_dial_delay"]
	require.Len(t, pdd, 1)
	assert.Contains(t, pdd[0].exemplars, "call-9")
	assert.Len(t, pdd[0].exemplars, 6, "one per non-empty bucket")

	// Each exemplar goes out once: a store like Prometheus refuses a
	// repeated one as out of order.
	for _, dps := range readMetrics(h.c.collect()) {
		for _, dp := range dps {
			assert.Empty(t, dp.exemplars)
		}
	}

	cfg := createDefaultConfig().(*Config)
	cfg.Exemplars.Enabled = false
	h2 := startConnector(t, cfg, new(consumertest.MetricsSink))
	require.NoError(t, h2.c.ConsumeLogs(context.Background(), cdrs))
	for _, dp := range readMetrics(h2.c.collect())["sip.calls"] {
		assert.Empty(t, dp.exemplars)
	}
}

// cdrFrom returns a logs batch of one INVITE CDR from the given node.
func cdrFrom(t *testing.T, node, callID string, code int) plog.Logs {
	ld := newFlows(node)
	answer, end := -1.0, 1.0
	if code < 300 {
		answer, end = 1, 11
	}
	cdrRecord(t, ld, t0, callID, code, 0, answer, end, "caller", "x")
	return ld
}

func TestCardinalityCapOverflows(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.MaxDimensionSets = 2
	h := startConnector(t, cfg, new(consumertest.MetricsSink))
	for i := range 10 {
		node := fmt.Sprintf("sbc-%d", i%5)
		require.NoError(t, h.c.ConsumeLogs(context.Background(), cdrFrom(t, node, fmt.Sprint("c", i), 200)))
	}
	m := readMetrics(h.c.collect())
	assert.Equal(t, 10.0, m.sum("sip.calls"), "no call is lost to the cap")
	assert.Equal(t, 2.0, m.sum("sip.calls", "node", "sbc-0"))
	assert.Equal(t, 2.0, m.sum("sip.calls", "node", "sbc-1"))
	assert.Equal(t, 6.0, m.sum("sip.calls", labelOverflow, "true"))
	for _, dp := range m["sip.calls"] {
		if dp.attrs[labelOverflow] == "true" {
			assert.NotContains(t, dp.attrs, "node", "the overflow series carries no dimension")
		}
	}
	n, _, _ := m.hist("sip.call.duration", labelOverflow, "true")
	assert.Equal(t, uint64(6), n)
	// Each of the six overflowing CDRs resolved its dimensions once.
	assert.Equal(t, int64(6), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_dimension_overflows"))
}

// options returns one OPTIONS (or method) request per call id from src.
func requests(t *testing.T, src, method, ua string, at time.Time, callIDs ...string) plog.Logs {
	ld := newFlows("sbc-1")
	for _, id := range callIDs {
		f := newFlow(t, ld, at, id)
		f.request(0, src, addrP, method, 1, branch(id, "a", 1, method), "", ua)
	}
	return ld
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func TestScannerDetection(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Scanner.Flood.Threshold = 10
	cfg.Scanner.Flood.Window = 10 * time.Second
	cfg.Scanner.Flood.ExcludeSources = []string{"10.0.0.0/24"}
	h := startConnector(t, cfg, new(consumertest.MetricsSink))
	ctx := context.Background()

	// SIPVicious' svmap: OPTIONS with its User-Agent.
	require.NoError(t, h.c.ConsumeLogs(ctx, requests(t, "192.0.2.7", "OPTIONS", "friendly-scanner", t0, ids("svmap", 5)...)))
	// A REGISTER flood from one source: 25 new transactions in one window,
	// plus retransmissions of one of them that must not count.
	flood := requests(t, "198.51.100.9", "REGISTER", "Zoiper", t0, ids("reg", 25)...)
	require.NoError(t, h.c.ConsumeLogs(ctx, flood))
	require.NoError(t, h.c.ConsumeLogs(ctx, requests(t, "198.51.100.9", "REGISTER", "Zoiper", t0, "reg-0", "reg-0")))
	// The proxy's own OPTIONS pings (excluded) and a phone under the
	// threshold.
	require.NoError(t, h.c.ConsumeLogs(ctx, requests(t, "10.0.0.10", "OPTIONS", "sipproxy", t0, ids("ping", 50)...)))
	require.NoError(t, h.c.ConsumeLogs(ctx, requests(t, "203.0.113.5", "REGISTER", "Yealink", t0, ids("phone", 9)...)))

	m := readMetrics(h.c.collect())
	// a node's scanner counters exist from its first message, at 0 until a
	// detection (so that the first detection is an increase)
	require.Len(t, m["sip.scanner.detections"], 2)
	assert.Equal(t, 1.0, m.sum("sip.scanner.detections", labelScannerReason, "user_agent"))
	assert.Equal(t, 5.0, m.sum("sip.scanner.requests", labelScannerReason, "user_agent"))
	assert.Equal(t, 1.0, m.sum("sip.scanner.detections", labelScannerReason, "flood"))
	assert.Equal(t, 25.0, m.sum("sip.scanner.requests", labelScannerReason, "flood"), "every request of the flooding window")
	assert.Equal(t, 2.0, m.sum("sip.retransmissions", labelMethod, "REGISTER"))

	// A quiet window clears the flood flag; a second flood is a second
	// detection.
	require.NoError(t, h.c.ConsumeLogs(ctx, requests(t, "198.51.100.9", "REGISTER", "Zoiper", t0.Add(11*time.Second), "late-1")))
	require.NoError(t, h.c.ConsumeLogs(ctx, requests(t, "198.51.100.9", "REGISTER", "Zoiper", t0.Add(22*time.Second), ids("again", 12)...)))
	m = readMetrics(h.c.collect())
	assert.Equal(t, 2.0, m.sum("sip.scanner.detections", labelScannerReason, "flood"))
	for _, dp := range m["sip.scanner.detections"] {
		if dp.attrs[labelScannerReason] == "flood" {
			assert.Equal(t, []string{"again-9"}, dp.exemplars, "the request that crossed the threshold")
		} else {
			assert.Empty(t, dp.exemplars, "already emitted with the first flush")
		}
	}
}

func TestTransactionsWithoutFinalResponseExpire(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	h := startConnector(t, cfg, new(consumertest.MetricsSink))
	ctx := context.Background()
	require.NoError(t, h.c.ConsumeLogs(ctx, requests(t, addrP, "OPTIONS", "sipproxy", t0, "dead-peer")))
	m := readMetrics(h.c.collect())
	assert.Equal(t, 0.0, m.sum("sip.transactions"))
	assert.Equal(t, int64(1), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_state_entries", attribute.String("state", "transactions")))

	h.now = h.now.Add(cfg.Transactions.Timeout + time.Second)
	m = readMetrics(h.c.collect())
	assert.Equal(t, 1.0, m.sum("sip.transactions", labelMethod, "OPTIONS", labelStatusCode, "none"))
	assert.Equal(t, int64(0), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_state_entries", attribute.String("state", "transactions")))
	assert.Equal(t, int64(1), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_state_evictions",
		attribute.String("state", "transactions"), attribute.String("reason", "expired")))

	// A completed transaction lingers only for linger, then a late
	// retransmission of its request counts as new (as it would at a UAS).
	msgs, _ := recordedCalls(t, t0)
	require.NoError(t, h.c.ConsumeLogs(ctx, msgs))
	before := telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_state_entries", attribute.String("state", "transactions"))
	require.Positive(t, before)
	h.now = h.now.Add(cfg.Transactions.Linger + time.Second)
	readMetrics(h.c.collect())
	assert.Equal(t, int64(0), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_state_entries", attribute.String("state", "transactions")))
	assert.Equal(t, int64(0), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_state_entries", attribute.String("state", "setups")))
}

func TestStateIsBounded(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Transactions.MaxEntries = 100
	cfg.Scanner.MaxSources = 10
	h := startConnector(t, cfg, new(consumertest.MetricsSink))
	ctx := context.Background()
	for i := range 50 {
		src := fmt.Sprintf("192.0.2.%d", i+1)
		require.NoError(t, h.c.ConsumeLogs(ctx, requests(t, src, "OPTIONS", "", t0, ids(src, 20)...)))
	}
	tx := attribute.String("state", "transactions")
	assert.Equal(t, int64(100), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_state_entries", tx))
	assert.Equal(t, int64(900), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_state_evictions", tx, attribute.String("reason", "capacity")))
	assert.Equal(t, int64(10), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_state_entries", attribute.String("state", "sources")))
	m := readMetrics(h.c.collect())
	assert.Equal(t, 1000.0, m.sum("sip.requests", labelMethod, "OPTIONS"))
	assert.Equal(t, 900.0, m.sum("sip.transactions", labelStatusCode, "none"), "evicted unfinished transactions still count")
}

func TestInvalidRecordsAreCounted(t *testing.T) {
	h := startConnector(t, createDefaultConfig().(*Config), new(consumertest.MetricsSink))
	ld := newFlows("sbc-1")
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	noCallID := lrs.AppendEmpty()
	noCallID.SetEventName(record.EventSIPMessage)
	noCallID.Attributes().PutStr(record.AttrSIPRequestMethod, "INVITE")
	noCode := lrs.AppendEmpty()
	noCode.SetEventName(record.EventCDR)
	noCode.Attributes().PutStr(record.AttrSIPRequestMethod, "INVITE")
	noCode.Attributes().PutStr(record.AttrSIPCallID, "x")
	media := lrs.AppendEmpty()
	media.SetEventName(record.EventCDR)
	media.Attributes().PutStr(record.AttrSIPRequestMethod, "MEDIA")
	other := lrs.AppendEmpty()
	other.SetEventName("hep.rtcp")
	require.NoError(t, h.c.ConsumeLogs(context.Background(), ld))

	assert.Equal(t, int64(1), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_records_invalid", attribute.String("reason", "message_no_call_id_or_cseq")))
	assert.Equal(t, int64(1), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_records_invalid", attribute.String("reason", "cdr_no_response_code")))
	assert.Equal(t, int64(1), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_records", attribute.String("reason", "cdr_other")))
	assert.Equal(t, int64(1), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_records", attribute.String("reason", "ignored")))
	assert.Equal(t, 0, h.c.collect().MetricCount())
}

func TestRegisterCDRs(t *testing.T) {
	h := startConnector(t, createDefaultConfig().(*Config), new(consumertest.MetricsSink))
	ld := newFlows("sbc-1")
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for _, ev := range []struct {
		code  int64
		event string
	}{{200, "registered"}, {200, "refreshed"}, {200, "registered"}, {403, ""}} {
		lr := lrs.AppendEmpty()
		lr.SetEventName(record.EventCDR)
		// every CDR has a Call-ID (cdr.Parse requires it); distinct ones make
		// these distinct registrations rather than copies of one
		lr.Attributes().PutStr(record.AttrSIPCallID, fmt.Sprintf("reg-%d", lrs.Len()))
		lr.Attributes().PutStr(record.AttrSIPRequestMethod, "REGISTER")
		lr.Attributes().PutInt(record.AttrSIPResponseStatusCode, ev.code)
		if ev.event != "" {
			lr.Attributes().PutStr(record.AttrCDRRegEvent, ev.event)
		}
	}
	require.NoError(t, h.c.ConsumeLogs(context.Background(), ld))
	m := readMetrics(h.c.collect())
	assert.Equal(t, 2.0, m.sum("sip.registration.events", labelRegEvent, "registered"))
	assert.Equal(t, 1.0, m.sum("sip.registration.events", labelRegEvent, "none", labelStatusCode, "403"))
	assert.Equal(t, 0.0, m.sum("sip.calls"))
}

// flakyConsumer refuses the first n batches.
type flakyConsumer struct {
	mu      sync.Mutex
	refuse  int
	batches []pmetric.Metrics
}

func (f *flakyConsumer) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (f *flakyConsumer) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse > 0 {
		f.refuse--
		return errors.New("downstream full")
	}
	f.batches = append(f.batches, md)
	return nil
}

func (f *flakyConsumer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.batches)
}

func TestFlushesCumulativeTotalsOnTimerAndShutdown(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.FlushInterval = 20 * time.Millisecond
	next := &flakyConsumer{refuse: 2}
	h := startConnector(t, cfg, next)
	require.NoError(t, h.c.ConsumeLogs(context.Background(), cdrFrom(t, "sbc-1", "a", 200)))
	require.Eventually(t, func() bool { return next.count() >= 1 }, 5*time.Second, 5*time.Millisecond,
		"the timer flushes after two refusals")
	require.NoError(t, h.c.ConsumeLogs(context.Background(), cdrFrom(t, "sbc-1", "b", 486)))
	require.NoError(t, h.c.Shutdown(context.Background()))
	last := next.batches[len(next.batches)-1]
	m := readMetrics(last)
	assert.Equal(t, 2.0, m.sum("sip.calls"), "the final flush carries every call, refused flushes included")
	// Cumulative: the series of call "a" keeps the start time it had in the
	// first flush.
	start := func(md pmetric.Metrics) pcommon.Timestamp {
		sm := md.ResourceMetrics().At(0).ScopeMetrics().At(0)
		for i := 0; i < sm.Metrics().Len(); i++ {
			if m := sm.Metrics().At(i); m.Name() == "sip.calls" {
				assert.Equal(t, pmetric.AggregationTemporalityCumulative, m.Sum().AggregationTemporality())
				return m.Sum().DataPoints().At(0).StartTimestamp()
			}
		}
		t.Fatal("no sip.calls")
		return 0
	}
	assert.Equal(t, pcommon.NewTimestampFromTime(h.now), start(next.batches[0]))
	assert.Equal(t, start(next.batches[0]), start(last))
}

// heapPerEntry feeds ld to a fresh kpi on each iteration and reports the
// heap it holds afterwards divided by n, in unit; check sees the kpi.
func heapPerEntry(b *testing.B, cfg *Config, ld plog.Logs, n int, unit string, check func(*kpi)) {
	for b.Loop() {
		k := newKPI(cfg)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		now := time.Now()
		for _, r := range record.All(ld) {
			k.message(r.Resource.Attributes(), r.Log.Attributes(), r.Log.Timestamp().AsTime(), now)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		check(k)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), unit)
		runtime.KeepAlive(k)
	}
}

// BenchmarkStateMemory measures the heap held per tracked transaction (with
// its setup entry): the figure behind the README's memory table.
func BenchmarkStateMemory(b *testing.B) {
	const n = 100_000
	cfg := createDefaultConfig().(*Config)
	cfg.Transactions.MaxEntries = n
	ld := newFlows("sbc-1")
	for i := range n {
		f := newFlow(&testing.T{}, ld, t0, fmt.Sprintf("%08x-4b1c-9a2e-%012d@192.0.2.10", i, i))
		f.request(0, addrA, addrP, "INVITE", 1, branch(f.callID, "a", 1, "INVITE"), "", "")
	}
	heapPerEntry(b, cfg, ld, n, "B/transaction", func(k *kpi) {
		if k.tx.len() != n {
			b.Fatalf("%d transactions tracked", k.tx.len())
		}
	})
}

// BenchmarkSourceMemory measures the heap held per scanner source tracked.
func BenchmarkSourceMemory(b *testing.B) {
	const n = 10_000
	cfg := createDefaultConfig().(*Config)
	cfg.Scanner.MaxSources = n
	cfg.Transactions.MaxEntries = 1 // only the sources table grows
	ld := newFlows("sbc-1")
	for i := range n {
		f := newFlow(&testing.T{}, ld, t0, fmt.Sprintf("opt-%d", i))
		src := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		f.request(0, src, addrP, "OPTIONS", 1, branch(f.callID, "a", 1, "OPTIONS"), "", "")
	}
	heapPerEntry(b, cfg, ld, n, "B/source", func(k *kpi) {
		if k.sources.len() != n {
			b.Fatalf("%d sources tracked", k.sources.len())
		}
	})
}

// TestDuplicateCDRsCountOnce: a CDR delivered again (at-least-once delivery
// between collector tiers) counts once within the window, and again after
// it; the drop is counted; max_entries 0 counts every copy.
func TestDuplicateCDRsCountOnce(t *testing.T) {
	base := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	batch := func() plog.Logs {
		ld := newFlows("sbc-1")
		cdrRecord(t, ld, base, "dup-1", 200, 0, 1, 61, "caller", "a")
		cdrRecord(t, ld, base, "dup-2", 486, 0, -1, 2, "", "a")
		return ld
	}
	cfg := createDefaultConfig().(*Config)
	cfg.Duplicates.Window = time.Minute
	h := startConnector(t, cfg, new(consumertest.MetricsSink))
	for range 3 {
		require.NoError(t, h.c.ConsumeLogs(context.Background(), batch()))
	}
	// a record rendered without its original body is recognised by its fields
	noBody := batch()
	for _, lr := range noBody.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().All() {
		lr.Body().SetStr("")
	}
	require.NoError(t, h.c.ConsumeLogs(context.Background(), noBody))
	require.NoError(t, h.c.ConsumeLogs(context.Background(), noBody))
	m := readMetrics(h.c.collect())
	assert.Equal(t, 4.0, m.sum("sip.calls"), "each CDR once, with and without a body")
	assert.Equal(t, int64(6), telemetrytest.Sum(t, h.tel, "otelcol_sipkpi_records", attribute.String("reason", "cdr_duplicate")))

	h.now = h.now.Add(2 * time.Minute) // past the window: the same CDR counts again
	h.c.collect()
	require.NoError(t, h.c.ConsumeLogs(context.Background(), batch()))
	assert.Equal(t, 6.0, readMetrics(h.c.collect()).sum("sip.calls"))

	off := createDefaultConfig().(*Config)
	off.Duplicates.MaxEntries = 0
	h2 := startConnector(t, off, new(consumertest.MetricsSink))
	require.NoError(t, h2.c.ConsumeLogs(context.Background(), batch()))
	require.NoError(t, h2.c.ConsumeLogs(context.Background(), batch()))
	assert.Equal(t, 4.0, readMetrics(h2.c.collect()).sum("sip.calls"))
}
