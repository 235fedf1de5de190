package cdr

import (
	"bytes"
	"errors"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/logmodel"
)

// ToLogRecord fills lr, an empty log record, with r. body is the record's
// original JSON, kept as the body; received is when it arrived.
func ToLogRecord(r *Record, body []byte, received time.Time, lr plog.LogRecord) {
	lr.SetEventName(logmodel.EventCDR)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(r.Time))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(received))
	trimmed := bytes.TrimSpace(body)
	if src := strings.TrimSpace(r.Source); src == string(trimmed) {
		lr.Body().SetStr(src) // the parsed copy: no second one
	} else {
		lr.Body().SetStr(string(trimmed))
	}
	attrs := lr.Attributes()
	attrs.EnsureCapacity(len(Fields) + len(r.Extras))
	for i, f := range Fields {
		v := r.Values[i]
		if !r.Present[i] || v.Null || f.Attr == "" {
			continue
		}
		switch f.Kind {
		case KindString, KindTimestamp:
			attrs.PutStr(f.Attr, v.Str)
		case KindInt:
			attrs.PutInt(f.Attr, v.Int)
		case KindNumber:
			attrs.PutDouble(f.Attr, v.Num)
		}
	}
	for _, e := range r.Extras {
		putExtra(attrs, ExtraPrefix+e.Key, e)
	}
}

// putExtra maps an extra key the way the file_log chain's OTTL ParseJSON
// does: strings stay strings, numbers become doubles, null is dropped.
func putExtra(attrs pcommon.Map, key string, e Extra) {
	switch {
	case e.IsString:
		attrs.PutStr(key, e.Value.Str)
	case e.Value.Null:
	case string(e.Value.Raw) == "true" || string(e.Value.Raw) == "false":
		attrs.PutBool(key, string(e.Value.Raw) == "true")
	case jsonType(e.Value.Raw) == "number":
		if f, err := parseFloat(e.Value.Raw); err == nil {
			attrs.PutDouble(key, f)
			return
		}
		attrs.PutStr(key, string(e.Value.Raw))
	default: // object or array: kept as its JSON text
		attrs.PutStr(key, string(e.Value.Raw))
	}
}

// ErrNotCDR is returned when a record to render is not a sip.cdr record.
var ErrNotCDR = errors.New("cdr: not a sip.cdr record")

// BodyJSON returns the original JSON object a sip.cdr record carries as its
// body, or nil when the body is not a JSON object (the record was built or
// changed by something else).
func BodyJSON(lr plog.LogRecord) []byte {
	if lr.Body().Type() != pcommon.ValueTypeStr {
		return nil
	}
	s := strings.TrimSpace(lr.Body().Str())
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil
	}
	return []byte(s)
}

// AppendJSON appends the SIPhon JSON object of a sip.cdr record to dst:
// the original body when fromBody is set and the body holds it, else the
// object rendered from the attributes in SIPhon's key order and number
// formatting. Nullable keys SIPhon always writes are written as null when
// their attribute is absent; optional keys (rf_*, reg_event) are omitted.
func AppendJSON(dst []byte, lr plog.LogRecord, fromBody bool) ([]byte, error) {
	if lr.EventName() != logmodel.EventCDR {
		return dst, ErrNotCDR
	}
	if fromBody {
		if b := BodyJSON(lr); b != nil {
			return append(dst, b...), nil
		}
	}
	attrs := lr.Attributes()
	dst = append(dst, '{')
	first := true
	key := func(k string) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, k)
		dst = append(dst, ':')
	}
	for _, f := range Fields {
		if f.Key == "timestamp" {
			key(f.Key)
			dst = appendString(dst, FormatTime(lr.Timestamp().AsTime()))
			continue
		}
		v, ok := attrs.Get(f.Attr)
		switch {
		case ok:
			key(f.Key)
			dst = appendValue(dst, v)
		case f.Optional:
		case f.Nullable:
			key(f.Key)
			dst = append(dst, "null"...)
		}
	}
	for k, v := range attrs.All() {
		if name, ok := strings.CutPrefix(k, ExtraPrefix); ok {
			key(name)
			dst = appendValue(dst, v)
		}
	}
	return append(dst, '}'), nil
}

// FormatTime renders a time the way SIPhon does: RFC 3339, UTC, milliseconds.
func FormatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// AppendValue appends an attribute or body value as JSON, serde-style.
// Bytes become their base64 text (JSON cannot hold raw bytes); maps and
// slices their JSON.
func AppendValue(dst []byte, v pcommon.Value) []byte { return appendValue(dst, v) }

func appendValue(dst []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return appendString(dst, v.Str())
	case pcommon.ValueTypeInt:
		return appendInt(dst, v.Int())
	case pcommon.ValueTypeDouble:
		return appendFloat(dst, v.Double())
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case pcommon.ValueTypeEmpty:
		return append(dst, "null"...)
	case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
		return append(dst, v.AsString()...) // pdata renders these as JSON
	}
	return appendString(dst, v.AsString())
}
