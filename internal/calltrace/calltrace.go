// Package calltrace gives a SIP call its OpenTelemetry identities, the same
// in every collector of a fleet, in a restarted process and in both tiers,
// with no shared state (docs/call-traces.md, section 2): the trace id and
// the root span id from the call's correlation key, a leg's span id from the
// key and its Call-ID, a transaction's from where it was captured. The sipcall
// connector builds its spans with them and sipkpi's exemplars point at them.
//
// It also holds the call result classes, so that a KPI series
// (sip.call.result) and the traces it links to agree.
package calltrace

import (
	"crypto/sha256"
	"net"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// prefix versions the derivation: a new scheme would be v2, never mixed
// with v1 in one trace.
const prefix = "siphon-otel/call/v1\x00"

// TraceID is the trace of the call with correlation key key.
func TraceID(key string) pcommon.TraceID {
	return traceID(hash(append(append(make([]byte, 0, 128), prefix...), key...)))
}

// traceID is the first 16 bytes of sum, or the next 16 when those are all
// zero (an invalid trace id).
func traceID(sum [sha256.Size]byte) pcommon.TraceID {
	var id pcommon.TraceID
	if copy(id[:], sum[:16]); id.IsEmpty() {
		copy(id[:], sum[16:])
	}
	return id
}

// RootSpanID is the span of the call itself ("SIP call").
func RootSpanID(key string) pcommon.SpanID {
	b := append(make([]byte, 0, 128), prefix+"root\x00"...)
	return spanID(append(b, key...))
}

// LegSpanID is the span of the call's leg callID ("SIP leg"): every Call-ID
// of the call other than the key.
func LegSpanID(key, callID string) pcommon.SpanID {
	b := append(make([]byte, 0, 192), prefix+"leg\x00"...)
	b = append(append(append(b, key...), 0), callID...)
	return spanID(b)
}

// Transaction identifies one SIP transaction on one hop as one node
// captured it.
type Transaction struct {
	Key    string // the call's correlation key (OutOfDialogKey outside a dialog)
	CallID string
	Node   string // the capturing node: the resource's service.instance.id
	// Source and Destination are the request's, as Endpoint writes them
	// (for a transaction seen only by its responses: the first response's
	// destination and source).
	Source, Destination string
	CSeqNumber          uint32
	CSeqMethod          string
	Branch              string // the request's top Via branch
}

// TransactionSpanID is the span of a transaction on one hop at one node.
func TransactionSpanID(tx Transaction) pcommon.SpanID {
	b := make([]byte, 0, 320)
	b = append(b, prefix+"tx\x00"...)
	for _, s := range [...]string{tx.Key, tx.CallID, tx.Node, tx.Source, tx.Destination} {
		b = append(append(b, s...), 0)
	}
	b = append(strconv.AppendUint(b, uint64(tx.CSeqNumber), 10), 0)
	b = append(append(b, tx.CSeqMethod...), 0)
	return spanID(append(b, tx.Branch...))
}

// CDRSpanID is the span a CDR becomes when it cannot go on its call's root
// or leg span ("SIP CDR": it came after the root left, or a second one
// came): the key, the CDR's Call-ID and its time (the record's Timestamp),
// so that a CDR delivered twice is one span.
func CDRSpanID(key, callID string, at time.Time) pcommon.SpanID {
	b := append(make([]byte, 0, 192), prefix+"cdr\x00"...)
	b = append(append(append(append(b, key...), 0), callID...), 0)
	return spanID(strconv.AppendInt(b, at.UnixNano(), 10))
}

// Key is the correlation key of a record: its sip.correlation_id when it
// has one (the sip_correlation processor joined a B2BUA's legs), else its
// Call-ID.
func Key(correlationID, callID string) string {
	if correlationID != "" {
		return correlationID
	}
	return callID
}

// IsDialogMethod tells the methods that exist only in an INVITE dialog: a
// transaction of another method outside a call is a trace of its own
// (OutOfDialogKey).
func IsDialogMethod(method string) bool {
	switch method {
	case "INVITE", "ACK", "BYE", "CANCEL", "PRACK", "UPDATE":
		return true
	}
	return false
}

// IDs are the trace id and root span id of the trace a record belongs to,
// as the sipcall connector builds it: the call of its correlation key
// (Key) for a CDR (cseqMethod "") and a message of an INVITE dialog's
// method; for another method, the transaction's own trace
// (OutOfDialogKey), which has no root span (an empty span id). sipkpi's
// exemplars point here. (A request of another method inside a call in
// flight, an INFO say, is traced in the call; its record points at the
// trace it would have had alone.)
func IDs(correlationID, callID string, cseqNumber uint32, cseqMethod string) (pcommon.TraceID, pcommon.SpanID) {
	if cseqMethod != "" && !IsDialogMethod(cseqMethod) {
		return TraceID(OutOfDialogKey(callID, cseqNumber, cseqMethod)), pcommon.SpanID{}
	}
	key := Key(correlationID, callID)
	return TraceID(key), RootSpanID(key)
}

// OutOfDialogKey is the correlation key of a transaction outside an INVITE
// dialog (REGISTER, OPTIONS, MESSAGE ...): each is a trace of its own.
func OutOfDialogKey(callID string, cseqNumber uint32, method string) string {
	return callID + "\x00" + strconv.FormatUint(uint64(cseqNumber), 10) + "\x00" + method
}

// Endpoint writes an address and port as a transaction's Source and
// Destination hold them: "10.0.0.1:5060", "[2001:db8::1]:5060", or the bare
// address when the port is unknown (port <= 0).
func Endpoint(addr string, port int64) string {
	if port <= 0 {
		return addr
	}
	return net.JoinHostPort(addr, strconv.FormatInt(port, 10))
}

func hash(b []byte) [sha256.Size]byte { return sha256.Sum256(b) }

func spanID(b []byte) pcommon.SpanID { return spanIDOf(hash(b)) }

// spanIDOf is the first 8 bytes of sum, or the next 8 when those are all
// zero (an invalid span id).
func spanIDOf(sum [sha256.Size]byte) pcommon.SpanID {
	var id pcommon.SpanID
	if copy(id[:], sum[:8]); id.IsEmpty() {
		copy(id[:], sum[8:16])
	}
	return id
}

// Call result classes: sipkpi's sip.call.result label and the sip.call.result
// attribute of a call's root span. The KPI formulas of the README and
// alerts/ are written in terms of these and of the code.
const (
	ResultAnswered   = "answered"   // 2xx
	ResultRedirected = "redirected" // 3xx
	ResultBusy       = "busy"       // 486, 600
	ResultNoAnswer   = "no_answer"  // 480
	ResultRejected   = "rejected"   // 603
	ResultCancelled  = "cancelled"  // 487: the caller gave up
	ResultFailed     = "failed"     // every other final code
	// ResultTimeout is a call that got no final response at all (only a
	// trace can tell: a CDR always has a code).
	ResultTimeout = "timeout"
)

// Result classifies a call by the final response to its initial INVITE.
func Result(code int) string {
	switch {
	case code >= 200 && code < 300:
		return ResultAnswered
	case code >= 300 && code < 400:
		return ResultRedirected
	case code == 486 || code == 600:
		return ResultBusy
	case code == 480:
		return ResultNoAnswer
	case code == 603:
		return ResultRejected
	case code == 487:
		return ResultCancelled
	}
	return ResultFailed
}
