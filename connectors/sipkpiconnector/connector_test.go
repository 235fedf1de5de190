package sipkpiconnector

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/internal/testenv/pinned"
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
	// every call has a result, code and initiator of its own: one series each
	require.Len(t, m["sip.calls"], 11)
	for _, dp := range m["sip.calls"] {
		assert.Len(t, dp.exemplars, 1, dp.attrs)
	}
	// The 486 series has exactly one call: its exemplar is that call.
	assert.Equal(t, []string{"call-3"}, m.point(t, "sip.calls", labelStatusCode, "486").exemplars)
	// Histograms keep one per bucket: the 32 s PDD bucket points at call 9.
	pdd := m.point(t, "sip.call.post_dial_delay")
	assert.Contains(t, pdd.exemplars, "call-9")
	assert.Len(t, pdd.exemplars, 6, "one per non-empty bucket")

	// Each exemplar goes out once: a store like Prometheus refuses a
	// repeated one as out of order. The series themselves go out again.
	again := readMetrics(h.c.collect())
	assert.Equal(t, seriesCounts(m), seriesCounts(again))
	for name, dps := range again {
		for _, dp := range dps {
			assert.Empty(t, dp.exemplars, "%s%v", name, dp.attrs)
		}
	}

	cfg := createDefaultConfig().(*Config)
	cfg.Exemplars.Enabled = false
	h2 := startConnector(t, cfg, new(consumertest.MetricsSink))
	require.NoError(t, h2.c.ConsumeLogs(context.Background(), cdrs))
	off := readMetrics(h2.c.collect())
	require.Len(t, off["sip.calls"], 11)
	for name, dps := range off {
		for _, dp := range dps {
			assert.Empty(t, dp.exemplars, "%s%v", name, dp.attrs)
		}
	}
}

// seriesCounts is the number of series of each metric.
func seriesCounts(m metricSet) map[string]int {
	out := map[string]int{}
	for name, dps := range m {
		out[name] = len(dps)
	}
	return out
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
	assert.Equal(t, 10.0, m.sum(t, "sip.calls"), "no call is lost to the cap")
	assert.Equal(t, 2.0, m.sum(t, "sip.calls", "node", "sbc-0"))
	assert.Equal(t, 2.0, m.sum(t, "sip.calls", "node", "sbc-1"))
	overflow := m.point(t, "sip.calls", labelOverflow, "true")
	assert.Equal(t, int64(6), overflow.value)
	assert.NotContains(t, overflow.attrs, "node", "the overflow series carries no dimension")
	n, _, _ := m.hist(t, "sip.call.duration", labelOverflow, "true")
	assert.Equal(t, uint64(6), n)
	// Each of the six overflowing CDRs resolved its dimensions once.
	assert.Equal(t, int64(6), h.counter(t, "sipkpi_dimension_overflows"))
}

