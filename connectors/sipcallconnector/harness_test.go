package sipcallconnector

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/connectors/sipcallconnector/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/telemetry"
)

var t0 = time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)

// harness runs a connector on a clock the test moves.
type harness struct {
	c       *callConnector
	sink    *consumertest.TracesSink
	metrics *telemetry.Reader

	mu  sync.Mutex
	now time.Time
}

// testConfig is the default configuration with a flush timer that never
// fires within a test: the test flushes when it moves the clock.
func testConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.FlushInterval = time.Hour
	return cfg
}

func startConnector(t *testing.T, cfg *Config) *harness {
	t.Helper()
	return startConnectorTo(t, cfg, new(consumertest.TracesSink))
}

func startConnectorTo(t *testing.T, cfg *Config, next consumer.Traces) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := connectortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	c, err := newConnector(set, cfg, next)
	require.NoError(t, err)
	metrics, err := telemetry.NewReader(tel, "metadata.yaml")
	require.NoError(t, err)
	h := &harness{c: c, metrics: metrics, now: t0}
	if s, ok := next.(*consumertest.TracesSink); ok {
		h.sink = s
	}
	c.now = h.time
	require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, c.Shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	return h
}

func (h *harness) time() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func (h *harness) set(at time.Time) {
	h.mu.Lock()
	h.now = at
	h.mu.Unlock()
}

// advance moves the clock and runs a flush.
func (h *harness) advance(d time.Duration) {
	h.set(h.time().Add(d))
	h.c.flush(context.Background())
}

func (h *harness) consume(t *testing.T, ld plog.Logs) {
	t.Helper()
	require.NoError(t, h.c.ConsumeLogs(context.Background(), ld))
}

// replay feeds the records of lds one at a time in capture order, the
// clock at each record's capture time plus 10 ms (the way to the
// collector), flushing after each: the connector sees the call as it
// happens.
func (h *harness) replay(t *testing.T, lds ...plog.Logs) {
	t.Helper()
	type item struct {
		res pcommon.Resource
		lr  plog.LogRecord
	}
	var items []item
	for _, ld := range lds {
		for _, r := range record.All(ld) {
			items = append(items, item{r.Resource, r.Log})
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].lr.Timestamp() < items[j].lr.Timestamp() })
	for _, it := range items {
		if at := it.lr.Timestamp().AsTime().Add(10 * time.Millisecond); at.After(h.time()) {
			h.set(at)
		}
		one := plog.NewLogs()
		rl := one.ResourceLogs().AppendEmpty()
		it.res.CopyTo(rl.Resource())
		it.lr.CopyTo(rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty())
		h.consume(t, one)
		h.c.flush(context.Background())
	}
}

// drain moves the clock past every wait and lifetime but the longest
// bounds, so that every call that can end has ended and left.
func (h *harness) drain() {
	cfg := h.c.cfg
	h.advance(cfg.Linger + cfg.CDRWait + cfg.IdleTimeout + time.Second)
}

func (h *harness) counter(t assert.TestingT, name string, attrs ...attribute.KeyValue) int64 {
	return h.metrics.Sum(t, name, attrs...)
}

// state reads sipcall_state_entries of one table.
func (h *harness) state(t assert.TestingT, tbl table) int64 {
	return h.counter(t, "sipcall_state_entries", attribute.String("state", string(tbl)))
}

// span is one emitted span, flattened for assertions.
type span struct {
	node          string // its resource's service.instance.id
	trace         pcommon.TraceID
	id, parent    pcommon.SpanID
	name          string
	kind          ptrace.SpanKind
	start, end    time.Time
	attrs         map[string]any
	status        ptrace.StatusCode
	statusMessage string
	events        []spanEvent
	dropped       uint32
}

type spanEvent struct {
	name  string
	at    time.Time
	attrs map[string]any
}

func (s span) duration() time.Duration { return s.end.Sub(s.start) }

// spans flattens what the sink received, in order.
func (h *harness) spans() []span {
	var out []span
	for _, td := range h.sink.AllTraces() {
		out = append(out, flatten(td)...)
	}
	return out
}

func flatten(td ptrace.Traces) []span {
	var out []span
	for _, rs := range td.ResourceSpans().All() {
		node := record.Node(rs.Resource())
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				s := span{node: node, trace: sp.TraceID(), id: sp.SpanID(), parent: sp.ParentSpanID(), name: sp.Name(),
					kind: sp.Kind(), start: sp.StartTimestamp().AsTime(), end: sp.EndTimestamp().AsTime(),
					attrs: sp.Attributes().AsRaw(), status: sp.Status().Code(), statusMessage: sp.Status().Message(),
					dropped: sp.DroppedEventsCount()}
				for _, ev := range sp.Events().All() {
					s.events = append(s.events, spanEvent{name: ev.Name(), at: ev.Timestamp().AsTime(), attrs: ev.Attributes().AsRaw()})
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// only returns the spans named name (of kind kind, unless it is -1).
func only(spans []span, name string, kind ptrace.SpanKind) []span {
	var out []span
	for _, s := range spans {
		if s.name == name && (kind < 0 || s.kind == kind) {
			out = append(out, s)
		}
	}
	return out
}

// where returns the spans for which keep is true.
func where(spans []span, keep func(span) bool) []span {
	var out []span
	for _, s := range spans {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// one returns the single span named name of kind kind.
func one(t *testing.T, spans []span, name string, kind ptrace.SpanKind) span {
	t.Helper()
	got := only(spans, name, kind)
	require.Len(t, got, 1, "spans %q of kind %v in %s", name, kind, tree(spans))
	return got[0]
}

// eventNames lists a span's events as "name" or "name(r)" for a
// retransmission.
func eventNames(s span) []string {
	var out []string
	for _, e := range s.events {
		n := e.name
		if r, _ := e.attrs[record.AttrSIPMessageRetransmission].(bool); r {
			n += "(r)"
		}
		out = append(out, n)
	}
	return out
}
