package record

import (
	"iter"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Item is one log record of a batch with the resource it belongs to.
type Item struct {
	Resource pcommon.Resource
	Log      plog.LogRecord
}

// All yields every log record of ld in order, with its index in that order
// (the index Subset and the exporters' retries use).
func All(ld plog.Logs) iter.Seq2[int, Item] {
	return func(yield func(int, Item) bool) {
		i := 0
		for _, rl := range ld.ResourceLogs().All() {
			res := rl.Resource()
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if !yield(i, Item{Resource: res, Log: lr}) {
						return
					}
					i++
				}
			}
		}
	}
}

// Kind classifies a record for routing (Kafka topics, file formats).
type Kind string

// Record kinds.
const (
	KindCDR        Kind = "cdr"
	KindSIPMessage Kind = "sip_message"
	KindOther      Kind = "other"
)

// KindOf returns the kind of a record.
func KindOf(lr plog.LogRecord) Kind {
	switch lr.EventName() {
	case EventCDR:
		return KindCDR
	case EventSIPMessage:
		return KindSIPMessage
	}
	return KindOther
}

// CallID returns the record's Call-ID, else its HEP correlation id, else "".
func CallID(lr plog.LogRecord) string {
	if v, ok := lr.Attributes().Get(AttrSIPCallID); ok {
		return v.Str()
	}
	if v, ok := lr.Attributes().Get(AttrHEPCorrelationID); ok {
		return v.AsString()
	}
	return ""
}

// Node returns the sending node's identity (service.instance.id) from the
// resource, or "".
func Node(res pcommon.Resource) string {
	if v, ok := res.Attributes().Get(AttrServiceInstanceID); ok {
		return v.AsString()
	}
	return ""
}

// IsResponse reports whether a sip.message record is a SIP response.
func IsResponse(attrs pcommon.Map) bool {
	_, ok := attrs.Get(AttrSIPResponseStatusCode)
	return ok
}

// Str returns a string attribute's value, "" when absent or not a string.
func Str(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

// Int returns an integer attribute's value: an int, a double holding a
// whole number (a record that went through JSON), or a decimal string (a
// record written by hand or by a transform).
func Int(m pcommon.Map, key string) (int64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), true
	case pcommon.ValueTypeDouble:
		if d := v.Double(); d == math.Trunc(d) && math.Abs(d) < 1<<53 {
			return int64(d), true
		}
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// CopyOwned copies src into dst (replacing it) with copies of its strings
// and bytes, for state that outlives the record: pcommon's CopyTo shares
// them, and a record's strings are slices of its whole message, which one
// kept string keeps alive.
func CopyOwned(src, dst pcommon.Map) {
	src.CopyTo(dst)
	ownMap(dst)
}

func ownMap(m pcommon.Map) {
	for _, v := range m.All() {
		own(v)
	}
}

func own(v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		v.SetStr(strings.Clone(v.Str()))
	case pcommon.ValueTypeBytes:
		v.Bytes().FromRaw(slices.Clone(v.Bytes().AsRaw()))
	case pcommon.ValueTypeMap:
		ownMap(v.Map())
	case pcommon.ValueTypeSlice:
		for _, e := range v.Slice().All() {
			own(e)
		}
	}
}
