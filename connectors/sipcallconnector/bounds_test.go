package sipcallconnector

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/pinned"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipflow"
)

// TestDeterministicIDs: two collectors given the same records, in other
// batches at other times, emit the same spans with the same ids.
func TestDeterministicIDs(t *testing.T) {
	input := func(t *testing.T) plog.Logs {
		ld := sipflow.Logs("sbc-1")
		answered(sipflow.New(t, ld, t0, "call-1"))
		b2bua(t, ld)
		f := sipflow.New(t, ld, t0.Add(time.Minute), "call-2")
		f.Invite(0)
		f.Answer(1, addrB, 486, "b1")
		f.ACKFailure(1.01, "b1")
		return ld
	}
	ids := func(spans []span) map[string]string {
		out := map[string]string{}
		for _, s := range spans {
			k := fmt.Sprintf("%s %s %v %s", s.name, s.attrs[record.AttrSIPCallID], s.attrs[record.AttrSIPCSeqNumber], kindName(s.kind))
			out[k] = fmt.Sprintf("%s/%s<-%s %s..%s", s.trace, s.id, s.parent, s.start.Format(time.RFC3339Nano), s.end.Format(time.RFC3339Nano))
		}
		return out
	}
	h1 := startConnector(t, testConfig())
	h1.replay(t, input(t))
	h1.drain()
	h2 := startConnector(t, testConfig())
	h2.advance(3 * time.Hour) // another clock: ids and times do not depend on it
	h2.consume(t, input(t))   // in one batch
	h2.drain()
	a, b := ids(h1.spans()), ids(h2.spans())
	require.Len(t, a, len(h1.spans()), "each span is told apart by its name, Call-ID, CSeq and kind")
	assert.Len(t, a, 18) // 7 + 8 + 3
	assert.Equal(t, a, b)
}

// TestRestartMidCall: a collector restarted in the middle of a call emits
// the call's root with the ids the first one gave its transactions'
// parent.
func TestRestartMidCall(t *testing.T) {
	before, after := sipflow.Logs("sbc-1"), sipflow.Logs("sbc-1")
	f := sipflow.New(t, before, t0, "call")
	f.Invite(0)
	f.Answer(1.2, addrB, 180, "b1")
	f.Answer(5, addrB, 200, "b1")
	f.ACK2xx(5.1, 1, "b1")
	sipflow.New(t, after, t0, "call").InDialog(60, "BYE", 2, "b1", true)

	first := startConnector(t, testConfig())
	first.replay(t, before)
	require.NoError(t, first.c.Shutdown(context.Background()))
	early := first.spans()
	require.Len(t, early, 4, "the completed transactions leave at shutdown: %s", tree(early))
	assert.Empty(t, only(early, nameCall, anyKind), "the call had not ended")
	assert.Equal(t, int64(1), first.counter(t, "sipcall_evictions", attribute.String("reason", "shutdown")))

	second := startConnector(t, testConfig())
	second.set(t0.Add(59 * time.Second))
	second.replay(t, after)
	second.drain()
	late := second.spans()
	root := one(t, late, nameCall, internal)
	assert.Equal(t, calltrace.TraceID("call"), root.trace)
	assert.Equal(t, true, root.attrs[record.AttrSIPCallPartial], "its INVITE was before the restart")
	assert.Equal(t, int64(1), second.counter(t, "sipcall_records_malformed", attribute.String("reason", "unknown_dialog")))
	for _, s := range early {
		assert.Equal(t, root.trace, s.trace, s.name)
		assert.Equal(t, root.id, s.parent, "%s, emitted before the restart, hangs under the root emitted after it", s.name)
	}
	assert.Len(t, only(late, "BYE", anyKind), 2)
	assertNothingLeft(t, second)
}

