package sipkpiconnector

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
)

// A recorded call as a SIPhon node captures it: caller A, proxy P, callee B
// (and B2 for forks). Every message on the A-P hop and the P-B hop is one
// HEP3 packet, encoded on the wire and decoded again exactly as the hep
// receiver does, so the connector sees what it sees in production.
var (
	addrA  = "10.0.0.1"
	addrP  = "10.0.0.10"
	addrB  = "10.0.0.2"
	addrB2 = "10.0.0.3"
)

type flow struct {
	t      *testing.T
	base   time.Time
	callID string
	fromTg string
	logs   plog.Logs
	node   string
}

func newFlows(node string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(record.AttrServiceName, "siphon")
	rl.Resource().Attributes().PutStr(record.AttrServiceInstanceID, node)
	rl.ScopeLogs().AppendEmpty()
	return ld
}

func newFlow(t *testing.T, ld plog.Logs, base time.Time, callID string) *flow {
	return &flow{t: t, base: base, callID: callID, fromTg: "ft-" + callID, logs: ld}
}

func branch(callID, hop string, cseq int, method string) string {
	return fmt.Sprintf("z9hG4bK-%s-%s-%d-%s", callID, hop, cseq, method)
}

// emit encodes a SIP message sent at base+at from src to dst as HEP3, decodes
// it and appends the log record.
func (f *flow) emit(at float64, src, dst, sip string) {
	f.t.Helper()
	ts := f.base.Add(time.Duration(math.Round(at*1e6)) * time.Microsecond)
	p := hep.Packet{Version: 3, Family: hep.FamilyIPv4, Protocol: hep.ProtoUDP,
		SrcIP: netip.MustParseAddr(src), DstIP: netip.MustParseAddr(dst), SrcPort: 5060, DstPort: 5060,
		ProtoType: hep.TypeSIP, CaptureID: 2001, Payload: []byte(sip), CorrelationID: []byte(f.callID),
		Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort |
			hep.HasDstPort | hep.HasTimeSec | hep.HasTimeUsec | hep.HasProtoType | hep.HasCaptureID}
	p.SetTime(ts)
	wire, err := p.AppendV3(nil)
	require.NoError(f.t, err)
	var got hep.Packet
	require.NoError(f.t, got.Decode(wire))
	lr := f.logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	heprecord.FromHEP(&got, got.Payload, false, ts, lr)
}

func (f *flow) request(at float64, src, dst, method string, cseq int, br, toTag, ua string) {
	to := "<sip:bob@example.com>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	if ua == "" {
		ua = "Ozona/5.0"
	}
	f.emit(at, src, dst, strings.Join([]string{
		method + " sip:bob@example.com SIP/2.0",
		"Via: SIP/2.0/UDP " + src + ":5060;branch=" + br,
		"Max-Forwards: 70",
		"From: <sip:alice@example.com>;tag=" + f.fromTg,
		"To: " + to,
		"Call-ID: " + f.callID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
		"User-Agent: " + ua,
		"Content-Length: 0", "", ""}, "\r\n"))
}

func (f *flow) response(at float64, src, dst string, code int, method string, cseq int, br, toTag string) {
	to := "<sip:bob@example.com>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	f.emit(at, src, dst, strings.Join([]string{
		fmt.Sprintf("SIP/2.0 %d Reason", code),
		"Via: SIP/2.0/UDP " + dst + ":5060;branch=" + br,
		"From: <sip:alice@example.com>;tag=" + f.fromTg,
		"To: " + to,
		"Call-ID: " + f.callID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
		"Content-Length: 0", "", ""}, "\r\n"))
}

// invite sends the initial INVITE A->P, P's 100 Trying, and P->B 1 ms later.
func (f *flow) invite(at float64) {
	f.request(at, addrA, addrP, "INVITE", 1, branch(f.callID, "a", 1, "INVITE"), "", "")
	f.response(at+0.0005, addrP, addrA, 100, "INVITE", 1, branch(f.callID, "a", 1, "INVITE"), "")
	f.request(at+0.001, addrP, addrB, "INVITE", 1, branch(f.callID, "b", 1, "INVITE"), "", "")
}

