package sipcallconnector

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipflow"
)

const (
	server   = ptrace.SpanKindServer
	client   = ptrace.SpanKindClient
	internal = ptrace.SpanKindInternal
	anyKind  = ptrace.SpanKind(-1)
	addrA    = sipflow.AddrA
	addrP    = sipflow.AddrP
	addrB    = sipflow.AddrB
)

// answered is a call through proxy P, captured by P (sbc-1) on both hops:
// INVITE, 100 from P, 180 and 200 from B, ACK, and the caller's BYE at 60 s.
func answered(f *sipflow.Flow) {
	f.Invite(0)
	f.Answer(1.2, addrB, 180, "b1")
	f.Answer(5, addrB, 200, "b1")
	f.ACK2xx(5.1, 1, "b1")
	f.InDialog(60, "BYE", 2, "b1", true)
}

// calls describes the call of one flow for checkCall.
type callWant struct {
	key       string
	root      map[string]any // attributes the root must have (others may be there)
	status    ptrace.StatusCode
	statusMsg string
	start     float64 // seconds after t0
	end       float64
	// txs counts transaction spans by name and kind
	txs map[string]map[ptrace.SpanKind]int
}

// checkCall holds the spans of one call to the design: one trace of the
// key's id, the root with its id and no parent, every transaction under
// the root, times from the captures.
func checkCall(t *testing.T, spans []span, want callWant) span {
	t.Helper()
	tr := tree(spans)
	root := one(t, spans, nameCall, internal)
	assert.Equal(t, calltrace.TraceID(want.key), root.trace, tr)
	assert.Equal(t, calltrace.RootSpanID(want.key), root.id)
	assert.True(t, root.parent.IsEmpty(), "the root has no parent")
	assert.Equal(t, at(t0, want.start), root.start, tr)
	assert.Equal(t, at(t0, want.end), root.end, tr)
	for k, v := range want.root {
		assert.Equal(t, v, root.attrs[k], "root attribute %s\n%s", k, tr)
	}
	assert.Equal(t, want.status, root.status, tr)
	assert.Equal(t, want.statusMsg, root.statusMessage)
	got := map[string]map[ptrace.SpanKind]int{}
	for _, s := range spans {
		assert.Equal(t, root.trace, s.trace, "one trace: %s", s.name)
		if s.name == nameCall || s.name == nameLeg || s.name == nameCDR {
			continue
		}
		if got[s.name] == nil {
			got[s.name] = map[ptrace.SpanKind]int{}
		}
		got[s.name][s.kind]++
		assert.Equal(t, root.id, s.parent, "%s under the root", s.name)
		assert.False(t, s.start.Before(root.start), "%s starts within the root", s.name)
		assert.False(t, s.end.After(root.end), "%s ends within the root", s.name)
		assert.Equal(t, "sbc-1", s.node, "the capturing node's resource")
	}
	assert.Equal(t, want.txs, got, tr)
	return root
}