func TestBounds(t *testing.T) {
	call := func(t *testing.T, ld plog.Logs, id string, base time.Time) *sipflow.Flow {
		f := sipflow.New(t, ld, base, id)
		f.Invite(0)
		return f
	}
	tests := []struct {
		name   string
		cfg    func(*Config)
		run    func(t *testing.T, h *harness)
		reason string
	}{
		{"max_calls evicts the least recently active", func(c *Config) { c.MaxCalls = 2 }, func(t *testing.T, h *harness) {
			ld := sipflow.Logs("sbc-1")
			for i := range 3 {
				call(t, ld, fmt.Sprint("c", i), t0.Add(time.Duration(i)*time.Second))
			}
			h.replay(t, ld)
			root := one(t, h.spans(), nameCall, internal)
			assert.Equal(t, calltrace.RootSpanID("c0"), root.id)
			assert.Equal(t, int64(2), h.state(t, tableCalls))
			assert.Len(t, h.spans(), 3, "the root and its two INVITEs: %s", tree(h.spans()))
		}, "max_calls"},
		{"max_spans_per_call", func(c *Config) { c.MaxSpansPerCall = 4 }, func(t *testing.T, h *harness) {
			ld := sipflow.Logs("sbc-1")
			answered(sipflow.New(t, ld, t0, "chatty"))
			h.replay(t, ld)
			spans := h.spans()
			assert.Len(t, spans, 4, tree(spans))
			assert.Equal(t, int64(1), h.counter(t, "sipcall_records", attribute.String("outcome", "span_limit")))
			assert.Equal(t, int64(4), h.counter(t, "sipcall_records", attribute.String("outcome", "message_late")),
				"the rest of the call after its eviction at the ACK P->B: the BYE transactions")
		}, "max_spans_per_call"},
		{"max_call_duration: a call that never ends", func(c *Config) { c.MaxCallDuration = time.Hour }, func(t *testing.T, h *harness) {
			ld := sipflow.Logs("sbc-1")
			f := call(t, ld, "endless", t0)
			f.Answer(5, addrB, 200, "b1")
			f.ACK2xx(5.1, 1, "b1")
			h.replay(t, ld)
			h.advance(time.Hour - time.Minute)
			assert.Empty(t, only(h.spans(), nameCall, anyKind))
			h.advance(time.Minute)
			one(t, h.spans(), nameCall, internal)
			bye := sipflow.Logs("sbc-1")
			sipflow.New(t, bye, t0, "endless").InDialog(3700, "BYE", 2, "b1", true)
			h.replay(t, bye)
			assert.Equal(t, int64(4), h.counter(t, "sipcall_records", attribute.String("outcome", "message_late")), "its BYE after the eviction")
			assert.Zero(t, h.counter(t, "sipcall_records_malformed", attribute.String("reason", "unknown_dialog")))
		}, "max_call_duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.cfg(cfg)
			h := startConnector(t, cfg)
			tt.run(t, h)
			root := one(t, h.spans(), nameCall, internal)
			assert.Equal(t, ptrace.StatusCodeError, root.status)
			assert.Equal(t, "evicted: "+tt.reason, root.statusMessage)
			assert.Equal(t, int64(1), h.counter(t, "sipcall_evictions", attribute.String("reason", tt.reason)))
			h.drain()
			h.advance(cfg.MaxCallDuration)
			assertNothingLeft(t, h)
			assert.Zero(t, h.state(t, tableEnded), "the ended keys expire")
		})
	}
}