// answer relays a response to the initial INVITE from callee (B or B2) to A.
func (f *flow) answer(at float64, callee string, code int, toTag string) {
	f.response(at, callee, addrP, code, "INVITE", 1, branch(f.callID, "b", 1, "INVITE"), toTag)
	f.response(at+0.001, addrP, addrA, code, "INVITE", 1, branch(f.callID, "a", 1, "INVITE"), toTag)
}

// inDialog runs an in-dialog transaction (re-INVITE, BYE) through P, from
// the caller (fromCaller) or the callee, answered 200 after 50 ms.
func (f *flow) inDialog(at float64, method string, cseq int, toTag string, fromCaller bool) {
	src, dst := addrA, addrB
	if !fromCaller {
		src, dst = addrB, addrA
	}
	h1, h2 := branch(f.callID, "a", cseq, method), branch(f.callID, "b", cseq, method)
	f.request(at, src, addrP, method, cseq, h1, toTag, "")
	f.request(at+0.001, addrP, dst, method, cseq, h2, toTag, "")
	f.response(at+0.05, dst, addrP, 200, method, cseq, h2, toTag)
	f.response(at+0.051, addrP, src, 200, method, cseq, h1, toTag)
}

// ack2xx: the ACK of a 2xx is its own transaction, end to end.
func (f *flow) ack2xx(at float64, cseq int, toTag string) {
	f.request(at, addrA, addrP, "ACK", cseq, branch(f.callID, "a", cseq, "ACK"), toTag, "")
	f.request(at+0.001, addrP, addrB, "ACK", cseq, branch(f.callID, "b", cseq, "ACK"), toTag, "")
}

// ackFailure: hop by hop, in the INVITE's transaction (same branch).
func (f *flow) ackFailure(at float64, toTag string) {
	f.request(at, addrP, addrB, "ACK", 1, branch(f.callID, "b", 1, "INVITE"), toTag, "")
	f.request(at+0.001, addrA, addrP, "ACK", 1, branch(f.callID, "a", 1, "INVITE"), toTag, "")
}

// cdrRecord renders a SIPhon INVITE CDR for the call and appends it.
func cdrRecord(t *testing.T, ld plog.Logs, base time.Time, callID string, code int, start, answer, end float64,
	initiator string, trunk string) {
	t.Helper()
	appendCDR(t, ld, cdrJSON(base, callID, code, start, answer, end, initiator, trunk), base)
}

// cdrJSON is SIPhon's JSON of an INVITE CDR: start, answer and end are
// seconds after base (answer < 0: unanswered), the record's timestamp is
// its end.
func cdrJSON(base time.Time, callID string, code int, start, answer, end float64, initiator string, trunk string) string {
	ts := func(s float64) string {
		if s < 0 {
			return "null"
		}
		return `"` + base.Add(time.Duration(math.Round(s*1e3))*time.Millisecond).UTC().Format("2006-01-02T15:04:05.000Z") + `"`
	}
	dur := 0.0
	if answer >= 0 {
		dur = end - answer
	}
	ini := "null"
	if initiator != "" {
		ini = `"` + initiator + `"`
	}
	return fmt.Sprintf(`{"timestamp":%s,"call_id":%q,"from_uri":"sip:alice@example.com","to_uri":"sip:bob@example.com",`+
		`"ruri":"sip:bob@example.com","method":"INVITE","response_code":%d,"timestamp_start":%s,"timestamp_answer":%s,`+
		`"timestamp_end":%s,"duration_secs":%g,"source_ip":"10.0.0.1","destination_ip":"10.0.0.2","transport":"udp",`+
		`"user_agent":"Ozona/5.0","auth_user":null,"disconnect_initiator":%s,"sip_reason":null,"trunk":%q}`,
		ts(end), callID, code, ts(start), ts(answer), ts(end), dur, ini, trunk)
}