func TestCallFlows(t *testing.T) {
	twoHops := func(n int) map[ptrace.SpanKind]int { return map[ptrace.SpanKind]int{server: n, client: n} }
	tests := []struct {
		name  string
		flow  func(f *sipflow.Flow)
		want  callWant
		check func(t *testing.T, spans []span)
	}{
		{
			name: "answered through one proxy, both hops captured",
			flow: answered,
			want: callWant{key: "call", start: 0, end: 60.051,
				root: map[string]any{record.AttrSIPCallResult: "answered", record.AttrSIPResponseStatusCode: int64(200),
					record.AttrSIPCallID: "call", record.AttrSIPCallPostDialDelay: 1.2, record.AttrSIPCallSetupDuration: 5.0,
					record.AttrSIPCallRingingDuration: 3.8, record.AttrSIPCallDuration: 55.0,
					record.AttrSIPCallDisconnectInitiator: "caller", record.AttrSIPFromURI: "sip:alice@example.com",
					record.AttrSIPToURI: "sip:bob@example.com", record.AttrUserAgentOriginal: "Ozona/5.0"},
				txs: map[string]map[ptrace.SpanKind]int{"INVITE": twoHops(1), "ACK": twoHops(1), "BYE": twoHops(1)}},
			check: func(t *testing.T, spans []span) {
				in := one(t, spans, "INVITE", server)
				assert.Equal(t, 5001*time.Millisecond, in.duration(), "A's INVITE to the 200 relayed to A")
				assert.Equal(t, []string{"INVITE", "100", "180", "200"}, eventNames(in))
				assert.Equal(t, []time.Time{at(t0, 0), at(t0, 0.0005), at(t0, 1.201), at(t0, 5.001)}, eventTimes(in))
				assert.Equal(t, map[string]any{record.AttrSIPRequestMethod: "INVITE", record.AttrNetworkIODirection: "receive",
					record.AttrServiceInstanceID: "sbc-1", record.AttrSIPMessageRetransmission: false}, in.events[0].attrs)
				assert.Equal(t, "transmit", in.events[3].attrs[record.AttrNetworkIODirection], "P sent the 200 to A")
				assert.Equal(t, map[string]any{record.AttrSIPRequestMethod: "INVITE", record.AttrSIPResponseStatusCode: int64(200),
					record.AttrSIPCSeqNumber: int64(1), record.AttrSIPViaBranch: sipflow.Branch("call", "a", 1, "INVITE"),
					record.AttrNetworkTransport: "udp", record.AttrSourceAddress: addrA, record.AttrSourcePort: int64(5060),
					record.AttrDestinationAddress: addrP, record.AttrDestinationPort: int64(5060), record.AttrSIPCallID: "call",
					// the setup as this hop saw it
					record.AttrSIPCallPostDialDelay: 1.201, record.AttrSIPCallSetupDuration: 5.001,
					record.AttrSIPCallRingingDuration: 3.8, record.AttrSIPCallResult: "answered"}, in.attrs)
				assert.Equal(t, ptrace.StatusCodeUnset, in.status)
				out := one(t, spans, "INVITE", client)
				assert.Equal(t, 4999*time.Millisecond, out.duration(), "P's INVITE to B's 200")
				assert.Equal(t, []any{1.199, 4.999, 3.8}, []any{out.attrs[record.AttrSIPCallPostDialDelay],
					out.attrs[record.AttrSIPCallSetupDuration], out.attrs[record.AttrSIPCallRingingDuration]}, "P->B's own setup")
				assert.Nil(t, one(t, spans, "BYE", server).attrs[record.AttrSIPCallPostDialDelay], "only initial INVITEs carry a setup")
				assert.Equal(t, []string{"INVITE", "180", "200"}, eventNames(out))
				assert.Equal(t, "transmit", out.events[0].attrs[record.AttrNetworkIODirection])
				assert.Equal(t, "receive", out.events[2].attrs[record.AttrNetworkIODirection])
				assert.Zero(t, one(t, spans, "ACK", server).duration())
				assert.Equal(t, 51*time.Millisecond, one(t, spans, "BYE", server).duration())
				assert.Equal(t, 49*time.Millisecond, one(t, spans, "BYE", client).duration())
			},
		},
		{
			name: "busy: 486 is the call's outcome, not an error",
			flow: func(f *sipflow.Flow) {
				f.Invite(0)
				f.Answer(0.5, addrB, 180, "b1")
				f.Answer(2, addrB, 486, "b1")
				f.ACKFailure(2.01, "b1")
			},
			want: callWant{key: "call", start: 0, end: 2.011,
				root: map[string]any{record.AttrSIPCallResult: "busy", record.AttrSIPResponseStatusCode: int64(486),
					record.AttrSIPCallSetupDuration: 2.0, record.AttrSIPCallRingingDuration: 1.5},
				txs: map[string]map[ptrace.SpanKind]int{"INVITE": twoHops(1)}},
			check: func(t *testing.T, spans []span) {
				in := one(t, spans, "INVITE", server)
				assert.Equal(t, []string{"INVITE", "100", "180", "486", "ACK"}, eventNames(in), "the ACK of a non-2xx is in the INVITE's transaction")
				assert.Equal(t, at(t0, 2.011), in.end, "to the ACK")
				assert.Equal(t, ptrace.StatusCodeUnset, in.status)
				assert.NotContains(t, one(t, spans, nameCall, internal).attrs, record.AttrSIPCallDuration)
			},
		},
		{
			name: "failed: 503 is an error",
			flow: func(f *sipflow.Flow) {
				f.Invite(0)
				f.Answer(0.1, addrB, 503, "b1")
				f.ACKFailure(0.11, "b1")
			},
			want: callWant{key: "call", start: 0, end: 0.111, status: ptrace.StatusCodeError, statusMsg: "SIP 503",
				root: map[string]any{record.AttrSIPCallResult: "failed", record.AttrSIPResponseStatusCode: int64(503),
					record.AttrSIPCallPostDialDelay: 0.1},
				txs: map[string]map[ptrace.SpanKind]int{"INVITE": twoHops(1)}},
			check: func(t *testing.T, spans []span) {
				for _, s := range only(spans, "INVITE", anyKind) {
					assert.Equal(t, ptrace.StatusCodeError, s.status)
					assert.Equal(t, "SIP 503", s.statusMessage)
				}
			},
		},
		{
			name: "603 is an error",
			flow: func(f *sipflow.Flow) {
				f.Invite(0)
				f.Answer(0.8, addrB, 180, "b1")
				f.Answer(3, addrB, 603, "b1")
				f.ACKFailure(3.01, "b1")
			},
			want: callWant{key: "call", start: 0, end: 3.011, status: ptrace.StatusCodeError, statusMsg: "SIP 603",
				root: map[string]any{record.AttrSIPCallResult: "rejected", record.AttrSIPResponseStatusCode: int64(603),
					record.AttrSIPCallSetupDuration: 3.0, record.AttrSIPCallRingingDuration: 2.2},
				txs: map[string]map[ptrace.SpanKind]int{"INVITE": twoHops(1)}},
			check: func(t *testing.T, spans []span) {
				invites := only(spans, "INVITE", anyKind)
				assert.Len(t, invites, 2)
				for _, s := range invites {
					assert.Equal(t, ptrace.StatusCodeError, s.status, "%s %s", s.name, kindName(s.kind))
					assert.Equal(t, "SIP 603", s.statusMessage)
					assert.Equal(t, "rejected", s.attrs[record.AttrSIPCallResult], "the hop's result, for a sampler deciding on the setup spans")
				}
			},
		},
		{
			name: "408 from the callee is an error",
			flow: func(f *sipflow.Flow) {
				f.Invite(0)
				f.Answer(32, addrB, 408, "b1")
				f.ACKFailure(32.01, "b1")
			},
			want: callWant{key: "call", start: 0, end: 32.011, status: ptrace.StatusCodeError, statusMsg: "SIP 408",
				root: map[string]any{record.AttrSIPCallResult: "failed", record.AttrSIPResponseStatusCode: int64(408),
					record.AttrSIPCallSetupDuration: 32.0},
				txs: map[string]map[ptrace.SpanKind]int{"INVITE": twoHops(1)}},
			check: func(t *testing.T, spans []span) {
				invites := only(spans, "INVITE", anyKind)
				assert.Len(t, invites, 2)
				for _, s := range invites {
					assert.Equal(t, ptrace.StatusCodeError, s.status, "%s %s", s.name, kindName(s.kind))
					assert.Equal(t, "SIP 408", s.statusMessage)
					assert.Equal(t, "failed", s.attrs[record.AttrSIPCallResult])
				}
			},
		},
		{
			name: "404 is a failed call, not an error: its setup spans say failed",
			flow: func(f *sipflow.Flow) {
				f.Invite(0)
				f.Answer(0.2, addrB, 404, "b1")
				f.ACKFailure(0.21, "b1")
			},
			want: callWant{key: "call", start: 0, end: 0.211,
				root: map[string]any{record.AttrSIPCallResult: "failed", record.AttrSIPResponseStatusCode: int64(404)},
				txs:  map[string]map[ptrace.SpanKind]int{"INVITE": twoHops(1)}},
			check: func(t *testing.T, spans []span) {
				invites := only(spans, "INVITE", anyKind)
				assert.Len(t, invites, 2)
				for _, s := range invites {
					assert.Equal(t, ptrace.StatusCodeUnset, s.status, "%s %s", s.name, kindName(s.kind))
					assert.Equal(t, "failed", s.attrs[record.AttrSIPCallResult], "%s %s: what a sampler keeps failed calls by", s.name, kindName(s.kind))
				}
			},
		},
		{
			name: "cancelled while ringing",
			flow: func(f *sipflow.Flow) {
				f.Invite(0)
				f.Answer(2, addrB, 180, "b1")
				f.Request(10, addrA, addrP, "CANCEL", 1, sipflow.Branch(f.CallID, "a", 1, "INVITE"), "", "")
				f.Response(10.001, addrP, addrA, 200, "CANCEL", 1, sipflow.Branch(f.CallID, "a", 1, "INVITE"), "p1")
				f.Request(10.002, addrP, addrB, "CANCEL", 1, sipflow.Branch(f.CallID, "b", 1, "INVITE"), "", "")
				f.Response(10.04, addrB, addrP, 200, "CANCEL", 1, sipflow.Branch(f.CallID, "b", 1, "INVITE"), "b1")
				f.Answer(10.05, addrB, 487, "b1")
				f.ACKFailure(10.06, "b1")
			},
			want: callWant{key: "call", start: 0, end: 10.061,
				root: map[string]any{record.AttrSIPCallResult: "cancelled", record.AttrSIPResponseStatusCode: int64(487),
					record.AttrSIPCallDisconnectInitiator: "caller", record.AttrSIPCallRingingDuration: 8.05},
				txs: map[string]map[ptrace.SpanKind]int{"INVITE": twoHops(1), "CANCEL": twoHops(1)}},
			check: func(t *testing.T, spans []span) {
				c := one(t, spans, "CANCEL", client)
				assert.Equal(t, []string{"CANCEL", "200"}, eventNames(c))
				assert.Equal(t, 38*time.Millisecond, c.duration())
				assert.Equal(t, int64(487), one(t, spans, "INVITE", server).attrs[record.AttrSIPResponseStatusCode])
			},
		},
		{
			name: "INVITE timeout: no final response, ended by idle_timeout",
			flow: func(f *sipflow.Flow) {
				f.Invite(0)
				f.Request(0.5, addrP, addrB, "INVITE", 1, sipflow.Branch(f.CallID, "b", 1, "INVITE"), "", "") // retransmitted
			},
			want: callWant{key: "call", start: 0, end: 0.5, status: ptrace.StatusCodeError, statusMsg: "timeout",
				root: map[string]any{record.AttrSIPCallResult: "timeout"},
				txs:  map[string]map[ptrace.SpanKind]int{"INVITE": twoHops(1)}},
			check: func(t *testing.T, spans []span) {
				for _, s := range only(spans, "INVITE", anyKind) {
					assert.Equal(t, ptrace.StatusCodeError, s.status)
					assert.Equal(t, "no final response", s.statusMessage)
				}
				out := one(t, spans, "INVITE", client)
				assert.Equal(t, []string{"INVITE", "INVITE(r)"}, eventNames(out))
				assert.Equal(t, at(t0, 0.5), out.end, "a transaction without a final response ends at its last message")
				assert.NotContains(t, one(t, spans, nameCall, internal).attrs, record.AttrSIPResponseStatusCode)
			},
		},
		{
			name: "PRACK, re-INVITE, UPDATE, INFO and REFER in the dialog",
			flow: func(f *sipflow.Flow) {
				f.Invite(0)
				f.Answer(1, addrB, 183, "b1")
				f.InDialog(1.1, "PRACK", 2, "b1", true)
				f.Answer(5, addrB, 200, "b1")
				f.ACK2xx(5.1, 1, "b1")
				f.InDialog(20, "INVITE", 3, "b1", true)
				f.ACK2xx(20.1, 3, "b1")
				f.InDialog(25, "UPDATE", 4, "b1", false)
				f.InDialog(26, "INFO", 5, "b1", true)
				f.InDialog(27, "REFER", 6, "b1", true)
				f.InDialog(60, "BYE", 7, "b1", false)
			},
			want: callWant{key: "call", start: 0, end: 60.051,
				root: map[string]any{record.AttrSIPCallResult: "answered", record.AttrSIPCallPostDialDelay: 1.0,
					record.AttrSIPCallSetupDuration: 5.0, record.AttrSIPCallDuration: 55.0,
					record.AttrSIPCallDisconnectInitiator: "callee"},
				txs: map[string]map[ptrace.SpanKind]int{"INVITE": twoHops(2), "ACK": twoHops(2), "PRACK": twoHops(1),
					"UPDATE": twoHops(1), "INFO": twoHops(1), "REFER": twoHops(1), "BYE": twoHops(1)}},
			check: func(t *testing.T, spans []span) {
				reinvite := where(only(spans, "INVITE", server), func(s span) bool { return s.attrs[record.AttrSIPCSeqNumber] == int64(3) })
				require.Len(t, reinvite, 1, "the re-INVITE's server span: %s", tree(spans))
				assert.Equal(t, at(t0, 20), reinvite[0].start)
				assert.Equal(t, 51*time.Millisecond, reinvite[0].duration())
				assert.NotContains(t, reinvite[0].attrs, record.AttrSIPCallResult, "a re-INVITE is no setup")
				// B sent the UPDATE: P received it from B
				up := one(t, spans, "UPDATE", server)
				assert.Equal(t, addrB, up.attrs[record.AttrSourceAddress])
			},
		},
		{
			name: "retransmissions are events of their transaction, flagged",
			flow: func(f *sipflow.Flow) {
				f.Invite(0)
				f.Request(0.5, addrA, addrP, "INVITE", 1, sipflow.Branch("call", "a", 1, "INVITE"), "", "")
				f.Answer(1.2, addrB, 180, "b1")
				f.Answer(5, addrB, 200, "b1")
				f.Answer(5.5, addrB, 200, "b1") // B retransmits its 200, P relays it
				f.ACK2xx(5.6, 1, "b1")
				f.Request(5.7, addrA, addrP, "ACK", 1, sipflow.Branch("call", "a", 1, "ACK"), "b1", "")
				f.InDialog(60, "BYE", 2, "b1", true)
				f.Response(60.2, addrP, addrA, 200, "BYE", 2, sipflow.Branch("call", "a", 2, "BYE"), "b1")
			},
			want: callWant{key: "call", start: 0, end: 60.051,
				root: map[string]any{record.AttrSIPCallResult: "answered", record.AttrSIPCallSetupDuration: 5.0},
				txs:  map[string]map[ptrace.SpanKind]int{"INVITE": twoHops(1), "ACK": twoHops(1), "BYE": twoHops(1)}},
			check: func(t *testing.T, spans []span) {
				in := one(t, spans, "INVITE", server)
				assert.Equal(t, []string{"INVITE", "100", "INVITE(r)", "180", "200", "200(r)"}, eventNames(in))
				assert.Equal(t, at(t0, 5.001), in.end, "the first 200 ends it")
				assert.Equal(t, []string{"INVITE", "180", "200", "200(r)"}, eventNames(one(t, spans, "INVITE", client)))
				assert.Equal(t, []string{"ACK", "ACK(r)"}, eventNames(one(t, spans, "ACK", server)))
				assert.Equal(t, []string{"BYE", "200", "200(r)"}, eventNames(one(t, spans, "BYE", server)))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startConnector(t, testConfig())
			ld := sipflow.Logs("sbc-1")
			tt.flow(sipflow.New(t, ld, t0, "call"))
			h.replay(t, ld)
			h.drain()
			spans := h.spans()
			checkCall(t, spans, tt.want)
			if tt.check != nil {
				tt.check(t, spans)
			}
			assertNothingLeft(t, h)
			assert.Equal(t, int64(ld.LogRecordCount()), h.counter(t, "sipcall_records", attribute.String("outcome", "message")))
			assert.Equal(t, int64(len(spans)), h.counter(t, "sipcall_spans"))
		})
	}
}

// assertNothingLeft: every call has left its table and every transaction
// was emitted.
func assertNothingLeft(t *testing.T, h *harness) {
	t.Helper()
	assert.Zero(t, h.state(t, tableCalls), "calls in flight")
	assert.Zero(t, h.state(t, tableOutOfDialog), "out-of-dialog transactions in flight")
	assert.Zero(t, h.state(t, tableTransactions), "transactions not emitted")
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	assert.Zero(t, h.c.tr.calls.Len())
	assert.Zero(t, h.c.tr.oodCalls.Len())
}

func eventTimes(s span) []time.Time {
	var out []time.Time
	for _, e := range s.events {
		out = append(out, e.at)
	}
	return out
}