// TestEventsCap: an INVITE retransmitted 70 times keeps its first 64
// messages as events and counts the rest as dropped; the final response
// beyond the cap still ends the span and sets its code.
func TestEventsCap(t *testing.T) {
	h := startConnector(t, testConfig())
	ld := sipflow.Logs("sbc-1")
	f := sipflow.New(t, ld, t0, "chatty")
	br := sipflow.Branch("chatty", "a", 1, "INVITE")
	f.Request(0, addrA, addrP, "INVITE", 1, br, "", "")
	for i := 1; i <= 70; i++ {
		f.Request(float64(i)*0.1, addrA, addrP, "INVITE", 1, br, "", "")
	}
	f.Response(7.5, addrP, addrA, 486, "INVITE", 1, br, "p1")
	f.Request(7.51, addrA, addrP, "ACK", 1, br, "p1", "")
	h.replay(t, ld)
	h.drain()

	spans := h.spans()
	in := one(t, spans, "INVITE", anyKind)
	require.Len(t, in.events, maxEvents, "the events kept")
	assert.Equal(t, 64, maxEvents, "the cap the README states")
	assert.Equal(t, uint32(71+2-maxEvents), in.dropped, "71 INVITEs, the 486 and the ACK: the rest counted as dropped")
	names := eventNames(in)
	assert.Equal(t, "INVITE", names[0])
	for i, n := range names[1:] {
		assert.Equal(t, "INVITE(r)", n, "event %d", i+1)
	}
	assert.Equal(t, at(t0, 6.3), in.events[maxEvents-1].at, "the 63rd retransmission is the last kept")
	assert.Equal(t, int64(486), in.attrs[record.AttrSIPResponseStatusCode], "the final response counts though its event was dropped")
	assert.Equal(t, at(t0, 7.51), in.end, "to the ACK")
	assert.Equal(t, int64(73), h.counter(t, "sipcall_records", attribute.String("outcome", "message")), "every message traced")
	assertNothingLeft(t, h)
}

// TestOutOfDialogFloodEvictsNoCall: out-of-dialog transactions have a
// table of their own (out_of_dialog.max_transactions): a flood of twice as
// many unanswered REGISTERs as it holds, among calls in flight that fill
// max_calls, evicts REGISTERs, counted under their own reason, and no
// call.
func TestOutOfDialogFloodEvictsNoCall(t *testing.T) {
	const calls, room = 10, 20
	cfg := testConfig()
	cfg.MaxCalls = calls
	cfg.OutOfDialog.MaxTransactions = room
	h := startConnector(t, cfg)
	setup, flood, end := sipflow.Logs("sbc-1"), sipflow.Logs("sbc-1"), sipflow.Logs("sbc-1")
	for i := range calls {
		id := fmt.Sprint("call-", i)
		f := sipflow.New(t, setup, t0, id)
		f.Invite(0)
		f.Answer(0.5, addrB, 180, "b1")
		g := sipflow.New(t, end, t0, id)
		g.Answer(20, addrB, 200, "b1")
		g.ACK2xx(20.1, 1, "b1")
		g.InDialog(30, "BYE", 2, "b1", true)
	}
	for i := range 2 * room {
		id := fmt.Sprint("reg-", i)
		sipflow.New(t, flood, t0, id).Request(1+float64(i)*0.01, addrA, addrP, "REGISTER", 1, sipflow.Branch(id, "a", 1, "REGISTER"), "", "")
	}
	h.replay(t, setup, flood)
	assert.Zero(t, h.counter(t, "sipcall_evictions", attribute.String("reason", "max_calls")), "no call evicted by the flood")
	assert.Equal(t, int64(room), h.counter(t, "sipcall_evictions", attribute.String("reason", "max_out_of_dialog_transactions")))
	assert.Equal(t, int64(calls), h.state(t, tableCalls))
	assert.Equal(t, int64(room), h.state(t, tableOutOfDialog))

	h.replay(t, end)
	h.drain()
	roots := only(h.spans(), nameCall, internal)
	assert.Len(t, roots, calls, tree(h.spans()))
	for _, r := range roots {
		assert.Equal(t, ptrace.StatusCodeUnset, r.status, "%s: %s", r.attrs[record.AttrSIPCallID], r.statusMessage)
		assert.Equal(t, "answered", r.attrs[record.AttrSIPCallResult], r.attrs[record.AttrSIPCallID])
	}
	assert.Len(t, only(h.spans(), "REGISTER", anyKind), 2*room, "every REGISTER traced, the evicted ones when evicted")
	assert.Equal(t, int64(room), h.counter(t, "sipcall_evictions", attribute.String("reason", "idle_timeout")), "the REGISTERs kept")
	assertNothingLeft(t, h)
}

// rawSIP is a message record built from text (with the addresses of A->P).
func rawSIP(t *testing.T, ld plog.Logs, at float64, text string) plog.LogRecord {
	f := sipflow.New(t, ld, t0, "raw")
	return f.Emit(at, addrA, addrP, text)
}

