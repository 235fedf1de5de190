// Package sipflow builds recorded SIP calls as log records for component
// tests: caller A, proxy P, callee B (and B2 for forks), every message on
// the A-P hop and the P-B hop one HEP3 packet, encoded on the wire and
// decoded again exactly as the hep receiver does, so that a component sees
// what it sees in production; and SIPhon's CDRs as the siphon_cdr receiver
// turns them into records.
package sipflow

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
)

// The parties' addresses. They are only ever written into records, never
// sent to.
const (
	AddrA  = "10.0.0.1"
	AddrP  = "10.0.0.10"
	AddrB  = "10.0.0.2"
	AddrB2 = "10.0.0.3"
)

// Logs returns an empty batch whose one resource is the capturing node
// (service.name siphon, service.instance.id node) with one scope.
func Logs(node string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(record.AttrServiceName, record.DefaultServiceName)
	rl.Resource().Attributes().PutStr(record.AttrServiceInstanceID, node)
	rl.ScopeLogs().AppendEmpty()
	return ld
}

// Flow writes the messages of one Call-ID into the first scope of Logs.
type Flow struct {
	T       testing.TB
	Base    time.Time
	CallID  string
	FromTag string
	Logs    plog.Logs
	// CorrelationID, when set, is written on every record as
	// sip.correlation_id, as the sip_correlation processor does.
	CorrelationID string
	// Transport is the HEP transport (hep.ProtoUDP when zero).
	Transport uint8
}

// New starts a flow of callID at base, written into ld.
func New(t testing.TB, ld plog.Logs, base time.Time, callID string) *Flow {
	return &Flow{T: t, Base: base, CallID: callID, FromTag: "ft-" + callID, Logs: ld}
}

// Branch is the Via branch of a hop's transaction.
func Branch(callID, hop string, cseq int, method string) string {
	return fmt.Sprintf("z9hG4bK-%s-%s-%d-%s", callID, hop, cseq, method)
}

// At is the capture time at seconds after Base, to the microsecond HEP
// carries.
func (f *Flow) At(at float64) time.Time {
	return f.Base.Add(time.Duration(math.Round(at*1e6)) * time.Microsecond)
}

// Emit encodes a SIP message sent at Base+at from src to dst (port 5060) as
// HEP3, decodes it and appends the log record.
func (f *Flow) Emit(at float64, src, dst, sip string) plog.LogRecord {
	f.T.Helper()
	ts := f.At(at)
	proto := f.Transport
	if proto == 0 {
		proto = hep.ProtoUDP
	}
	p := hep.Packet{Version: 3, Family: hep.FamilyIPv4, Protocol: proto,
		SrcIP: netip.MustParseAddr(src), DstIP: netip.MustParseAddr(dst), SrcPort: 5060, DstPort: 5060,
		ProtoType: hep.TypeSIP, CaptureID: 2001, Payload: []byte(sip), CorrelationID: []byte(f.CallID),
		Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort |
			hep.HasDstPort | hep.HasTimeSec | hep.HasTimeUsec | hep.HasProtoType | hep.HasCaptureID}
	if p.SrcIP.Is6() || p.DstIP.Is6() {
		p.Family = hep.FamilyIPv6
	}
	p.SetTime(ts)
	wire, err := p.AppendV3(nil)
	if err != nil {
		f.T.Fatalf("sipflow: encode: %v", err)
	}
	var got hep.Packet
	if err := got.Decode(wire); err != nil {
		f.T.Fatalf("sipflow: decode: %v", err)
	}
	lr := f.Logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	heprecord.FromHEP(&got, got.Payload, false, ts, lr)
	if f.CorrelationID != "" {
		lr.Attributes().PutStr(record.AttrSIPCorrelationID, f.CorrelationID)
	}
	return lr
}

// Request sends a request; an empty ua is Ozona/5.0.
func (f *Flow) Request(at float64, src, dst, method string, cseq int, br, toTag, ua string) plog.LogRecord {
	f.T.Helper()
	to := "<sip:bob@example.com>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	if ua == "" {
		ua = "Ozona/5.0"
	}
	return f.Emit(at, src, dst, strings.Join([]string{
		method + " sip:bob@example.com SIP/2.0",
		"Via: SIP/2.0/UDP " + src + ":5060;branch=" + br,
		"Max-Forwards: 70",
		"From: \"Alice\" <sip:alice@example.com>;tag=" + f.FromTag,
		"To: " + to,
		"Call-ID: " + f.CallID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
		"User-Agent: " + ua,
		"Content-Length: 0", "", ""}, "\r\n"))
}

// RequestFrom is Request from the callee's side of the dialog: From and To
// swapped, so that the From tag is the callee's (toTag).
func (f *Flow) RequestFrom(at float64, src, dst, method string, cseq int, br, toTag string) plog.LogRecord {
	f.T.Helper()
	return f.Emit(at, src, dst, strings.Join([]string{
		method + " sip:alice@example.com SIP/2.0",
		"Via: SIP/2.0/UDP " + src + ":5060;branch=" + br,
		"Max-Forwards: 70",
		"From: <sip:bob@example.com>;tag=" + toTag,
		"To: \"Alice\" <sip:alice@example.com>;tag=" + f.FromTag,
		"Call-ID: " + f.CallID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
		"User-Agent: Ozona/5.0",
		"Content-Length: 0", "", ""}, "\r\n"))
}

