package sipkpiconnector

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/testenv/sipflow"
)

// The recorded calls are built by sipflow: caller A, proxy P (the capturing
// node, both hops), callee B and B2.
const (
	addrA  = sipflow.AddrA
	addrP  = sipflow.AddrP
	addrB  = sipflow.AddrB
	addrB2 = sipflow.AddrB2
)

var (
	newFlows  = sipflow.Logs
	branch    = sipflow.Branch
	cdrJSON   = sipflow.CDRJSON
	appendCDR = sipflow.AppendCDR
)

func newFlow(t testing.TB, ld plog.Logs, base time.Time, callID string) *sipflow.Flow {
	return sipflow.New(t, ld, base, callID)
}

// cdrRecord renders a SIPhon INVITE CDR for the call and appends it.
func cdrRecord(t testing.TB, ld plog.Logs, base time.Time, callID string, code int, start, answer, end float64,
	initiator string, trunk string) {
	t.Helper()
	sipflow.CDR(t, ld, base, callID, code, start, answer, end, initiator, trunk)
}

// recordedCalls builds eleven calls and their CDRs. The hand-computed KPIs
// of this set are in TestKPIsFromRecordedFlows.
func recordedCalls(t *testing.T, base time.Time) (msgs, cdrs plog.Logs) {
	msgs, cdrs = newFlows("sbc-1"), newFlows("sbc-1")

	// call-1: answered; the caller retransmits the INVITE before P's 100
	// reached it, B retransmits its 200 before the ACK; a re-INVITE (hold)
	// mid-call; the caller hangs up after 60 s. PDD 1.2 s.
	f := newFlow(t, msgs, base, "call-1")
	f.Invite(0)
	f.Request(0.5, addrA, addrP, "INVITE", 1, branch("call-1", "a", 1, "INVITE"), "", "")
	f.Answer(1.2, addrB, 180, "b1")
	f.Answer(5, addrB, 200, "b1")
	f.Answer(5.5, addrB, 200, "b1") // retransmitted on both hops
	f.ACK2xx(5.6, 1, "b1")
	f.InDialog(20, "INVITE", 2, "b1", true)
	f.ACK2xx(20.1, 2, "b1")
	f.InDialog(65, "BYE", 3, "b1", true)
	cdrRecord(t, cdrs, base, "call-1", 200, 0, 5, 65, "caller", "carrier-a")

	// call-2: forked; B and B2 both ring (two 180s, two To-tags), B answers,
	// the callee hangs up after 120 s. PDD 0.8 s (the first 180).
	f = newFlow(t, msgs, base.Add(time.Minute), "call-2")
	f.Invite(0)
	f.Answer(0.8, addrB, 180, "b1")
	f.Answer(1.0, addrB2, 180, "b2")
	f.Answer(3, addrB, 200, "b1")
	f.ACK2xx(3.1, 1, "b1")
	f.InDialog(123, "BYE", 1, "b1", false)
	cdrRecord(t, cdrs, base.Add(time.Minute), "call-2", 200, 0, 3, 123, "callee", "carrier-a")

	// call-3: rings, then busy. PDD 0.5 s.
	f = newFlow(t, msgs, base.Add(2*time.Minute), "call-3")
	f.Invite(0)
	f.Answer(0.5, addrB, 180, "b1")
	f.Answer(2, addrB, 486, "b1")
	f.ACKFailure(2.01, "b1")
	cdrRecord(t, cdrs, base.Add(2*time.Minute), "call-3", 486, 0, -1, 2.001, "", "carrier-a")

	// call-4: 480 at once. PDD 0.3 s.
	f = newFlow(t, msgs, base.Add(3*time.Minute), "call-4")
	f.Invite(0)
	f.Answer(0.3, addrB, 480, "b1")
	f.ACKFailure(0.31, "b1")
	cdrRecord(t, cdrs, base.Add(3*time.Minute), "call-4", 480, 0, -1, 0.301, "", "carrier-b")

	// call-5: rings, the caller cancels at 10 s: CANCEL on both hops, 487.
	// PDD 2 s.
	f = newFlow(t, msgs, base.Add(4*time.Minute), "call-5")
	f.Invite(0)
	f.Answer(2, addrB, 180, "b1")
	f.Request(10, addrA, addrP, "CANCEL", 1, branch("call-5", "a", 1, "INVITE"), "", "")
	f.Response(10.001, addrP, addrA, 200, "CANCEL", 1, branch("call-5", "a", 1, "INVITE"), "p1")
	f.Request(10.002, addrP, addrB, "CANCEL", 1, branch("call-5", "b", 1, "INVITE"), "", "")
	f.Response(10.04, addrB, addrP, 200, "CANCEL", 1, branch("call-5", "b", 1, "INVITE"), "b1")
	f.Answer(10.05, addrB, 487, "b1")
	f.ACKFailure(10.06, "b1")
	cdrRecord(t, cdrs, base.Add(4*time.Minute), "call-5", 487, 0, -1, 10.051, "caller", "carrier-b")

	// call-6: 503 from the carrier. PDD 0.1 s.
	f = newFlow(t, msgs, base.Add(5*time.Minute), "call-6")
	f.Invite(0)
	f.Answer(0.1, addrB, 503, "b1")
	f.ACKFailure(0.11, "b1")
	cdrRecord(t, cdrs, base.Add(5*time.Minute), "call-6", 503, 0, -1, 0.101, "error", "carrier-b")

	// call-7: redirected 302. PDD 0.2 s.
	f = newFlow(t, msgs, base.Add(6*time.Minute), "call-7")
	f.Invite(0)
	f.Answer(0.2, addrB, 302, "b1")
	f.ACKFailure(0.21, "b1")
	cdrRecord(t, cdrs, base.Add(6*time.Minute), "call-7", 302, 0, -1, 0.201, "", "carrier-a")

	// call-8: 183 early media, answered at 4 s, ended by a session timer
	// after 30 s (initiator timeout: not a completed session). PDD 1.5 s.
	f = newFlow(t, msgs, base.Add(7*time.Minute), "call-8")
	f.Invite(0)
	f.Answer(1.5, addrB, 183, "b1")
	f.Answer(4, addrB, 200, "b1")
	f.ACK2xx(4.1, 1, "b1")
	f.InDialog(34, "BYE", 2, "b1", true)
	cdrRecord(t, cdrs, base.Add(7*time.Minute), "call-8", 200, 0, 4, 34, "timeout", "carrier-a")

	// call-9: B never answers beyond 100; P gives up at 32 s: CANCEL and
	// 487 on the B hop, 408 to A. PDD 32 s (P's 408 is the first final).
	f = newFlow(t, msgs, base.Add(8*time.Minute), "call-9")
	f.Invite(0)
	f.Response(0.01, addrB, addrP, 100, "INVITE", 1, branch("call-9", "b", 1, "INVITE"), "")
	f.Request(32, addrP, addrB, "CANCEL", 1, branch("call-9", "b", 1, "INVITE"), "", "")
	f.Response(32.001, addrP, addrA, 408, "INVITE", 1, branch("call-9", "a", 1, "INVITE"), "p1")
	f.Response(32.04, addrB, addrP, 200, "CANCEL", 1, branch("call-9", "b", 1, "INVITE"), "b1")
	f.Response(32.05, addrB, addrP, 487, "INVITE", 1, branch("call-9", "b", 1, "INVITE"), "b1")
	f.Request(32.06, addrP, addrB, "ACK", 1, branch("call-9", "b", 1, "INVITE"), "b1", "")
	f.Request(32.1, addrA, addrP, "ACK", 1, branch("call-9", "a", 1, "INVITE"), "p1", "")
	cdrRecord(t, cdrs, base.Add(8*time.Minute), "call-9", 408, 0, -1, 32.001, "timeout", "carrier-b")

	// call-10: rings, declined 603. PDD 1 s.
	f = newFlow(t, msgs, base.Add(9*time.Minute), "call-10")
	f.Invite(0)
	f.Answer(1, addrB, 180, "b1")
	f.Answer(4, addrB, 603, "b1")
	f.ACKFailure(4.01, "b1")
	cdrRecord(t, cdrs, base.Add(9*time.Minute), "call-10", 603, 0, -1, 4.001, "", "carrier-a")

	// call-11: 404 from B. PDD 0.05 s.
	f = newFlow(t, msgs, base.Add(10*time.Minute), "call-11")
	f.Invite(0)
	f.Answer(0.05, addrB, 404, "b1")
	f.ACKFailure(0.06, "b1")
	cdrRecord(t, cdrs, base.Add(10*time.Minute), "call-11", 404, 0, -1, 0.051, "", "carrier-a")
	return msgs, cdrs
}