func TestBadInput(t *testing.T) {
	h := startConnector(t, testConfig())
	ld := sipflow.Logs("sbc-1")
	rawSIP(t, ld, 0, "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\n\r\n")
	rawSIP(t, ld, 0, "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\nCall-ID: no-cseq\r\n\r\n")
	rawSIP(t, ld, 0, "INVITE sip:b@example.com SIP/2.0\r\nCall-ID: no-method\r\nCSeq: 1 INVITE\r\n\r\n").
		Attributes().Remove(record.AttrSIPRequestMethod)
	rawSIP(t, ld, 0, "not SIP at all")
	// a BYE of a dialog never seen, and its 200: a partial call
	f := sipflow.New(t, ld, t0, "orphan-bye")
	f.Request(1, addrA, addrP, "BYE", 2, sipflow.Branch("orphan-bye", "a", 2, "BYE"), "b1", "")
	f.Response(1.05, addrP, addrA, 200, "BYE", 2, sipflow.Branch("orphan-bye", "a", 2, "BYE"), "b1")
	// a call whose INVITE P->B was not captured: B's 200 has no request
	g := sipflow.New(t, ld, t0, "half")
	g.Request(2, addrA, addrP, "INVITE", 1, sipflow.Branch("half", "a", 1, "INVITE"), "", "")
	g.Answer(3, addrB, 200, "b1")
	g.ACK2xx(3.1, 1, "b1")
	g.InDialog(10, "BYE", 2, "b1", true)
	// a CDR without Call-ID, an RTCP record without figures, and a record
	// of another event
	sipflow.CDR(t, ld, t0, "x", 200, 0, 1, 2, "caller", "a").Attributes().Remove(record.AttrSIPCallID)
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty().SetEventName("hep.rtcp")
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty().SetEventName("hep.log")
	h.replay(t, ld)
	h.drain()

	for reason, n := range map[string]int64{"no_call_id": 3, "no_cseq": 1, "not_request_or_response": 1,
		"unknown_dialog": 1, "response_without_request": 1} {
		assert.Equal(t, n, h.counter(t, "sipcall_records_malformed", attribute.String("reason", reason)), reason)
	}
	assert.Equal(t, int64(5), h.counter(t, "sipcall_records", attribute.String("outcome", "malformed")))
	assert.Equal(t, int64(1), h.counter(t, "sipcall_records", attribute.String("outcome", "ignored")))
	assert.Equal(t, int64(1), h.counter(t, "sipcall_records", attribute.String("outcome", "media_unusable")))
	assert.Equal(t, int64(2+9), h.counter(t, "sipcall_records", attribute.String("outcome", "message")))

	spans := h.spans()
	inTrace := func(key string) func(span) bool {
		return func(s span) bool { return s.trace == calltrace.TraceID(key) }
	}
	orphan := one(t, where(spans, inTrace("orphan-bye")), nameCall, internal)
	assert.Equal(t, true, orphan.attrs[record.AttrSIPCallPartial])
	assert.Equal(t, at(t0, 1), orphan.start)
	assert.Equal(t, at(t0, 1.05), orphan.end)
	assert.NotContains(t, orphan.attrs, record.AttrSIPCallResult)
	half := one(t, where(spans, inTrace("half")), "INVITE", client)
	assert.Equal(t, at(t0, 3), half.start, "the response is its start")
	assert.Equal(t, []string{"200"}, eventNames(half))
	assert.Equal(t, addrP, half.attrs[record.AttrSourceAddress], "the request's ends, from the response's")
	assert.Len(t, only(spans, nameCall, anyKind), 2, tree(spans))
	assertNothingLeft(t, h)
}

