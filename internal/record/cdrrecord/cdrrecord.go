// Package cdrrecord maps SIPhon's CDR to a sip.cdr log record and back.
//
// A record's Timestamp is the CDR's "timestamp", its body the original JSON
// object (so exporters write SIPhon's bytes back unchanged), and each
// documented key present and not null an attribute (the table below);
// script-added keys become cdr.extra.<key>. Rendering goes the other way:
// SIPhon's key order and number formatting, nullable keys SIPhon always
// writes as null when their attribute is absent, optional ones omitted.
package cdrrecord

import (
	"bytes"
	"errors"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/record"
)

// keyAttrs is the attribute of each documented key of SIPhon's record;
// "timestamp" is the record's Timestamp instead.
var keyAttrs = map[string]string{
	"call_id":              record.AttrSIPCallID,
	"from_uri":             record.AttrSIPFromURI,
	"to_uri":               record.AttrSIPToURI,
	"ruri":                 record.AttrSIPRequestURI,
	"method":               record.AttrSIPRequestMethod,
	"response_code":        record.AttrSIPResponseStatusCode,
	"timestamp_start":      record.AttrCDRTimestampStart,
	"timestamp_answer":     record.AttrCDRTimestampAnswer,
	"timestamp_end":        record.AttrCDRTimestampEnd,
	"duration_secs":        record.AttrCDRDurationSecs,
	"source_ip":            record.AttrSourceAddress,
	"destination_ip":       record.AttrDestinationAddress,
	"transport":            record.AttrCDRTransport,
	"user_agent":           record.AttrUserAgentOriginal,
	"auth_user":            record.AttrCDRAuthUser,
	"disconnect_initiator": record.AttrCDRDisconnectInitiator,
	"sip_reason":           record.AttrSIPReason,
	"rf_session_id":        record.AttrCDRRfSessionID,
	"rf_result_code":       record.AttrCDRRfResultCode,
	"reg_event":            record.AttrCDRRegEvent,
}

// Attrs is the attribute of each of cdr.Fields, by index ("" for timestamp).
var Attrs = func() []string {
	out := make([]string, len(cdr.Fields))
	for i, f := range cdr.Fields {
		if f.Key == "timestamp" {
			continue
		}
		a, ok := keyAttrs[f.Key]
		if !ok {
			panic("cdrrecord: no attribute for CDR key " + f.Key)
		}
		out[i] = a
	}
	return out
}()

// Attr returns the attribute of a documented CDR key.
func Attr(key string) (string, bool) {
	a, ok := keyAttrs[key]
	return a, ok
}

// FromCDR fills lr, an empty log record, with r. body is the record's
// original JSON, kept as the body; received is when it arrived.
func FromCDR(r *cdr.Record, body []byte, received time.Time, lr plog.LogRecord) {
	lr.SetEventName(record.EventCDR)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(r.Time))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(received))
	trimmed := bytes.TrimSpace(body)
	if src := strings.TrimSpace(r.Source); src == string(trimmed) {
		lr.Body().SetStr(src) // the parsed copy: no second one
	} else {
		lr.Body().SetStr(string(trimmed))
	}
	attrs := lr.Attributes()
	attrs.EnsureCapacity(attrCount(r))
	for i, f := range cdr.Fields {
		v, attr := r.Values[i], Attrs[i]
		if !r.Present[i] || v.Null || attr == "" {
			continue
		}
		switch f.Kind {
		case cdr.KindString, cdr.KindTimestamp:
			attrs.PutStr(attr, v.Str)
		case cdr.KindInt:
			attrs.PutInt(attr, v.Int)
		case cdr.KindNumber:
			attrs.PutDouble(attr, v.Num)
		}
	}
	for _, e := range r.Extras {
		putExtra(attrs, record.AttrCDRExtraPrefix+e.Key, e)
	}
}

// attrCount is how many attributes FromCDR puts for r and the pipeline
// adds (record.AddedDownstream), so that the record's attribute array is
// allocated once at its size: at 40 B an attribute, the room for every
// field SIPhon may send (21 and the extras) took a 1 KiB array where
// SIPhon's own record needs 768 B.
func attrCount(r *cdr.Record) int {
	n := record.AddedDownstream
	for i := range cdr.Fields {
		if r.Present[i] && !r.Values[i].Null && Attrs[i] != "" {
			n++
		}
	}
	for _, e := range r.Extras {
		if e.IsString || !e.Value.Null {
			n++
		}
	}
	return n
}

// putExtra maps an extra key the way the file_log chain's OTTL ParseJSON
// does: strings stay strings, numbers become doubles, null is dropped.
func putExtra(attrs pcommon.Map, key string, e cdr.Extra) {
	raw := e.Value.Raw
	switch {
	case e.IsString:
		attrs.PutStr(key, e.Value.Str)
	case e.Value.Null:
	case string(raw) == "true" || string(raw) == "false":
		attrs.PutBool(key, string(raw) == "true")
	default:
		if f, ok := e.Float(); ok {
			attrs.PutDouble(key, f)
			return
		}
		attrs.PutStr(key, string(raw)) // object or array: kept as its JSON text
	}
}

// ErrNotCDR is returned when a record to render is not a sip.cdr record.
var ErrNotCDR = errors.New("cdrrecord: not a sip.cdr record")

// BodyJSON returns the original JSON object a sip.cdr record carries as its
// body, or "" when the body is not a JSON object (the record was built or
// changed by something else). It is the body's own string, not a copy: the
// file and Kafka exporters append it per record.
func BodyJSON(lr plog.LogRecord) string {
	if lr.Body().Type() != pcommon.ValueTypeStr {
		return ""
	}
	s := strings.TrimSpace(lr.Body().Str())
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return ""
	}
	return s
}

// AppendJSON appends the SIPhon JSON object of a sip.cdr record to dst:
// with record.SourceBody the original body when the body holds it, else the
// object rendered from the attributes in SIPhon's key order and number
// formatting.
func AppendJSON(dst []byte, lr plog.LogRecord, src record.Source) ([]byte, error) {
	if lr.EventName() != record.EventCDR {
		return dst, ErrNotCDR
	}
	if src == record.SourceBody {
		if b := BodyJSON(lr); b != "" {
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
		dst = cdr.AppendString(dst, k)
		dst = append(dst, ':')
	}
	for i, f := range cdr.Fields {
		if f.Key == "timestamp" {
			key(f.Key)
			dst = cdr.AppendString(dst, cdr.FormatTime(lr.Timestamp().AsTime()))
			continue
		}
		v, ok := attrs.Get(Attrs[i])
		switch {
		case ok:
			key(f.Key)
			dst = AppendValue(dst, v)
		case f.Optional:
		case f.Nullable:
			key(f.Key)
			dst = append(dst, "null"...)
		}
	}
	for k, v := range attrs.All() {
		if name, ok := strings.CutPrefix(k, record.AttrCDRExtraPrefix); ok {
			key(name)
			dst = AppendValue(dst, v)
		}
	}
	return append(dst, '}'), nil
}

// AppendValue appends an attribute or body value as JSON, serde-style.
// Bytes become their base64 text (JSON cannot hold raw bytes); maps and
// slices their JSON.
func AppendValue(dst []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return cdr.AppendString(dst, v.Str())
	case pcommon.ValueTypeInt:
		return cdr.AppendInt(dst, v.Int())
	case pcommon.ValueTypeDouble:
		return cdr.AppendFloat(dst, v.Double())
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
	return cdr.AppendString(dst, v.AsString())
}
