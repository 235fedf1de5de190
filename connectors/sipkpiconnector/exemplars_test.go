package sipkpiconnector

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/siphon-otel/siphon-otel/connectors/sipcallconnector"
	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/record"
)

// exemplarRef is what an exemplar points at.
type exemplarRef struct {
	metric string
	trace  pcommon.TraceID
	span   pcommon.SpanID
	callID string
}

func exemplarRefs(md pmetric.Metrics) []exemplarRef {
	var out []exemplarRef
	add := func(name string, es pmetric.ExemplarSlice) {
		for i := 0; i < es.Len(); i++ {
			e := es.At(i)
			id, _ := e.FilteredAttributes().Get(attrExemplarCallID)
			out = append(out, exemplarRef{metric: name, trace: e.TraceID(), span: e.SpanID(), callID: id.Str()})
		}
	}
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				switch m.Type() {
				case pmetric.MetricTypeSum:
					for _, dp := range m.Sum().DataPoints().All() {
						add(m.Name(), dp.Exemplars())
					}
				case pmetric.MetricTypeHistogram:
					for _, dp := range m.Histogram().DataPoints().All() {
						add(m.Name(), dp.Exemplars())
					}
				}
			}
		}
	}
	return out
}

// traceCalls records a B2BUA call whose legs the sip_correlation processor
// keyed a-leg (both CDRs too), a busy call through P with its CDR, and a
// REGISTER challenged by P: a trace of its own.
func traceCalls(t *testing.T) plog.Logs {
	ld := newFlows("sbc-1")
	a, b := newFlow(t, ld, t0, "a-leg"), newFlow(t, ld, t0, "b-leg")
	a.CorrelationID, b.CorrelationID = "a-leg", "a-leg"
	ab := func(cseq int, m string) string { return branch("a-leg", "a", cseq, m) }
	bb := func(cseq int, m string) string { return branch("b-leg", "b", cseq, m) }
	a.Request(0, addrA, addrP, "INVITE", 1, ab(1, "INVITE"), "", "")
	b.Request(0.002, addrP, addrB, "INVITE", 7, bb(7, "INVITE"), "", "")
	b.Response(1, addrB, addrP, 180, "INVITE", 7, bb(7, "INVITE"), "b1")
	a.Response(1.001, addrP, addrA, 180, "INVITE", 1, ab(1, "INVITE"), "p1")
	b.Response(3, addrB, addrP, 200, "INVITE", 7, bb(7, "INVITE"), "b1")
	a.Response(3.001, addrP, addrA, 200, "INVITE", 1, ab(1, "INVITE"), "p1")
	a.Request(3.1, addrA, addrP, "ACK", 1, ab(1, "ACK"), "p1", "")
	b.Request(3.101, addrP, addrB, "ACK", 7, bb(7, "ACK"), "b1", "")
	a.Request(30, addrA, addrP, "BYE", 2, ab(2, "BYE"), "p1", "")
	a.Response(30.001, addrP, addrA, 200, "BYE", 2, ab(2, "BYE"), "p1")
	b.Request(30.002, addrP, addrB, "BYE", 8, bb(8, "BYE"), "b1", "")
	b.Response(30.05, addrB, addrP, 200, "BYE", 8, bb(8, "BYE"), "b1")
	for _, leg := range []string{"a-leg", "b-leg"} {
		cdrRecord(t, ld, t0, leg, 200, 0, 3, 30, "caller", "trunk")
		lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		lrs.At(lrs.Len()-1).Attributes().PutStr(record.AttrSIPCorrelationID, "a-leg")
	}

	busy := newFlow(t, ld, t0, "busy")
	busy.Invite(40)
	busy.Answer(41, addrB, 486, "b1")
	busy.ACKFailure(41.1, "b1")
	cdrRecord(t, ld, t0, "busy", 486, 40, -1, 41, "", "trunk")

	reg := newFlow(t, ld, t0, "reg")
	reg.Request(50, addrA, addrP, "REGISTER", 1, branch("reg", "a", 1, "REGISTER"), "", "")
	reg.Response(50.001, addrP, addrA, 401, "REGISTER", 1, branch("reg", "a", 1, "REGISTER"), "p1")
	return ld
}