// TestManyCallsThatNeverEnd: 10,000 calls whose INVITE is never answered,
// with max_calls 1000: the tables stay within their bounds, every call
// beyond is counted as evicted, and the heap the connector holds stays
// bounded (1000 calls of 2 transactions and 1000 ended keys: measured
// under 2 MB).
func TestManyCallsThatNeverEnd(t *testing.T) {
	cfg := testConfig()
	cfg.MaxCalls = 1000
	h := startConnectorTo(t, cfg, consumertest.NewNop())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for batch := range 100 {
		ld := sipflow.Logs("sbc-1")
		for i := range 100 {
			n := batch*100 + i
			f := sipflow.New(t, ld, t0.Add(time.Duration(n)*time.Millisecond), fmt.Sprintf("%08x-4b1c-9a2e-%012d@192.0.2.10", n, n))
			f.Request(0, addrA, addrP, "INVITE", 1, sipflow.Branch(f.CallID, "a", 1, "INVITE"), "", "")
			f.Request(0.001, addrP, addrB, "INVITE", 1, sipflow.Branch(f.CallID, "b", 1, "INVITE"), "", "")
		}
		h.consume(t, ld)
		h.advance(time.Second)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap held after 10,000 calls with max_calls 1000: %d KB", held/1024)
	assert.Less(t, held, int64(8<<20), "bounded by max_calls, not by the calls seen")

	h.c.mu.Lock()
	calls, ended, nodes := h.c.tr.calls.Len(), h.c.tr.ended.Len(), h.c.tr.nodes.Len()
	h.c.mu.Unlock()
	assert.Equal(t, 1000, calls)
	assert.LessOrEqual(t, ended, 1000)
	assert.Equal(t, 1, nodes)
	assert.Equal(t, int64(1000), h.state(t, tableCalls))
	assert.Equal(t, int64(2000), h.state(t, tableTransactions))
	assert.Equal(t, int64(9000), h.counter(t, "sipcall_evictions", attribute.String("reason", "max_calls")))
	assert.Equal(t, int64(9000), h.counter(t, "sipcall_spans", attribute.String("span", "call")))
	assert.Equal(t, int64(20_000), h.counter(t, "sipcall_records", attribute.String("outcome", "message")))

	h.advance(cfg.IdleTimeout)
	assert.Equal(t, int64(1000), h.counter(t, "sipcall_evictions", attribute.String("reason", "idle_timeout")))
	assertNothingLeft(t, h)
}

// TestRefusedSpansAreCounted: the logs are consumed whatever the next
// consumer does with the spans; a refusal is counted.
func TestRefusedSpansAreCounted(t *testing.T) {
	h := startConnectorTo(t, testConfig(), consumertest.NewErr(assert.AnError))
	ld := sipflow.Logs("sbc-1")
	answered(sipflow.New(t, ld, t0, "call"))
	h.replay(t, ld)
	h.drain()
	assert.Equal(t, int64(7), h.counter(t, "sipcall_spans_refused"))
	assert.Equal(t, int64(7), h.counter(t, "sipcall_spans"))
}

// TestFlushTimer: the connector's own timer emits what is due.
func TestFlushTimer(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.FlushInterval = 10 * time.Millisecond
	h := startConnector(t, cfg)
	ld := sipflow.Logs("sbc-1")
	answered(sipflow.New(t, ld, t0, "call"))
	h.set(t0.Add(61 * time.Second))
	h.consume(t, ld)
	h.set(h.time().Add(cfg.CDRWait))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 7, h.sink.SpanCount())
	}, 5*time.Second, 5*time.Millisecond)
}

// TestStateKeepsNoMessage: the calls, transactions, events and media state
// sipcall holds keep no record's message alive (each string it keeps is a
// copy or a constant, never a slice of the message).
func TestStateKeepsNoMessage(t *testing.T) {
	h := startConnectorTo(t, testConfig(), consumertest.NewNop())
	ld := pinned.Calls(t, 100)
	bodies := pinned.Watch(ld)
	h.consume(t, ld)
	ld = plog.Logs{}
	for _, tbl := range []table{tableCalls, tableOutOfDialog, tableTransactions, tableMediaCalls, tableMediaStreams} {
		require.Positive(t, h.state(t, tbl), tbl)
	}
	assert.Empty(t, bodies.Reachable(), "messages still reachable, of %d", bodies.Len())
}
