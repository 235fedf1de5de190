package sipcallconnector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipflow"
)

// b2bua is a call through a B2BUA at P (sbc-1): the caller's leg a-leg,
// the callee's b-leg with its own Call-ID, From tag and CSeq, both keyed
// a-leg by the sip_correlation processor.
func b2bua(t *testing.T, ld plog.Logs) {
	a := sipflow.New(t, ld, t0, "a-leg")
	b := sipflow.New(t, ld, t0, "b-leg")
	a.CorrelationID, b.CorrelationID = "a-leg", "a-leg"
	ab := func(cseq int, m string) string { return sipflow.Branch("a-leg", "a", cseq, m) }
	bb := func(cseq int, m string) string { return sipflow.Branch("b-leg", "b", cseq, m) }
	a.Request(0, addrA, addrP, "INVITE", 1, ab(1, "INVITE"), "", "")
	a.Response(0.0005, addrP, addrA, 100, "INVITE", 1, ab(1, "INVITE"), "")
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
}

// TestB2BUALegs: the legs of a B2BUA, joined by sip.correlation_id, are one
// trace: the key's Call-ID under the root, the other under its leg span.
// P's addresses cannot be learned from a B2BUA (the request it sends on is
// another request): without nodes the spans are INTERNAL.
func TestB2BUALegs(t *testing.T) {
	for _, tt := range []struct {
		name          string
		nodes         []NodeConfig
		inKind, outKn ptrace.SpanKind
	}{
		{"nodes configured", []NodeConfig{{Name: "sbc-1", Addresses: []string{addrP}}}, server, client},
		{"no nodes", nil, internal, internal},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Nodes = tt.nodes
			h := startConnector(t, cfg)
			ld := sipflow.Logs("sbc-1")
			b2bua(t, ld)
			h.replay(t, ld)
			h.drain()
			spans := h.spans()
			tr := tree(spans)
			root := one(t, spans, nameCall, internal)
			assert.Equal(t, calltrace.TraceID("a-leg"), root.trace)
			assert.Equal(t, calltrace.RootSpanID("a-leg"), root.id)
			assert.Equal(t, "a-leg", root.attrs[record.AttrSIPCallID])
			assert.Equal(t, "a-leg", root.attrs[record.AttrSIPCorrelationID])
			assert.Equal(t, "answered", root.attrs[record.AttrSIPCallResult])
			assert.Equal(t, 1.001, root.attrs[record.AttrSIPCallPostDialDelay], "the caller's leg")
			assert.Equal(t, at(t0, 30.05), root.end, "to the last leg's end")
			leg := one(t, spans, nameLeg, internal)
			assert.Equal(t, calltrace.LegSpanID("a-leg", "b-leg"), leg.id)
			assert.Equal(t, root.id, leg.parent)
			assert.Equal(t, "b-leg", leg.attrs[record.AttrSIPCallID])
			assert.Equal(t, "answered", leg.attrs[record.AttrSIPCallResult])
			assert.Equal(t, at(t0, 0.002), leg.start)
			assert.Equal(t, at(t0, 30.05), leg.end)
			for _, s := range spans {
				assert.Equal(t, root.trace, s.trace)
				switch s.attrs[record.AttrSIPCallID] {
				case "a-leg":
					if s.name != nameCall {
						assert.Equal(t, root.id, s.parent, "%s of a-leg under the root\n%s", s.name, tr)
						assert.Equal(t, tt.inKind, s.kind, "%s of a-leg\n%s", s.name, tr)
					}
				case "b-leg":
					if s.name != nameLeg {
						assert.Equal(t, leg.id, s.parent, "%s of b-leg under its leg\n%s", s.name, tr)
						assert.Equal(t, tt.outKn, s.kind, "%s of b-leg\n%s", s.name, tr)
					}
				default:
					t.Errorf("span %s of no leg", s.name)
				}
			}
			assert.Len(t, spans, 8, tr) // root, leg, 3 transactions per leg
			assertNothingLeft(t, h)
		})
	}
}

