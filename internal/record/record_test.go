package record

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

func TestAll(t *testing.T) {
	ld := plog.NewLogs()
	for r, n := range []int{2, 0, 3} { // the empty resource must not shift indices
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(AttrServiceInstanceID, string(rune('a'+r)))
		sl := rl.ScopeLogs().AppendEmpty()
		for i := range n {
			sl.LogRecords().AppendEmpty().Body().SetInt(int64(10*r + i))
		}
	}
	type got struct {
		i    int
		node string
		body int64
	}
	var all []got
	for i, it := range All(ld) {
		all = append(all, got{i, Node(it.Resource), it.Log.Body().Int()})
	}
	assert.Equal(t, []got{{0, "a", 0}, {1, "a", 1}, {2, "c", 20}, {3, "c", 21}, {4, "c", 22}}, all)

	n := 0
	for range All(ld) {
		n++
		if n == 2 {
			break // stopping early must not panic or go on
		}
	}
	assert.Equal(t, 2, n)
}

func TestKindAndCallID(t *testing.T) {
	tests := []struct {
		event, callID, corr string
		kind                Kind
		want                string
	}{
		{EventCDR, "c1", "", KindCDR, "c1"},
		{EventSIPMessage, "c2", "x", KindSIPMessage, "c2"},
		{"hep.rtcp", "", "c3", KindOther, "c3"},
		{"hep.log", "", "", KindOther, ""},
	}
	for _, tt := range tests {
		lr := plog.NewLogRecord()
		lr.SetEventName(tt.event)
		if tt.callID != "" {
			lr.Attributes().PutStr(AttrSIPCallID, tt.callID)
		}
		if tt.corr != "" {
			lr.Attributes().PutStr(AttrHEPCorrelationID, tt.corr)
		}
		assert.Equal(t, tt.kind, KindOf(lr), tt.event)
		assert.Equal(t, tt.want, CallID(lr), tt.event)
	}
}

func TestSourceValidate(t *testing.T) {
	assert.NoError(t, SourceBody.Validate())
	assert.NoError(t, SourceAttributes.Validate())
	assert.EqualError(t, Source("").Validate(), `must be "body" or "attributes", got ""`)
	assert.Error(t, Source("Body").Validate())
}

// TestStrInt: the typed attribute readers every component uses, on the
// forms a record's attributes take after JSON or a transform.
func TestStrInt(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr("s", "x")
	m.PutInt("i", 42)
	m.PutDouble("whole", 486)
	m.PutDouble("half", 1.5)
	m.PutStr("digits", "-17")
	m.PutStr("word", "seven")
	assert.Equal(t, "x", Str(m, "s"))
	assert.Empty(t, Str(m, "i"), "not a string")
	assert.Empty(t, Str(m, "absent"))
	for _, tt := range []struct {
		key  string
		want int64
		ok   bool
	}{
		{"i", 42, true}, {"whole", 486, true}, {"digits", -17, true},
		{"half", 0, false}, {"word", 0, false}, {"absent", 0, false},
	} {
		got, ok := Int(m, tt.key)
		assert.Equal(t, tt.ok, ok, tt.key)
		assert.Equal(t, tt.want, got, tt.key)
	}
}

// TestCopyOwned: the copy equals the original and shares none of its
// strings or bytes, nested ones included.
func TestCopyOwned(t *testing.T) {
	msg := "INVITE sip:bob@example.com SIP/2.0\r\nCall-ID: abc\r\n"
	src := pcommon.NewMap()
	src.PutStr("method", msg[:6])
	src.PutInt("n", 7)
	src.PutEmptyBytes("raw").FromRaw([]byte(msg[7:10]))
	src.PutEmptyMap("nested").PutStr("call_id", msg[len(msg)-5:len(msg)-2])
	src.PutEmptySlice("list").AppendEmpty().SetStr(msg[11:14])
	dst := pcommon.NewMap()
	dst.PutStr("stale", "gone")
	CopyOwned(src, dst)
	assert.Equal(t, src.AsRaw(), dst.AsRaw())
	shares := func(a, b pcommon.Value) bool {
		switch a.Type() {
		case pcommon.ValueTypeStr:
			return unsafe.StringData(a.Str()) == unsafe.StringData(b.Str())
		case pcommon.ValueTypeBytes:
			return &a.Bytes().AsRaw()[0] == &b.Bytes().AsRaw()[0]
		}
		return false
	}
	for _, tt := range []struct {
		name     string
		src, dst pcommon.Value
	}{
		{"method", get(src, "method"), get(dst, "method")},
		{"raw", get(src, "raw"), get(dst, "raw")},
		{"nested", get(get(src, "nested").Map(), "call_id"), get(get(dst, "nested").Map(), "call_id")},
		{"list", get(src, "list").Slice().At(0), get(dst, "list").Slice().At(0)},
	} {
		assert.False(t, shares(tt.src, tt.dst), tt.name)
	}
}

func get(m pcommon.Map, key string) pcommon.Value {
	v, _ := m.Get(key)
	return v
}