// Response sends a response to the request whose top Via branch is br.
func (f *Flow) Response(at float64, src, dst string, code int, method string, cseq int, br, toTag string) plog.LogRecord {
	f.T.Helper()
	to := "<sip:bob@example.com>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	return f.Emit(at, src, dst, strings.Join([]string{
		fmt.Sprintf("SIP/2.0 %d Reason", code),
		"Via: SIP/2.0/UDP " + dst + ":5060;branch=" + br,
		"From: \"Alice\" <sip:alice@example.com>;tag=" + f.FromTag,
		"To: " + to,
		"Call-ID: " + f.CallID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
		"Content-Length: 0", "", ""}, "\r\n"))
}

// ResponseFrom is Response to a request of RequestFrom (the callee's side
// of the dialog): From and To swapped, the To tag the caller's.
func (f *Flow) ResponseFrom(at float64, src, dst string, code int, method string, cseq int, br, toTag string) plog.LogRecord {
	f.T.Helper()
	return f.Emit(at, src, dst, strings.Join([]string{
		fmt.Sprintf("SIP/2.0 %d Reason", code),
		"Via: SIP/2.0/UDP " + dst + ":5060;branch=" + br,
		"From: <sip:bob@example.com>;tag=" + toTag,
		"To: \"Alice\" <sip:alice@example.com>;tag=" + f.FromTag,
		"Call-ID: " + f.CallID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
		"Content-Length: 0", "", ""}, "\r\n"))
}

// Invite sends the initial INVITE A->P, P's 100 Trying, and P->B 1 ms later.
func (f *Flow) Invite(at float64) {
	f.Request(at, AddrA, AddrP, "INVITE", 1, Branch(f.CallID, "a", 1, "INVITE"), "", "")
	f.Response(at+0.0005, AddrP, AddrA, 100, "INVITE", 1, Branch(f.CallID, "a", 1, "INVITE"), "")
	f.Request(at+0.001, AddrP, AddrB, "INVITE", 1, Branch(f.CallID, "b", 1, "INVITE"), "", "")
}

// Answer relays a response to the initial INVITE from callee (B or B2) to A.
func (f *Flow) Answer(at float64, callee string, code int, toTag string) {
	f.Response(at, callee, AddrP, code, "INVITE", 1, Branch(f.CallID, "b", 1, "INVITE"), toTag)
	f.Response(at+0.001, AddrP, AddrA, code, "INVITE", 1, Branch(f.CallID, "a", 1, "INVITE"), toTag)
}

// InDialog runs an in-dialog transaction (re-INVITE, BYE) through P, from
// the caller (fromCaller) or the callee (its From tag toTag), answered 200
// after 50 ms.
func (f *Flow) InDialog(at float64, method string, cseq int, toTag string, fromCaller bool) {
	h1, h2 := Branch(f.CallID, "a", cseq, method), Branch(f.CallID, "b", cseq, method)
	if fromCaller {
		f.Request(at, AddrA, AddrP, method, cseq, h1, toTag, "")
		f.Request(at+0.001, AddrP, AddrB, method, cseq, h2, toTag, "")
		f.Response(at+0.05, AddrB, AddrP, 200, method, cseq, h2, toTag)
		f.Response(at+0.051, AddrP, AddrA, 200, method, cseq, h1, toTag)
		return
	}
	f.RequestFrom(at, AddrB, AddrP, method, cseq, h1, toTag)
	f.RequestFrom(at+0.001, AddrP, AddrA, method, cseq, h2, toTag)
	f.ResponseFrom(at+0.05, AddrA, AddrP, 200, method, cseq, h2, toTag)
	f.ResponseFrom(at+0.051, AddrP, AddrB, 200, method, cseq, h1, toTag)
}

// ACK2xx sends the ACK of a 2xx: its own transaction, end to end.
func (f *Flow) ACK2xx(at float64, cseq int, toTag string) {
	f.Request(at, AddrA, AddrP, "ACK", cseq, Branch(f.CallID, "a", cseq, "ACK"), toTag, "")
	f.Request(at+0.001, AddrP, AddrB, "ACK", cseq, Branch(f.CallID, "b", cseq, "ACK"), toTag, "")
}

// ACKFailure sends the ACK of a non-2xx final response: hop by hop, in the
// INVITE's transaction (same branch).
func (f *Flow) ACKFailure(at float64, toTag string) {
	f.Request(at, AddrP, AddrB, "ACK", 1, Branch(f.CallID, "b", 1, "INVITE"), toTag, "")
	f.Request(at+0.001, AddrA, AddrP, "ACK", 1, Branch(f.CallID, "a", 1, "INVITE"), toTag, "")
}

// CDR renders a SIPhon INVITE CDR of callID (CDRJSON) and appends it to ld.
func CDR(t testing.TB, ld plog.Logs, base time.Time, callID string, code int, start, answer, end float64,
	initiator string, trunk string) plog.LogRecord {
	t.Helper()
	return AppendCDR(t, ld, CDRJSON(base, callID, code, start, answer, end, initiator, trunk), base)
}

// CDRJSON is SIPhon's JSON of an INVITE CDR: start, answer and end are
// seconds after base (answer < 0: unanswered), the record's timestamp is
// its end.
func CDRJSON(base time.Time, callID string, code int, start, answer, end float64, initiator string, trunk string) string {
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

// AppendCDR parses body as the siphon_cdr receiver does, received at
// received, and appends its record to ld's first scope.
func AppendCDR(t testing.TB, ld plog.Logs, body string, received time.Time) plog.LogRecord {
	t.Helper()
	r, err := cdr.Parse([]byte(body))
	if err != nil {
		t.Fatalf("sipflow: CDR %s: %v", body, err)
	}
	lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	cdrrecord.FromCDR(r, []byte(body), received, lr)
	return lr
}