func TestCDRs(t *testing.T) {
	cdrOf := func(t *testing.T, callID string) plog.Logs {
		ld := sipflow.Logs("sbc-1")
		sipflow.CDR(t, ld, t0, callID, 200, 0, 5, 60.05, "caller", "carrier-a")
		return ld
	}
	call := func(t *testing.T) plog.Logs {
		ld := sipflow.Logs("sbc-1")
		answered(sipflow.New(t, ld, t0, "call"))
		return ld
	}
	cdrTime := at(t0, 60.05)
	tests := []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{
		{"in time: on the root, which does not wait cdr_wait", func(t *testing.T, h *harness) {
			h.replay(t, call(t))
			h.consume(t, cdrOf(t, "call"))
			h.advance(h.c.cfg.Linger)
			root := one(t, h.spans(), nameCall, internal)
			assert.Equal(t, 55.05, root.attrs[record.AttrCDRDurationSecs])
			assert.Equal(t, "carrier-a", root.attrs[record.AttrCDRExtraPrefix+"trunk"])
			assert.Equal(t, "caller", root.attrs[record.AttrCDRDisconnectInitiator])
			assert.Equal(t, "10.0.0.2", root.attrs[record.AttrDestinationAddress])
			assert.Equal(t, 55.0, root.attrs[record.AttrSIPCallDuration], "the messages' own measure stays")
			assert.Empty(t, only(h.spans(), nameCDR, anyKind))
			assert.Equal(t, int64(1), h.counter(t, "sipcall_records", attribute.String("outcome", "cdr")))
		}},
		{"a copy delivered again is one", func(t *testing.T, h *harness) {
			h.replay(t, call(t))
			h.consume(t, cdrOf(t, "call"))
			h.consume(t, cdrOf(t, "call"))
			h.drain()
			assert.Empty(t, only(h.spans(), nameCDR, anyKind))
			assert.Equal(t, int64(1), h.counter(t, "sipcall_records", attribute.String("outcome", "cdr_duplicate")))
		}},
		{"without a CDR the root waits cdr_wait", func(t *testing.T, h *harness) {
			h.replay(t, call(t))
			h.advance(h.c.cfg.Linger)
			assert.Empty(t, only(h.spans(), nameCall, anyKind))
			h.advance(h.c.cfg.CDRWait - h.c.cfg.Linger)
			one(t, h.spans(), nameCall, internal)
		}},
		{"late: a SIP CDR span under the root", func(t *testing.T, h *harness) {
			h.replay(t, call(t))
			h.drain()
			h.advance(h.c.cfg.Linger + time.Second) // still known as ended: cdr_wait is longer
			h.consume(t, cdrOf(t, "call"))
			c := one(t, h.spans(), nameCDR, internal)
			assert.Equal(t, calltrace.TraceID("call"), c.trace)
			assert.Equal(t, calltrace.RootSpanID("call"), c.parent)
			assert.Equal(t, calltrace.CDRSpanID("call", "call", cdrTime), c.id)
			assert.Equal(t, at(t0, 0), c.start, "from the CDR's start")
			assert.Equal(t, cdrTime, c.end, "to its end")
			assert.Equal(t, "carrier-a", c.attrs[record.AttrCDRExtraPrefix+"trunk"])
			assert.Equal(t, int64(1), h.counter(t, "sipcall_records", attribute.String("outcome", "cdr_late")))
			assert.NotContains(t, one(t, h.spans(), nameCall, internal).attrs, record.AttrCDRDurationSecs)
		}},
		{"before its messages: held for them", func(t *testing.T, h *harness) {
			h.consume(t, cdrOf(t, "call"))
			h.replay(t, call(t))
			h.advance(h.c.cfg.Linger)
			root := one(t, h.spans(), nameCall, internal)
			assert.Equal(t, "carrier-a", root.attrs[record.AttrCDRExtraPrefix+"trunk"])
			assert.Equal(t, "answered", root.attrs[record.AttrSIPCallResult])
		}},
		{"no message of its call: a CDR span after cdr_wait", func(t *testing.T, h *harness) {
			h.consume(t, cdrOf(t, "lonely"))
			h.advance(h.c.cfg.CDRWait - time.Second)
			assert.Empty(t, h.spans())
			h.advance(time.Second)
			c := one(t, h.spans(), nameCDR, internal)
			assert.Equal(t, calltrace.RootSpanID("lonely"), c.parent)
			assert.Len(t, h.spans(), 1)
			assert.Equal(t, int64(1), h.counter(t, "sipcall_cdrs_without_messages"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startConnector(t, testConfig())
			tt.run(t, h)
			h.drain()
			assertNothingLeft(t, h)
		})
	}
}

// TestOutOfDialog: REGISTER, OPTIONS ... are each a trace of their own,
// per method as out_of_dialog.methods says (OPTIONS off by default).
func TestOutOfDialog(t *testing.T) {
	registrar := "10.0.0.20"
	flows := func(t *testing.T) plog.Logs {
		ld := sipflow.Logs("sbc-1")
		// a REGISTER challenged by P itself, then relayed to the registrar
		r := sipflow.New(t, ld, t0, "reg")
		r.Request(0, addrA, addrP, "REGISTER", 1, sipflow.Branch("reg", "a", 1, "REGISTER"), "", "")
		r.Response(0.001, addrP, addrA, 401, "REGISTER", 1, sipflow.Branch("reg", "a", 1, "REGISTER"), "p1")
		r.Request(0.1, addrA, addrP, "REGISTER", 2, sipflow.Branch("reg", "a", 2, "REGISTER"), "", "")
		r.Request(0.101, addrP, registrar, "REGISTER", 2, sipflow.Branch("reg", "b", 2, "REGISTER"), "", "")
		r.Response(0.15, registrar, addrP, 200, "REGISTER", 2, sipflow.Branch("reg", "b", 2, "REGISTER"), "r1")
		r.Response(0.151, addrP, addrA, 200, "REGISTER", 2, sipflow.Branch("reg", "a", 2, "REGISTER"), "r1")
		// a keep-alive
		o := sipflow.New(t, ld, t0, "ping")
		o.Request(1, addrB, addrP, "OPTIONS", 1, sipflow.Branch("ping", "a", 1, "OPTIONS"), "", "")
		o.Response(1.001, addrP, addrB, 200, "OPTIONS", 1, sipflow.Branch("ping", "a", 1, "OPTIONS"), "p2")
		return ld
	}
	reg1, reg2 := calltrace.OutOfDialogKey("reg", 1, "REGISTER"), calltrace.OutOfDialogKey("reg", 2, "REGISTER")
	ping := calltrace.OutOfDialogKey("ping", 1, "OPTIONS")
	tests := []struct {
		name    string
		methods []string
		traces  map[string][]string // key -> its spans' name and kind
		off     int64
	}{
		// P answered the first REGISTER itself, but relayed the second
		// before the first's span left: its address was learned by then
		{"default: REGISTER traced, OPTIONS not", nil,
			map[string][]string{reg1: {"REGISTER SERVER"}, reg2: {"REGISTER SERVER", "REGISTER CLIENT"}}, 2},
		// nothing relayed is traced: P's address is not known
		{"OPTIONS on, REGISTER off", []string{"OPTIONS"},
			map[string][]string{ping: {"OPTIONS INTERNAL"}}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.methods != nil {
				cfg.OutOfDialog.Methods = tt.methods
			}
			h := startConnector(t, cfg)
			h.replay(t, flows(t))
			h.drain()
			spans := h.spans()
			got := map[string][]string{}
			for key := range tt.traces {
				for _, s := range spans {
					if s.trace == calltrace.TraceID(key) {
						assert.True(t, s.parent.IsEmpty(), "an out-of-dialog transaction's spans are its trace's roots")
						got[key] = append(got[key], s.name+" "+kindName(s.kind))
					}
				}
			}
			assert.Equal(t, tt.traces, got, tree(spans))
			n := 0
			for _, v := range tt.traces {
				n += len(v)
			}
			assert.Len(t, spans, n, tree(spans))
			assert.Equal(t, tt.off, h.counter(t, "sipcall_records", attribute.String("outcome", "out_of_dialog_disabled")))
			assertNothingLeft(t, h)
		})
	}
}

// TestOutOfDialogWithoutResponse: an OPTIONS nobody answers ends at
// unanswered_timeout, an error.
func TestOutOfDialogWithoutResponse(t *testing.T) {
	cfg := testConfig()
	cfg.OutOfDialog.Methods = []string{"OPTIONS"}
	h := startConnector(t, cfg)
	ld := sipflow.Logs("sbc-1")
	o := sipflow.New(t, ld, t0, "ping")
	o.Request(0, addrP, addrB, "OPTIONS", 1, sipflow.Branch("ping", "b", 1, "OPTIONS"), "", "")
	h.replay(t, ld)
	h.advance(cfg.UnansweredTimeout - time.Second)
	assert.Empty(t, h.spans())
	h.advance(time.Second)
	s := one(t, h.spans(), "OPTIONS", internal)
	assert.Equal(t, ptrace.StatusCodeError, s.status)
	assert.Equal(t, "no final response", s.statusMessage)
	assert.Equal(t, int64(1), h.counter(t, "sipcall_evictions", attribute.String("reason", "idle_timeout")))
	assertNothingLeft(t, h)
}

// TestIncludeBody copies each message onto its event, only when asked.
func TestIncludeBody(t *testing.T) {
	for _, include := range []bool{false, true} {
		cfg := testConfig()
		cfg.IncludeBody = include
		h := startConnector(t, cfg)
		ld := sipflow.Logs("sbc-1")
		answered(sipflow.New(t, ld, t0, "call"))
		h.replay(t, ld)
		h.drain()
		in := one(t, h.spans(), "INVITE", server)
		body, ok := in.events[0].attrs[record.AttrSIPMessageBody]
		require.Equal(t, include, ok)
		if include {
			assert.Contains(t, body, "INVITE sip:bob@example.com SIP/2.0\r\n")
			assert.Contains(t, in.events[1].attrs[record.AttrSIPMessageBody], "SIP/2.0 100 ")
		}
	}
}

// TestSetupShowsWhileTheCallRuns: a transaction's span leaves linger after
// it completed, long before its call ends.
func TestSetupShowsWhileTheCallRuns(t *testing.T) {
	h := startConnector(t, testConfig())
	ld := sipflow.Logs("sbc-1")
	f := sipflow.New(t, ld, t0, "long")
	f.Invite(0)
	f.Answer(5, addrB, 200, "b1")
	f.ACK2xx(5.1, 1, "b1")
	h.replay(t, ld)
	h.advance(h.c.cfg.Linger)
	spans := h.spans()
	assert.Len(t, only(spans, "INVITE", anyKind), 2, tree(spans))
	assert.Len(t, only(spans, "ACK", anyKind), 2)
	assert.Empty(t, only(spans, nameCall, anyKind), "the call goes on")
	assert.Equal(t, int64(1), h.state(t, tableCalls))
	for _, s := range spans {
		assert.Equal(t, calltrace.RootSpanID("long"), s.parent)
	}
	// an established call is not idle: it waits for its BYE
	h.advance(h.c.cfg.IdleTimeout * 2)
	assert.Equal(t, int64(1), h.state(t, tableCalls))
	bye := sipflow.Logs("sbc-1")
	sipflow.New(t, bye, t0, "long").InDialog(h.time().Sub(t0).Seconds(), "BYE", 2, "b1", false)
	h.replay(t, bye)
	h.drain()
	root := one(t, h.spans(), nameCall, internal)
	assert.Equal(t, "callee", root.attrs[record.AttrSIPCallDisconnectInitiator])
	assertNothingLeft(t, h)
}

// TestKeyThatIsNoCallID: when the correlation key is no Call-ID (RFC 7989
// Session-ID, say), every Call-ID of the call is a leg under the root, and
// the root describes the caller's leg.
func TestKeyThatIsNoCallID(t *testing.T) {
	cfg := testConfig()
	cfg.Nodes = []NodeConfig{{Name: "sbc-1", Addresses: []string{addrP}}}
	h := startConnector(t, cfg)
	ld := sipflow.Logs("sbc-1")
	b2bua(t, ld)
	for _, r := range record.All(ld) {
		r.Log.Attributes().PutStr(record.AttrSIPCorrelationID, "ab1f9c6e-0c1d-4e53-9d0f-6b3c2b9f3a11")
	}
	h.replay(t, ld)
	h.drain()
	spans := h.spans()
	const key = "ab1f9c6e-0c1d-4e53-9d0f-6b3c2b9f3a11"
	root := one(t, spans, nameCall, internal)
	assert.Equal(t, calltrace.RootSpanID(key), root.id)
	assert.Equal(t, "a-leg", root.attrs[record.AttrSIPCallID], "the caller's leg")
	assert.Equal(t, key, root.attrs[record.AttrSIPCorrelationID])
	legs := only(spans, nameLeg, internal)
	require.Len(t, legs, 2, tree(spans))
	for _, l := range legs {
		callID := l.attrs[record.AttrSIPCallID].(string)
		assert.Equal(t, calltrace.LegSpanID(key, callID), l.id)
		assert.Equal(t, root.id, l.parent)
		for _, s := range spans {
			if s.name != nameLeg && s.name != nameCall && s.attrs[record.AttrSIPCallID] == callID {
				assert.Equal(t, l.id, s.parent, "%s of %s under its leg", s.name, callID)
			}
		}
	}
	assert.Len(t, spans, 9, tree(spans))
}

// TestTwoNodes: a call through two proxies in series, each capturing its
// two hops, is one trace over two resources: the hop between the proxies is
// a CLIENT span at the first and a SERVER span at the second, each under
// its node's resource; the root goes under the node of the first record.
func TestTwoNodes(t *testing.T) {
	const p2 = "10.0.0.11"
	n1, n2 := sipflow.Logs("sbc-1"), sipflow.Logs("sbc-2")
	f1, f2 := sipflow.New(t, n1, t0, "call"), sipflow.New(t, n2, t0, "call")
	br := func(hop string) string { return sipflow.Branch("call", hop, 1, "INVITE") }
	f1.Request(0, addrA, addrP, "INVITE", 1, br("a"), "", "")
	f1.Request(0.001, addrP, p2, "INVITE", 1, br("p"), "", "")
	f2.Request(0.0012, addrP, p2, "INVITE", 1, br("p"), "", "") // the same packet, captured at sbc-2
	f2.Request(0.002, p2, addrB, "INVITE", 1, br("b"), "", "")
	f2.Response(1, addrB, p2, 486, "INVITE", 1, br("b"), "b1")
	f2.Request(1.0005, p2, addrB, "ACK", 1, br("b"), "b1", "")
	f2.Response(1.001, p2, addrP, 486, "INVITE", 1, br("p"), "b1")
	f1.Response(1.0012, p2, addrP, 486, "INVITE", 1, br("p"), "b1")
	f1.Request(1.0015, addrP, p2, "ACK", 1, br("p"), "b1", "")
	f2.Request(1.0017, addrP, p2, "ACK", 1, br("p"), "b1", "")
	f1.Response(1.002, addrP, addrA, 486, "INVITE", 1, br("a"), "b1")
	f1.Request(1.003, addrA, addrP, "ACK", 1, br("a"), "b1", "")
	h := startConnector(t, testConfig())
	h.replay(t, n1, n2)
	h.drain()
	spans := h.spans()
	tr := tree(spans)
	root := one(t, spans, nameCall, internal)
	assert.Equal(t, "sbc-1", root.node)
	assert.Equal(t, "busy", root.attrs[record.AttrSIPCallResult])
	got := map[string]string{}
	for _, s := range only(spans, "INVITE", anyKind) {
		assert.Equal(t, root.id, s.parent)
		assert.Equal(t, root.trace, s.trace)
		got[fmt.Sprintf("%s %v->%v", s.node, s.attrs[record.AttrSourceAddress], s.attrs[record.AttrDestinationAddress])] = kindName(s.kind)
	}
	assert.Equal(t, map[string]string{
		"sbc-1 10.0.0.1->10.0.0.10":  "SERVER",
		"sbc-1 10.0.0.10->10.0.0.11": "CLIENT",
		"sbc-2 10.0.0.10->10.0.0.11": "SERVER",
		"sbc-2 10.0.0.11->10.0.0.2":  "CLIENT",
	}, got, tr)
	assert.Len(t, spans, 5, tr)
	// one ResourceSpans per node in a batch
	for _, td := range h.sink.AllTraces() {
		seen := map[string]bool{}
		for _, rs := range td.ResourceSpans().All() {
			n := record.Node(rs.Resource())
			assert.False(t, seen[n], "node %s twice in one batch", n)
			seen[n] = true
			v, _ := rs.Resource().Attributes().Get(record.AttrServiceName)
			assert.Equal(t, "siphon", v.Str(), "the record's resource")
		}
	}
	assertNothingLeft(t, h)
}

// TestShutdownEmitsEndedCalls: at shutdown an ended call's root leaves at
// once, without waiting linger or cdr_wait.
func TestShutdownEmitsEndedCalls(t *testing.T) {
	h := startConnector(t, testConfig())
	ld := sipflow.Logs("sbc-1")
	answered(sipflow.New(t, ld, t0, "call"))
	h.replay(t, ld)
	require.NoError(t, h.c.Shutdown(context.Background()))
	assert.Len(t, h.spans(), 7, tree(h.spans()))
	one(t, h.spans(), nameCall, internal)
	assert.Zero(t, h.counter(t, "sipcall_evictions"))
}

// TestScanner: a call or an out-of-dialog transaction whose first request
// came from a SIP scanner's User-Agent (internal/sipscanner) is marked
// sip.scanner on its root and on the spans of that request, so that tail
// sampling can keep it; nothing else is marked.
func TestScanner(t *testing.T) {
	h := startConnector(t, testConfig())
	ld := sipflow.Logs("sbc-1")
	// friendly-scanner probing through P: 404 from B, relayed, ACKed
	s := sipflow.New(t, ld, t0, "scan")
	br := func(hop string) string { return sipflow.Branch("scan", hop, 1, "INVITE") }
	s.Request(0, addrA, addrP, "INVITE", 1, br("a"), "", "friendly-scanner")
	s.Request(0.001, addrP, addrB, "INVITE", 1, br("b"), "", "friendly-scanner")
	s.Answer(0.2, addrB, 404, "b1")
	s.ACKFailure(0.3, "b1")
	// sipvicious registering, answered by P itself
	r := sipflow.New(t, ld, t0, "reg")
	r.Request(1, addrA, addrP, "REGISTER", 1, sipflow.Branch("reg", "a", 1, "REGISTER"), "", "sipvicious 0.3.4")
	r.Response(1.001, addrP, addrA, 401, "REGISTER", 1, sipflow.Branch("reg", "a", 1, "REGISTER"), "p1")
	// an ordinary call
	answered(sipflow.New(t, ld, t0, "call"))
	h.replay(t, ld)
	h.drain()
	spans := h.spans()
	marked := map[string]int{}
	for _, sp := range spans {
		if v, ok := sp.attrs[record.AttrSIPScanner]; ok {
			assert.Equal(t, true, v, "%s: only ever true", sp.name)
			switch sp.trace {
			case calltrace.TraceID("scan"):
				marked[sp.name]++
			case calltrace.TraceID(calltrace.OutOfDialogKey("reg", 1, "REGISTER")):
				marked["ood "+sp.name]++
			default:
				t.Errorf("%s of another call marked", sp.name)
			}
		}
	}
	assert.Equal(t, map[string]int{nameCall: 1, "INVITE": 2, "ood REGISTER": 1}, marked, tree(spans))
	assertNothingLeft(t, h)
}

// TestUnansweredCalls: a call none of whose requests got any response (an
// INVITE flood, a dead next hop) ends at unanswered_timeout (RFC 3261
// Timer B has long fired), not idle_timeout: its state, and what the
// memory limiter sees of it, goes in seconds. A call that got a 100 or a
// 180 is alive at the other end and waits idle_timeout.
func TestUnansweredCalls(t *testing.T) {
	for _, tt := range []struct {
		name    string
		flow    func(f *sipflow.Flow)
		endsAt  func(cfg *Config) time.Duration
		counted int64
	}{
		{"INVITE only", func(f *sipflow.Flow) {
			f.Request(0, sipflow.AddrA, sipflow.AddrP, "INVITE", 1, sipflow.Branch(f.CallID, "a", 1, "INVITE"), "", "")
		}, func(cfg *Config) time.Duration { return cfg.UnansweredTimeout }, 1},
		{"INVITE retransmitted, still unanswered", func(f *sipflow.Flow) {
			f.Request(0, sipflow.AddrA, sipflow.AddrP, "INVITE", 1, sipflow.Branch(f.CallID, "a", 1, "INVITE"), "", "")
			f.Request(0.5, sipflow.AddrA, sipflow.AddrP, "INVITE", 1, sipflow.Branch(f.CallID, "a", 1, "INVITE"), "", "")
		}, func(cfg *Config) time.Duration { return cfg.UnansweredTimeout }, 1},
		{"100 Trying: the next hop works on it", func(f *sipflow.Flow) {
			f.Invite(0)
		}, func(cfg *Config) time.Duration { return cfg.IdleTimeout }, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			h := startConnector(t, cfg)
			ld := sipflow.Logs("sbc-1")
			tt.flow(sipflow.New(t, ld, t0, "unanswered"))
			h.replay(t, ld)
			last := 0.5 * float64(time.Second) // the flows' last message, at most
			h.advance(tt.endsAt(cfg) - time.Duration(last) - time.Second)
			assert.Empty(t, h.spans(), "still in flight")
			assert.Equal(t, int64(1), h.state(t, tableCalls))
			h.advance(time.Duration(last) + 2*time.Second)
			root := one(t, h.spans(), nameCall, internal)
			assert.Equal(t, ptrace.StatusCodeError, root.status)
			assert.Equal(t, "timeout", root.statusMessage)
			assert.Equal(t, "timeout", root.attrs[record.AttrSIPCallResult])
			assert.Equal(t, tt.counted, h.counter(t, "sipcall_evictions", attribute.String("reason", "idle_timeout")))
			assertNothingLeft(t, h)
		})
	}
}
