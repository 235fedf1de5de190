package calltrace

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The expected ids were computed outside Go (Python's hashlib) from the
// formulas of docs/call-traces.md, section 2: they are the contract every
// implementation of it (another collector, sipladder) must meet.
func TestIDsFollowTheDesign(t *testing.T) {
	const key = "a84b4c76e66710@pc33.atlanta.example.com"
	cdrAt := time.Date(2026, 11, 24, 12, 1, 5, 250_000_000, time.UTC)
	for _, tt := range []struct {
		name string
		got  string
		want string
	}{
		{"trace", hexOf(TraceID(key)), "e3f736f647eec0b79bad6e2a4de0e37e"},
		{"root", hexOf(RootSpanID(key)), "4eecd6ea63de8470"},
		{"leg", hexOf(LegSpanID(key, "b-leg@sbc")), "24be87b6352737fb"},
		{"transaction", hexOf(TransactionSpanID(Transaction{Key: key, CallID: key, Node: "sbc-1",
			Source: "10.0.0.1:5060", Destination: "10.0.0.10:5060", CSeqNumber: 1, CSeqMethod: "INVITE",
			Branch: "z9hG4bK776asdhds"})), "1d25d7094e3178cb"},
		{"cdr", hexOf(CDRSpanID(key, key, cdrAt)), "a4ec90f502096886"},
	} {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.got) })
	}
}

func hexOf[T pcommon.TraceID | pcommon.SpanID](id T) string {
	switch v := any(id).(type) {
	case pcommon.TraceID:
		return hex.EncodeToString(v[:])
	case pcommon.SpanID:
		return hex.EncodeToString(v[:])
	}
	return ""
}

// Every field of a transaction takes part in its id, and none can be moved
// into its neighbour (the separators).
func TestTransactionFieldsAllCount(t *testing.T) {
	base := Transaction{Key: "k", CallID: "c", Node: "n", Source: "s", Destination: "d", CSeqNumber: 1, CSeqMethod: "INVITE", Branch: "b"}
	seen := map[pcommon.SpanID]string{TransactionSpanID(base): "base"}
	for name, tx := range map[string]Transaction{
		"key":         {Key: "k2", CallID: "c", Node: "n", Source: "s", Destination: "d", CSeqNumber: 1, CSeqMethod: "INVITE", Branch: "b"},
		"call id":     {Key: "k", CallID: "c2", Node: "n", Source: "s", Destination: "d", CSeqNumber: 1, CSeqMethod: "INVITE", Branch: "b"},
		"node":        {Key: "k", CallID: "c", Node: "n2", Source: "s", Destination: "d", CSeqNumber: 1, CSeqMethod: "INVITE", Branch: "b"},
		"source":      {Key: "k", CallID: "c", Node: "n", Source: "s2", Destination: "d", CSeqNumber: 1, CSeqMethod: "INVITE", Branch: "b"},
		"destination": {Key: "k", CallID: "c", Node: "n", Source: "s", Destination: "d2", CSeqNumber: 1, CSeqMethod: "INVITE", Branch: "b"},
		"cseq":        {Key: "k", CallID: "c", Node: "n", Source: "s", Destination: "d", CSeqNumber: 2, CSeqMethod: "INVITE", Branch: "b"},
		"method":      {Key: "k", CallID: "c", Node: "n", Source: "s", Destination: "d", CSeqNumber: 1, CSeqMethod: "CANCEL", Branch: "b"},
		"branch":      {Key: "k", CallID: "c", Node: "n", Source: "s", Destination: "d", CSeqNumber: 1, CSeqMethod: "INVITE", Branch: "b2"},
		"shifted":     {Key: "k", CallID: "c", Node: "n", Source: "s\x00d", Destination: "", CSeqNumber: 1, CSeqMethod: "INVITE", Branch: "b"},
	} {
		id := TransactionSpanID(tx)
		assert.NotContains(t, seen, id, "%s gives the id of %s", name, seen[id])
		seen[id] = name
	}
	assert.NotEqual(t, RootSpanID("k"), LegSpanID("k", ""), "root and leg ids are apart")
}

func TestZeroIDsAreReplaced(t *testing.T) {
	var sum [sha256.Size]byte
	for i := 16; i < len(sum); i++ {
		sum[i] = byte(i)
	}
	tid := traceID(sum)
	assert.False(t, tid.IsEmpty())
	assert.Equal(t, sum[16:32], tid[:])
	sid := spanIDOf(sum)
	assert.Equal(t, sum[8:16], sid[:], "all-zero first 8 bytes: the next 8")
	sum[3] = 7
	sid = spanIDOf(sum)
	assert.Equal(t, sum[:8], sid[:])
}

func TestOutOfDialogKeyAndEndpoint(t *testing.T) {
	assert.Equal(t, "reg-1@h\x002\x00REGISTER", OutOfDialogKey("reg-1@h", 2, "REGISTER"))
	assert.Equal(t, "10.0.0.1:5060", Endpoint("10.0.0.1", 5060))
	assert.Equal(t, "[2001:db8::1]:5061", Endpoint("2001:db8::1", 5061))
	assert.Equal(t, "10.0.0.1", Endpoint("10.0.0.1", 0))
}

func TestResult(t *testing.T) {
	for code, want := range map[int]string{
		200: ResultAnswered, 202: ResultAnswered, 302: ResultRedirected, 486: ResultBusy, 600: ResultBusy,
		480: ResultNoAnswer, 603: ResultRejected, 487: ResultCancelled, 404: ResultFailed, 503: ResultFailed,
		408: ResultFailed,
	} {
		assert.Equal(t, want, Result(code), "%d", code)
	}
}

// TestIDs: the trace a record belongs to. A call's records (a CDR, an
// INVITE dialog's messages) point at the call of their correlation key and
// its root, whatever their own Call-ID; any other method at its own
// transaction's trace, which has no root.
func TestIDs(t *testing.T) {
	call, root := TraceID("a-leg"), RootSpanID("a-leg")
	for _, tt := range []struct {
		name         string
		corr, callID string
		cseq         uint32
		method       string
		trace        pcommon.TraceID
		span         pcommon.SpanID
	}{
		{"CDR keyed by its Call-ID", "", "a-leg", 0, "", call, root},
		{"CDR of a b-leg", "a-leg", "b-leg", 0, "", call, root},
		{"INVITE", "", "a-leg", 1, "INVITE", call, root},
		{"BYE of a b-leg", "a-leg", "b-leg", 2, "BYE", call, root},
		{"every dialog method", "", "a-leg", 3, "PRACK", call, root},
		{"REGISTER", "", "reg", 2, "REGISTER", TraceID(OutOfDialogKey("reg", 2, "REGISTER")), pcommon.SpanID{}},
		{"OPTIONS ignores the key", "a-leg", "ping", 7, "OPTIONS", TraceID(OutOfDialogKey("ping", 7, "OPTIONS")), pcommon.SpanID{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			trace, span := IDs(tt.corr, tt.callID, tt.cseq, tt.method)
			assert.Equal(t, tt.trace, trace)
			assert.Equal(t, tt.span, span)
		})
	}
	for _, m := range []string{"INVITE", "ACK", "BYE", "CANCEL", "PRACK", "UPDATE"} {
		assert.True(t, IsDialogMethod(m), m)
	}
	for _, m := range []string{"REGISTER", "OPTIONS", "INFO", "NOTIFY", "SUBSCRIBE", "MESSAGE", "REFER", "PUBLISH", "invite", ""} {
		assert.False(t, IsDialogMethod(m), m)
	}
}