// TestExemplarsOpenTheCallTrace: an exemplar carries the trace id and the
// root span id of its call, as the sipcall connector builds the trace from
// the same records (both connectors run here on them): a B2BUA's b-leg and
// its CDR point at the call of their correlation key, a REGISTER at its own
// transaction's trace (no root: an empty span id). The Call-ID stays on
// the exemplar as an attribute (remote write keeps it, for Homer).
func TestExemplarsOpenTheCallTrace(t *testing.T) {
	ld := traceCalls(t)

	// the spans sipcall makes of the records (at shutdown it emits the
	// ended calls and the completed transactions at once)
	traces := new(consumertest.TracesSink)
	cf := sipcallconnector.NewFactory()
	tc, err := cf.CreateLogsToTraces(context.Background(), connectortest.NewNopSettings(cf.Type()), cf.CreateDefaultConfig(), traces)
	require.NoError(t, err)
	require.NoError(t, tc.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, tc.ConsumeLogs(context.Background(), ld))
	require.NoError(t, tc.Shutdown(context.Background()))
	spans := map[pcommon.TraceID]map[pcommon.SpanID]string{}
	for _, td := range traces.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					if spans[sp.TraceID()] == nil {
						spans[sp.TraceID()] = map[pcommon.SpanID]string{}
					}
					spans[sp.TraceID()][sp.SpanID()] = sp.Name()
				}
			}
		}
	}
	require.Len(t, spans, 3, "the B2BUA call, the busy call, the REGISTER")

	h := startConnector(t, createDefaultConfig().(*Config), new(consumertest.MetricsSink))
	require.NoError(t, h.c.ConsumeLogs(context.Background(), ld))
	refs := exemplarRefs(h.c.collect())
	byCall := map[string]int{}
	for _, r := range refs {
		byCall[r.callID]++
		trace, ok := spans[r.trace]
		if !assert.True(t, ok, "%s: exemplar of %s: trace %s is no trace of sipcall", r.metric, r.callID, r.trace) {
			continue
		}
		switch r.callID {
		case "reg":
			assert.Equal(t, calltrace.TraceID(calltrace.OutOfDialogKey("reg", 1, "REGISTER")), r.trace, r.metric)
			assert.True(t, r.span.IsEmpty(), "%s: an out-of-dialog trace has no root", r.metric)
		default:
			assert.Equal(t, "SIP call", trace[r.span], "%s: exemplar of %s opens the call's root", r.metric, r.callID)
		}
		if r.callID == "b-leg" {
			assert.Equal(t, calltrace.TraceID("a-leg"), r.trace, "%s: the b-leg is in the a-leg's call", r.metric)
		}
	}
	for _, id := range []string{"a-leg", "b-leg", "busy", "reg"} {
		assert.Positive(t, byCall[id], "exemplars of %s: %v", id, byCall)
	}
}

// TestTransactionEntryRef: a transaction that never completes is counted
// when its entry leaves, with the exemplar of the record that made it; the
// entry keeps only its key (and a correlation key other than the Call-ID)
// and reads the call back from it.
func TestTransactionEntryRef(t *testing.T) {
	for _, tt := range []struct {
		name, callID, corr, method string
		cseq                       uint32
		keep                       string // the entry's own copy of corr
	}{
		{"call", "a-leg", "", "INVITE", 1, ""},
		{"b-leg", "b-leg", "a-leg", "INVITE", 7, "a-leg"},
		{"keyed by itself", "a-leg", "a-leg", "BYE", 2, ""},
		{"out of dialog", "reg", "", "REGISTER", 4294967295, ""},
		{"NUL in the Call-ID", "x\x00y", "", "OPTIONS", 3, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			txKey := tt.callID + "\x00" + fmt.Sprint(tt.cseq) + "\x00" + tt.method + "\x00z9hG4bK-1"
			e := newTxEntry(tt.method, nil, txKey, len(tt.callID), tt.corr)
			assert.Equal(t, tt.keep, e.corr)
			assert.Equal(t, callRef{callID: tt.callID, corr: tt.keep, cseq: tt.cseq, cseqMethod: tt.method}, e.ref())
			trace, span := calltrace.IDs(e.ref().corr, e.ref().callID, e.ref().cseq, e.ref().cseqMethod)
			wantTrace, wantSpan := calltrace.IDs(tt.corr, tt.callID, tt.cseq, tt.method)
			assert.Equal(t, wantTrace, trace, "the same trace as the record's")
			assert.Equal(t, wantSpan, span)
		})
	}
}