// appendCDR parses body as the siphon_cdr receiver does, received at
// received, and appends its record to ld's first scope.
func appendCDR(t *testing.T, ld plog.Logs, body string, received time.Time) plog.LogRecord {
	t.Helper()
	r, err := cdr.Parse([]byte(body))
	require.NoError(t, err, body)
	lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	cdrrecord.FromCDR(r, []byte(body), received, lr)
	return lr
}

// recordedCalls builds eleven calls and their CDRs. The hand-computed KPIs
// of this set are in TestKPIsFromRecordedFlows.
func recordedCalls(t *testing.T, base time.Time) (msgs, cdrs plog.Logs) {
	msgs, cdrs = newFlows("sbc-1"), newFlows("sbc-1")

	// call-1: answered; the caller retransmits the INVITE before P's 100
	// reached it, B retransmits its 200 before the ACK; a re-INVITE (hold)
	// mid-call; the caller hangs up after 60 s. PDD 1.2 s.
	f := newFlow(t, msgs, base, "call-1")
	f.invite(0)
	f.request(0.5, addrA, addrP, "INVITE", 1, branch("call-1", "a", 1, "INVITE"), "", "")
	f.answer(1.2, addrB, 180, "b1")
	f.answer(5, addrB, 200, "b1")
	f.answer(5.5, addrB, 200, "b1") // retransmitted on both hops
	f.ack2xx(5.6, 1, "b1")
	f.inDialog(20, "INVITE", 2, "b1", true)
	f.ack2xx(20.1, 2, "b1")
	f.inDialog(65, "BYE", 3, "b1", true)
	cdrRecord(t, cdrs, base, "call-1", 200, 0, 5, 65, "caller", "carrier-a")

	// call-2: forked; B and B2 both ring (two 180s, two To-tags), B answers,
	// the callee hangs up after 120 s. PDD 0.8 s (the first 180).
	f = newFlow(t, msgs, base.Add(time.Minute), "call-2")
	f.invite(0)
	f.answer(0.8, addrB, 180, "b1")
	f.answer(1.0, addrB2, 180, "b2")
	f.answer(3, addrB, 200, "b1")
	f.ack2xx(3.1, 1, "b1")
	f.inDialog(123, "BYE", 1, "b1", false)
	cdrRecord(t, cdrs, base.Add(time.Minute), "call-2", 200, 0, 3, 123, "callee", "carrier-a")

	// call-3: rings, then busy. PDD 0.5 s.
	f = newFlow(t, msgs, base.Add(2*time.Minute), "call-3")
	f.invite(0)
	f.answer(0.5, addrB, 180, "b1")
	f.answer(2, addrB, 486, "b1")
	f.ackFailure(2.01, "b1")
	cdrRecord(t, cdrs, base.Add(2*time.Minute), "call-3", 486, 0, -1, 2.001, "", "carrier-a")

	// call-4: 480 at once. PDD 0.3 s.
	f = newFlow(t, msgs, base.Add(3*time.Minute), "call-4")
	f.invite(0)
	f.answer(0.3, addrB, 480, "b1")
	f.ackFailure(0.31, "b1")
	cdrRecord(t, cdrs, base.Add(3*time.Minute), "call-4", 480, 0, -1, 0.301, "", "carrier-b")

	// call-5: rings, the caller cancels at 10 s: CANCEL on both hops, 487.
	// PDD 2 s.
	f = newFlow(t, msgs, base.Add(4*time.Minute), "call-5")
	f.invite(0)
	f.answer(2, addrB, 180, "b1")
	f.request(10, addrA, addrP, "CANCEL", 1, branch("call-5", "a", 1, "INVITE"), "", "")
	f.response(10.001, addrP, addrA, 200, "CANCEL", 1, branch("call-5", "a", 1, "INVITE"), "p1")
	f.request(10.002, addrP, addrB, "CANCEL", 1, branch("call-5", "b", 1, "INVITE"), "", "")
	f.response(10.04, addrB, addrP, 200, "CANCEL", 1, branch("call-5", "b", 1, "INVITE"), "b1")
	f.answer(10.05, addrB, 487, "b1")
	f.ackFailure(10.06, "b1")
	cdrRecord(t, cdrs, base.Add(4*time.Minute), "call-5", 487, 0, -1, 10.051, "caller", "carrier-b")

	// call-6: 503 from the carrier. PDD 0.1 s.
	f = newFlow(t, msgs, base.Add(5*time.Minute), "call-6")
	f.invite(0)
	f.answer(0.1, addrB, 503, "b1")
	f.ackFailure(0.11, "b1")
	cdrRecord(t, cdrs, base.Add(5*time.Minute), "call-6", 503, 0, -1, 0.101, "error", "carrier-b")

	// call-7: redirected 302. PDD 0.2 s.
	f = newFlow(t, msgs, base.Add(6*time.Minute), "call-7")
	f.invite(0)
	f.answer(0.2, addrB, 302, "b1")
	f.ackFailure(0.21, "b1")
	cdrRecord(t, cdrs, base.Add(6*time.Minute), "call-7", 302, 0, -1, 0.201, "", "carrier-a")

	// call-8: 183 early media, answered at 4 s, ended by a session timer
	// after 30 s (initiator timeout: not a completed session). PDD 1.5 s.
	f = newFlow(t, msgs, base.Add(7*time.Minute), "call-8")
	f.invite(0)
	f.answer(1.5, addrB, 183, "b1")
	f.answer(4, addrB, 200, "b1")
	f.ack2xx(4.1, 1, "b1")
	f.inDialog(34, "BYE", 2, "b1", true)
	cdrRecord(t, cdrs, base.Add(7*time.Minute), "call-8", 200, 0, 4, 34, "timeout", "carrier-a")

	// call-9: B never answers beyond 100; P gives up at 32 s: CANCEL and
	// 487 on the B hop, 408 to A. PDD 32 s (P's 408 is the first final).
	f = newFlow(t, msgs, base.Add(8*time.Minute), "call-9")
	f.invite(0)
	f.response(0.01, addrB, addrP, 100, "INVITE", 1, branch("call-9", "b", 1, "INVITE"), "")
	f.request(32, addrP, addrB, "CANCEL", 1, branch("call-9", "b", 1, "INVITE"), "", "")
	f.response(32.001, addrP, addrA, 408, "INVITE", 1, branch("call-9", "a", 1, "INVITE"), "p1")
	f.response(32.04, addrB, addrP, 200, "CANCEL", 1, branch("call-9", "b", 1, "INVITE"), "b1")
	f.response(32.05, addrB, addrP, 487, "INVITE", 1, branch("call-9", "b", 1, "INVITE"), "b1")
	f.request(32.06, addrP, addrB, "ACK", 1, branch("call-9", "b", 1, "INVITE"), "b1", "")
	f.request(32.1, addrA, addrP, "ACK", 1, branch("call-9", "a", 1, "INVITE"), "p1", "")
	cdrRecord(t, cdrs, base.Add(8*time.Minute), "call-9", 408, 0, -1, 32.001, "timeout", "carrier-b")

	// call-10: rings, declined 603. PDD 1 s.
	f = newFlow(t, msgs, base.Add(9*time.Minute), "call-10")
	f.invite(0)
	f.answer(1, addrB, 180, "b1")
	f.answer(4, addrB, 603, "b1")
	f.ackFailure(4.01, "b1")
	cdrRecord(t, cdrs, base.Add(9*time.Minute), "call-10", 603, 0, -1, 4.001, "", "carrier-a")

	// call-11: 404 from B. PDD 0.05 s.
	f = newFlow(t, msgs, base.Add(10*time.Minute), "call-11")
	f.invite(0)
	f.answer(0.05, addrB, 404, "b1")
	f.ackFailure(0.06, "b1")
	cdrRecord(t, cdrs, base.Add(10*time.Minute), "call-11", 404, 0, -1, 0.051, "", "carrier-a")
	return msgs, cdrs
}