// options returns one OPTIONS (or method) request per call id from src.
func requests(t *testing.T, src, method, ua string, at time.Time, callIDs ...string) plog.Logs {
	ld := newFlows("sbc-1")
	for _, id := range callIDs {
		f := newFlow(t, ld, at, id)
		f.Request(0, src, addrP, method, 1, branch(id, "a", 1, method), "", ua)
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
	assert.Equal(t, 1.0, m.sum(t, "sip.scanner.detections", labelScannerReason, "user_agent"))
	assert.Equal(t, 5.0, m.sum(t, "sip.scanner.requests", labelScannerReason, "user_agent"))
	assert.Equal(t, 1.0, m.sum(t, "sip.scanner.detections", labelScannerReason, "flood"))
	assert.Equal(t, 25.0, m.sum(t, "sip.scanner.requests", labelScannerReason, "flood"), "every request of the flooding window")
	assert.Equal(t, 2.0, m.sum(t, "sip.retransmissions", labelMethod, "REGISTER"))

	// A quiet window clears the flood flag; a second flood is a second
	// detection.
	require.NoError(t, h.c.ConsumeLogs(ctx, requests(t, "198.51.100.9", "REGISTER", "Zoiper", t0.Add(11*time.Second), "late-1")))
	require.NoError(t, h.c.ConsumeLogs(ctx, requests(t, "198.51.100.9", "REGISTER", "Zoiper", t0.Add(22*time.Second), ids("again", 12)...)))
	m = readMetrics(h.c.collect())
	floods := m.point(t, "sip.scanner.detections", labelScannerReason, "flood")
	assert.Equal(t, int64(2), floods.value)
	assert.Equal(t, []string{"again-9"}, floods.exemplars, "the request that crossed the threshold")
	ua := m.point(t, "sip.scanner.detections", labelScannerReason, "user_agent")
	assert.Equal(t, int64(1), ua.value)
	assert.Empty(t, ua.exemplars, "already emitted with the first flush")
}

func TestTransactionsWithoutFinalResponseExpire(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	h := startConnector(t, cfg, new(consumertest.MetricsSink))
	ctx := context.Background()
	require.NoError(t, h.c.ConsumeLogs(ctx, requests(t, addrP, "OPTIONS", "sipproxy", t0, "dead-peer")))
	m := readMetrics(h.c.collect())
	m.absent(t, "sip.transactions")
	assert.Equal(t, int64(1), h.counter(t, "sipkpi_state_entries", attribute.String("state", "transactions")))

	h.advance(cfg.Transactions.Timeout + time.Second)
	m = readMetrics(h.c.collect())
	assert.Equal(t, int64(1), m.point(t, "sip.transactions", labelMethod, "OPTIONS", labelStatusCode, "none").value)
	assert.Equal(t, int64(0), h.counter(t, "sipkpi_state_entries", attribute.String("state", "transactions")))
	assert.Equal(t, int64(1), h.counter(t, "sipkpi_state_evictions",
		attribute.String("state", "transactions"), attribute.String("reason", "expired")))

	// A completed transaction lingers only for linger, then a late
	// retransmission of its request counts as new (as it would at a UAS).
	msgs, _ := recordedCalls(t, t0)
	require.NoError(t, h.c.ConsumeLogs(ctx, msgs))
	require.Positive(t, h.counter(t, "sipkpi_state_entries", attribute.String("state", "transactions")))
	require.Positive(t, h.counter(t, "sipkpi_state_entries", attribute.String("state", "setups")))
	h.advance(cfg.Transactions.Linger + time.Second)
	h.c.collect()
	assert.Equal(t, int64(0), h.counter(t, "sipkpi_state_entries", attribute.String("state", "transactions")))
	assert.Equal(t, int64(0), h.counter(t, "sipkpi_state_entries", attribute.String("state", "setups")))
}

// TestUnansweredTransactionsExpireSooner: a transaction that got no
// response at all, not even a 100, is dropped (and counted as "none")
// after transactions.unanswered_timeout, its call setup with it; one that
// got a 100 waits for transactions.timeout (an INVITE may ring for
// minutes). Before, an INVITE flood held both tables for 5 minutes.
func TestUnansweredTransactionsExpireSooner(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	h := startConnector(t, cfg, new(consumertest.MetricsSink))
	ld := newFlows("sbc-1")
	flood := newFlow(t, ld, t0, "flood-1")
	flood.Request(0, addrA, addrP, "INVITE", 1, branch("flood-1", "a", 1, "INVITE"), "", "")
	tried := newFlow(t, ld, t0, "tried-1")
	tried.Request(0, addrA, addrP, "INVITE", 1, branch("tried-1", "a", 1, "INVITE"), "", "")
	tried.Response(0.1, addrP, addrA, 100, "INVITE", 1, branch("tried-1", "a", 1, "INVITE"), "")
	require.NoError(t, h.c.ConsumeLogs(context.Background(), ld))
	txs, setups := attribute.String("state", "transactions"), attribute.String("state", "setups")
	require.Equal(t, int64(2), h.counter(t, "sipkpi_state_entries", txs))
	require.Equal(t, int64(2), h.counter(t, "sipkpi_state_entries", setups))

	h.advance(cfg.Transactions.UnansweredTimeout + time.Second)
	m := readMetrics(h.c.collect())
	assert.Equal(t, int64(1), m.point(t, "sip.transactions", labelMethod, "INVITE", labelStatusCode, "none").value, "flood-1")
	assert.Equal(t, int64(1), h.counter(t, "sipkpi_state_entries", txs), "tried-1 waits")
	assert.Equal(t, int64(1), h.counter(t, "sipkpi_state_entries", setups), "tried-1 waits")

	h.advance(cfg.Transactions.Timeout)
	m = readMetrics(h.c.collect())
	assert.Equal(t, int64(2), m.point(t, "sip.transactions", labelMethod, "INVITE", labelStatusCode, "none").value)
	assert.Zero(t, h.counter(t, "sipkpi_state_entries", txs))
	assert.Zero(t, h.counter(t, "sipkpi_state_entries", setups))
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
	assert.Equal(t, int64(100), h.counter(t, "sipkpi_state_entries", tx))
	assert.Equal(t, int64(900), h.counter(t, "sipkpi_state_evictions", tx, attribute.String("reason", "capacity")))
	assert.Equal(t, int64(10), h.counter(t, "sipkpi_state_entries", attribute.String("state", "sources")))
	m := readMetrics(h.c.collect())
	assert.Equal(t, 1000.0, m.sum(t, "sip.requests", labelMethod, "OPTIONS"))
	assert.Equal(t, 900.0, m.sum(t, "sip.transactions", labelStatusCode, "none"), "evicted unfinished transactions still count")
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
	other.SetEventName("hep.log")
	// RTCP without figures (the receiver could not read it, or an SR
	// without report blocks) is a media report without figures
	rtcp := lrs.AppendEmpty()
	rtcp.SetEventName("hep.rtcp")
	require.NoError(t, h.c.ConsumeLogs(context.Background(), ld))

	assert.Equal(t, int64(1), h.counter(t, "sipkpi_records_invalid", attribute.String("reason", "message_no_call_id_or_cseq")))
	assert.Equal(t, int64(1), h.counter(t, "sipkpi_records_invalid", attribute.String("reason", "cdr_no_response_code")))
	assert.Equal(t, int64(1), h.counter(t, "sipkpi_records", attribute.String("reason", "cdr_invalid")))
	assert.Equal(t, int64(1), h.counter(t, "sipkpi_records", attribute.String("reason", "cdr_other")))
	assert.Equal(t, int64(1), h.counter(t, "sipkpi_records", attribute.String("reason", "ignored")))
	assert.Equal(t, int64(1), h.counter(t, "sipkpi_records", attribute.String("reason", "hep_rtcp")))
	assert.Equal(t, int64(1), h.counter(t, "sipkpi_media_reports", attribute.String("outcome", "no_figures")))
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
	assert.Equal(t, 2.0, m.sum(t, "sip.registration.events", labelRegEvent, "registered"))
	assert.Equal(t, 1.0, m.sum(t, "sip.registration.events", labelRegEvent, "refreshed"))
	assert.Equal(t, 1.0, m.sum(t, "sip.registration.events", labelRegEvent, "none", labelStatusCode, "403"))
	m.absent(t, "sip.calls")
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
	first := h.time()
	require.NoError(t, h.c.ConsumeLogs(context.Background(), cdrFrom(t, "sbc-1", "a", 200)))
	require.Eventually(t, func() bool { return next.count() >= 1 }, 5*time.Second, 5*time.Millisecond,
		"the timer flushes after two refusals")
	h.advance(time.Minute)
	require.NoError(t, h.c.ConsumeLogs(context.Background(), cdrFrom(t, "sbc-1", "b", 486)))
	require.NoError(t, h.c.Shutdown(context.Background()))
	last := readMetrics(next.batches[len(next.batches)-1])
	assert.Equal(t, 2.0, last.sum(t, "sip.calls"), "the final flush carries every call, refused flushes included")
	// Cumulative: the series of call "a" keeps the start time it had in the
	// first flush; that of call "b" starts when b was counted.
	a0 := readMetrics(next.batches[0]).point(t, "sip.calls", labelStatusCode, "200")
	assert.True(t, a0.cumulative)
	assert.Equal(t, first, a0.start)
	a := last.point(t, "sip.calls", labelStatusCode, "200")
	assert.True(t, a.cumulative)
	assert.Equal(t, first, a.start)
	assert.Equal(t, first.Add(time.Minute), last.point(t, "sip.calls", labelStatusCode, "486").start)
}

// heapPerEntry feeds ld (SIP messages and CDRs) to a fresh kpi on each
// iteration and reports the heap it holds afterwards divided by n, in unit;
// check sees the kpi.
func heapPerEntry(b *testing.B, cfg *Config, ld plog.Logs, n int, unit string, check func(*kpi)) {
	for b.Loop() {
		k := newKPI(cfg)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		now := time.Now()
		for _, r := range record.All(ld) {
			if r.Log.EventName() == record.EventCDR {
				k.cdr(r.Resource.Attributes(), r.Log, r.Log.Timestamp().AsTime(), now)
				continue
			}
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
		f.Request(0, addrA, addrP, "INVITE", 1, branch(f.CallID, "a", 1, "INVITE"), "", "")
	}
	heapPerEntry(b, cfg, ld, n, "B/transaction", func(k *kpi) {
		if k.tx.Len() != n {
			b.Fatalf("%d transactions tracked", k.tx.Len())
		}
	})
}

// BenchmarkCDRMemory measures the heap held per CDR remembered for the
// duplicates check.
func BenchmarkCDRMemory(b *testing.B) {
	const n = 100_000
	cfg := createDefaultConfig().(*Config)
	cfg.Duplicates.MaxEntries = n
	ld := newFlows("sbc-1")
	for i := range n {
		cdrRecord(&testing.T{}, ld, t0, fmt.Sprintf("%08x-4b1c-9a2e-%012d@192.0.2.10", i, i), 200, 0, 1, 61, "caller", "a")
	}
	heapPerEntry(b, cfg, ld, n, "B/cdr", func(k *kpi) {
		if k.cdrs.Len() != n {
			b.Fatalf("%d CDRs remembered", k.cdrs.Len())
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
		f.Request(0, src, addrP, "OPTIONS", 1, branch(f.CallID, "a", 1, "OPTIONS"), "", "")
	}
	heapPerEntry(b, cfg, ld, n, "B/source", func(k *kpi) {
		if k.sources.Len() != n {
			b.Fatalf("%d sources tracked", k.sources.Len())
		}
	})
}

// TestDuplicateCDRsCountOnce: a CDR delivered again (at-least-once delivery
// between collector tiers) counts once within the window, whatever became of
// its body: kept, dropped, or rendered again from the attributes by an
// exporter's source: attributes and received again. A different CDR of the
// same call (the other leg of a B2BUA, a REGISTER refresh) counts.
func TestDuplicateCDRsCountOnce(t *testing.T) {
	base := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	invite := cdrJSON(base, "dup-1", 200, 0, 1, 61, "caller", "leg-a")
	// SIPhon writes milliseconds; a timestamp written finer goes out of a
	// rendering at milliseconds
	fine := strings.Replace(invite, `"timestamp":"2026-11-24T12:01:01.000Z"`, `"timestamp":"2026-11-24T12:01:01.000417Z"`, 1)
	require.NotEqual(t, invite, fine)
	register := `{"timestamp":"2026-11-24T12:00:00.000Z","call_id":"reg-1","from_uri":"sip:alice@example.com",` +
		`"to_uri":"sip:alice@example.com","ruri":"sip:example.com","method":"REGISTER","response_code":200,` +
		`"timestamp_start":"2026-11-24T11:59:59.950Z","timestamp_answer":null,"timestamp_end":"2026-11-24T12:00:00.000Z",` +
		`"duration_secs":0,"source_ip":"10.0.0.1","destination_ip":"10.0.0.10","transport":"udp","user_agent":"Ozona/5.0",` +
		`"auth_user":"alice","disconnect_initiator":null,"sip_reason":null,"reg_event":"registered"}`

	// rendered is the copy an exporter with source: attributes sends on, as
	// the next tier's siphon_cdr receiver makes it again.
	rendered := func(t *testing.T, lr plog.LogRecord) string {
		b, err := cdrrecord.AppendJSON(nil, lr, record.SourceAttributes)
		require.NoError(t, err)
		return string(b)
	}
	tests := []struct {
		name   string
		first  string
		again  func(t *testing.T, first plog.LogRecord, ld plog.Logs)
		metric string
		counts bool
	}{
		{"the same record", invite, func(_ *testing.T, first plog.LogRecord, ld plog.Logs) {
			first.CopyTo(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty())
		}, "sip.calls", false},
		{"without its body", invite, func(_ *testing.T, first plog.LogRecord, ld plog.Logs) {
			lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
			first.CopyTo(lr)
			lr.Body().SetStr("")
		}, "sip.calls", false},
		{"with an empty body value", invite, func(_ *testing.T, first plog.LogRecord, ld plog.Logs) {
			lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
			first.CopyTo(lr)
			pcommon.NewValueEmpty().CopyTo(lr.Body())
		}, "sip.calls", false},
		{"rendered from its attributes, received again later by another tier", invite, func(t *testing.T, first plog.LogRecord, ld plog.Logs) {
			appendCDR(t, ld, rendered(t, first), base.Add(time.Minute))
		}, "sip.calls", false},
		{"a finer timestamp rendered at milliseconds", fine, func(t *testing.T, first plog.LogRecord, ld plog.Logs) {
			appendCDR(t, ld, rendered(t, first), base)
		}, "sip.calls", false},
		{"a REGISTER rendered from its attributes", register, func(t *testing.T, first plog.LogRecord, ld plog.Logs) {
			appendCDR(t, ld, rendered(t, first), base)
		}, "sip.registration.events", false},
		{"the other leg of the call: another trunk", invite, func(t *testing.T, _ plog.LogRecord, ld plog.Logs) {
			appendCDR(t, ld, strings.Replace(invite, `"trunk":"leg-a"`, `"trunk":"leg-b"`, 1), base)
		}, "sip.calls", true},
		{"the other leg of the call: another destination", invite, func(t *testing.T, _ plog.LogRecord, ld plog.Logs) {
			appendCDR(t, ld, strings.Replace(invite, `"destination_ip":"10.0.0.2"`, `"destination_ip":"10.0.0.3"`, 1), base)
		}, "sip.calls", true},
		{"the same call ended another way", invite, func(t *testing.T, _ plog.LogRecord, ld plog.Logs) {
			appendCDR(t, ld, strings.Replace(invite, `"disconnect_initiator":"caller"`, `"disconnect_initiator":"callee"`, 1), base)
		}, "sip.calls", true},
		{"a REGISTER refresh", register, func(t *testing.T, _ plog.LogRecord, ld plog.Logs) {
			refresh := strings.NewReplacer(`"timestamp":"2026-11-24T12:00:00.000Z"`, `"timestamp":"2026-11-24T12:10:00.000Z"`,
				`"timestamp_start":"2026-11-24T11:59:59.950Z"`, `"timestamp_start":"2026-11-24T12:09:59.950Z"`,
				`"timestamp_end":"2026-11-24T12:00:00.000Z"`, `"timestamp_end":"2026-11-24T12:10:00.000Z"`,
				`"reg_event":"registered"`, `"reg_event":"refreshed"`).Replace(register)
			require.NotEqual(t, register, refresh)
			appendCDR(t, ld, refresh, base)
		}, "sip.registration.events", true},
		{"a REGISTER refresh with the same event", register, func(t *testing.T, _ plog.LogRecord, ld plog.Logs) {
			appendCDR(t, ld, strings.Replace(register, `"timestamp":"2026-11-24T12:00:00.000Z"`, `"timestamp":"2026-11-24T12:10:00.000Z"`, 1), base)
		}, "sip.registration.events", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			h := startConnector(t, cfg, new(consumertest.MetricsSink))
			ld := newFlows("sbc-1")
			first := appendCDR(t, ld, tt.first, base)
			require.NoError(t, h.c.ConsumeLogs(context.Background(), ld))
			again := newFlows("sbc-2")
			tt.again(t, first, again)
			require.NoError(t, h.c.ConsumeLogs(context.Background(), again))
			want, dups := 2.0, int64(0)
			if !tt.counts {
				want, dups = 1, 1
			}
			assert.Equal(t, want, readMetrics(h.c.collect()).sum(t, tt.metric))
			assert.Equal(t, dups, h.counter(t, "sipkpi_records", attribute.String("reason", "cdr_duplicate")))
			assert.Equal(t, 2-dups, h.counter(t, "sipkpi_state_entries", attribute.String("state", "cdrs")), "counted CDRs remembered")
		})
	}
}

// TestDuplicatesWindow: a copy counts once within duplicates.window and
// again after it; max_entries 0 counts every copy.
func TestDuplicatesWindow(t *testing.T) {
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
	assert.Equal(t, 2.0, readMetrics(h.c.collect()).sum(t, "sip.calls"))
	assert.Equal(t, int64(4), h.counter(t, "sipkpi_records", attribute.String("reason", "cdr_duplicate")))

	h.advance(2 * time.Minute) // past the window: the same CDR counts again
	h.c.collect()
	assert.Equal(t, int64(2), h.counter(t, "sipkpi_state_evictions", attribute.String("state", "cdrs"), attribute.String("reason", "expired")))
	require.NoError(t, h.c.ConsumeLogs(context.Background(), batch()))
	assert.Equal(t, 4.0, readMetrics(h.c.collect()).sum(t, "sip.calls"))

	off := createDefaultConfig().(*Config)
	off.Duplicates.MaxEntries = 0
	h2 := startConnector(t, off, new(consumertest.MetricsSink))
	require.NoError(t, h2.c.ConsumeLogs(context.Background(), batch()))
	require.NoError(t, h2.c.ConsumeLogs(context.Background(), batch()))
	assert.Equal(t, 4.0, readMetrics(h2.c.collect()).sum(t, "sip.calls"))
	assert.Zero(t, h2.counter(t, "sipkpi_records", attribute.String("reason", "cdr_duplicate")))
}

// TestStateKeepsNoMessage: the transactions, setups, sources, media calls
// and streams, series and exemplars sipkpi holds keep no record's message
// alive (a method name kept as the record's slice kept every INVITE of an
// overload whole for as long as its transaction lived).
func TestStateKeepsNoMessage(t *testing.T) {
	h := startConnector(t, createDefaultConfig().(*Config), new(consumertest.MetricsSink))
	ld := pinned.Calls(t, 100)
	bodies := pinned.Watch(ld)
	require.NoError(t, h.c.ConsumeLogs(context.Background(), ld))
	ld = plog.Logs{}
	for _, state := range []string{"transactions", "setups", "sources", "cdrs", "media_calls", "media_streams"} {
		require.Positive(t, h.counter(t, "sipkpi_state_entries", attribute.String("state", state)), state)
	}
	assert.Empty(t, bodies.Reachable(), "messages still reachable, of %d", bodies.Len())
	m := readMetrics(h.c.collect())
	require.NotEmpty(t, m.point(t, "sip.requests", labelMethod, "INVITE").exemplars, "the exemplars were held")
}

// TestExemplarSlotKeepsNoLongBuffer: a slot reuses its buffers for the
// usual Call-IDs, and gives up the one a long Call-ID made it grow.
func TestExemplarSlotKeepsNoLongBuffer(t *testing.T) {
	var e exemplar
	e.store(t0, 1, callRef{callID: "a84b4c76e66710@pc33.atlanta.example.com", cseqMethod: "INVITE"})
	buf := &e.callID[0]
	e.store(t0, 1, callRef{callID: "b84b4c76e66710@pc33.atlanta.example.com", cseqMethod: "INVITE"})
	assert.Same(t, buf, &e.callID[0], "reused")
	long := strings.Repeat("x", 60_000)
	e.store(t0, 1, callRef{callID: long})
	assert.Equal(t, long, string(e.callID))
	e.store(t0, 1, callRef{callID: "c84b4c76e66710@pc33.atlanta.example.com"})
	assert.Equal(t, "c84b4c76e66710@pc33.atlanta.example.com", string(e.callID))
	assert.LessOrEqual(t, cap(e.callID), maxReused, "the long one's buffer went")
}
