// Package cdr is SIPhon's call detail record codec: the record parsed from
// its JSON object (strict about the documented fields' types, tolerant of
// unknown keys) and SIPhon's way of writing JSON values (serde's), so that
// what we write is byte-identical to what a SIPhon node writes.
//
// A SIPhon record is one JSON object with the keys in Fields
// (docs/siphon-formats.md#cdrs); script-added fields are flattened into
// the same object with string values. record/cdrrecord maps it to a sip.cdr
// log record and back.
package cdr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/siphon-otel/siphon-otel/internal/jsonvalid"
)

// Kind is the JSON type a documented field must have.
type Kind int

// Field kinds.
const (
	KindString Kind = iota
	KindTimestamp
	KindInt
	KindNumber
)

func (k Kind) String() string {
	return [...]string{"string", "RFC 3339 timestamp string", "integer", "number"}[k]
}

// Field is one documented key of the record.
type Field struct {
	Key      string // JSON key in SIPhon's record
	Kind     Kind
	Nullable bool // may be null; SIPhon writes the key as null when unset
	Optional bool // may be absent; SIPhon writes it only when used
	Required bool // must be present and not null
}

// Fields lists the documented keys in SIPhon's order, which is also the
// order of rendered JSON and of the CSV columns.
var Fields = []Field{
	{Key: "timestamp", Kind: KindTimestamp, Required: true}, // the log record's Timestamp
	{Key: "call_id", Kind: KindString, Required: true},
	{Key: "from_uri", Kind: KindString},
	{Key: "to_uri", Kind: KindString},
	{Key: "ruri", Kind: KindString},
	{Key: "method", Kind: KindString},
	{Key: "response_code", Kind: KindInt},
	{Key: "timestamp_start", Kind: KindTimestamp, Nullable: true},
	{Key: "timestamp_answer", Kind: KindTimestamp, Nullable: true},
	{Key: "timestamp_end", Kind: KindTimestamp, Nullable: true},
	{Key: "duration_secs", Kind: KindNumber},
	{Key: "source_ip", Kind: KindString},
	{Key: "destination_ip", Kind: KindString},
	{Key: "transport", Kind: KindString},
	{Key: "user_agent", Kind: KindString, Nullable: true},
	{Key: "auth_user", Kind: KindString, Nullable: true},
	{Key: "disconnect_initiator", Kind: KindString, Nullable: true},
	{Key: "sip_reason", Kind: KindString, Nullable: true},
	{Key: "rf_session_id", Kind: KindString, Optional: true, Nullable: true},
	{Key: "rf_result_code", Kind: KindInt, Optional: true, Nullable: true},
	{Key: "reg_event", Kind: KindString, Optional: true, Nullable: true},
}

var fieldIndex = func() map[string]int {
	m := make(map[string]int, len(Fields))
	for i, f := range Fields {
		m[f.Key] = i
	}
	return m
}()

// FieldByKey returns the documented field with JSON key k.
func FieldByKey(k string) (Field, bool) {
	i, ok := fieldIndex[k]
	if !ok {
		return Field{}, false
	}
	return Fields[i], true
}

// Value is one field's value. Null is true for JSON null; otherwise exactly
// one of Str (strings and timestamps), Int, Num holds it. Raw is the value's
// JSON text as received.
type Value struct {
	Null bool
	Str  string
	Int  int64
	Num  float64
	Raw  json.RawMessage
}

// Extra is a key the record does not document. SIPhon's script fields are
// strings; other JSON values are kept verbatim in Raw.
type Extra struct {
	Key   string
	Value Value
	// IsString tells a string extra from any other JSON value.
	IsString bool
}

// Record is one parsed CDR.
type Record struct {
	// Values of the documented fields present in the JSON, by index into
	// Fields; Present tells which.
	Values  [21]Value
	Present [21]bool
	Extras  []Extra
	// Time is the parsed "timestamp".
	Time time.Time
	// Source is the JSON the record was parsed from, when it was well
	// formed; the strings above are substrings of it and Raw values views
	// of it (never to be written to).
	Source string
}

// Get returns a documented field's value by JSON key.
func (r *Record) Get(key string) (Value, bool) {
	i, ok := fieldIndex[key]
	if !ok || !r.Present[i] {
		return Value{}, false
	}
	return r.Values[i], true
}

// CallID returns the record's Call-ID.
func (r *Record) CallID() string {
	v, _ := r.Get("call_id")
	return v.Str
}

// FieldError says which field of a record is wrong and why.
type FieldError struct {
	Field  string // JSON key, empty for the record as a whole
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return "cdr: " + e.Reason
	}
	return fmt.Sprintf("cdr: field %q: %s", e.Field, e.Reason)
}

// MaxRecordSize bounds one record's JSON; larger input is refused before it
// is parsed.
const MaxRecordSize = 1 << 20

// Parse reads one record from a JSON object. It reports the first problem as
// a *FieldError. The record's Raw values alias b.
func Parse(b []byte) (*Record, error) {
	if len(b) > MaxRecordSize {
		return nil, &FieldError{Reason: fmt.Sprintf("record of %d bytes exceeds %d", len(b), MaxRecordSize)}
	}
	// jsonvalid is cheap and allocation-free; well-formed input then takes
	// a scanner that slices b instead of encoding/json's token stream (five
	// times faster, a tenth of the allocations: profiled on the CDR path).
	// Malformed input takes the decoder, whose errors say where.
	if jsonvalid.Valid(b) {
		r := new(Record)
		if err := r.parseValid(string(b)); err != nil {
			return nil, err
		}
		return r, nil
	}
	return parseDecoder(b)
}

// ParseValid is Parse for b that jsonvalid.Valid accepted already (an element
// of a validated array, say), which it does not check again.
func ParseValid(b []byte) (*Record, error) {
	r := new(Record)
	if err := ParseValidInto(r, b); err != nil {
		return nil, err
	}
	return r, nil
}

// ParseValidInto is ParseValid into r, all of which it overwrites, reusing
// its memory: a caller that turns each record into a log record at once
// parses a whole request into one Record instead of leaving a 1.4 KiB one
// per CDR to the GC (a tenth of the CDR path's CPU with its GC share,
// profiled).
func ParseValidInto(r *Record, b []byte) error {
	if len(b) > MaxRecordSize {
		return &FieldError{Reason: fmt.Sprintf("record of %d bytes exceeds %d", len(b), MaxRecordSize)}
	}
	return r.parseValid(string(b))
}

// parseDecoder parses with encoding/json's decoder, for its error reports.
func parseDecoder(b []byte) (*Record, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, &FieldError{Reason: "not JSON: " + jsonReason(err)}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &FieldError{Reason: "not a JSON object"}
	}
	r := &Record{}
	seen := make(map[string]bool, 24)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, &FieldError{Reason: "malformed JSON: " + jsonReason(err)}
		}
		key := tok.(string)
		if seen[key] {
			return nil, &FieldError{Field: key, Reason: "appears twice"}
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, &FieldError{Field: key, Reason: "malformed JSON value: " + jsonReason(err)}
		}
		if i, ok := fieldIndex[key]; ok {
			v, err := parseValue(Fields[i], raw, false)
			if err != nil {
				return nil, err
			}
			r.Values[i], r.Present[i] = v, true
			continue
		}
		e, err := extra(key, raw, false)
		if err != nil {
			return nil, err
		}
		r.Extras = append(r.Extras, e)
	}
	if _, err := dec.Token(); err != nil {
		return nil, &FieldError{Reason: "malformed JSON: " + jsonReason(err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &FieldError{Reason: "trailing data after the JSON object"}
	}
	return r.finish()
}

func extra(key string, raw json.RawMessage, immutable bool) (Extra, error) {
	e := Extra{Key: key, Value: Value{Raw: raw}}
	if len(raw) > 0 && raw[0] == '"' {
		var err error
		if e.Value.Str, err = jsonString(raw, immutable); err != nil {
			return e, &FieldError{Field: key, Reason: "bad string: " + err.Error()}
		}
		e.IsString = true
	} else if string(raw) == "null" {
		e.Value.Null = true
	}
	return e, nil
}

// parseValid parses s, which jsonvalid.Valid accepted. The record's strings
// are substrings of s and its Raw values views of it: one copy of the
// input per record instead of one per field.
func (r *Record) parseValid(s string) error {
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // read only: s is immutable
	*r = Record{Source: s, Extras: r.Extras[:0]}    // nothing of a previous record stays
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return &FieldError{Reason: "not a JSON object"}
	}
	var extraKeys map[string]bool // past a few extras, so duplicates are not found in quadratic time
	i = skipSpace(b, i+1)
	for b[i] != '}' {
		end := valueEnd(b, i)
		key, err := jsonString(b[i:end], true)
		if err != nil {
			return &FieldError{Reason: "malformed JSON: " + err.Error()}
		}
		i = skipSpace(b, skipSpace(b, end)+1) // past ':'
		end = valueEnd(b, i)
		raw := json.RawMessage(b[i:end:end])
		i = skipSpace(b, end)
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		if fi, ok := fieldIndex[key]; ok {
			if r.Present[fi] {
				return &FieldError{Field: key, Reason: "appears twice"}
			}
			v, err := parseValue(Fields[fi], raw, true)
			if err != nil {
				return err
			}
			r.Values[fi], r.Present[fi] = v, true
			continue
		}
		if dup := hasExtra(r.Extras, &extraKeys, key); dup {
			return &FieldError{Field: key, Reason: "appears twice"}
		}
		e, err := extra(key, raw, true)
		if err != nil {
			return err
		}
		r.Extras = append(r.Extras, e)
	}
	_, err := r.finish()
	return err
}

// hasExtra tells whether key is among extras, and records it in *index
// once there are more than a few.
func hasExtra(extras []Extra, index *map[string]bool, key string) bool {
	const linear = 8
	if len(extras) < linear {
		for _, e := range extras {
			if e.Key == key {
				return true
			}
		}
		return false
	}
	if *index == nil {
		*index = make(map[string]bool, 2*linear)
		for _, e := range extras {
			(*index)[e.Key] = true
		}
	}
	if (*index)[key] {
		return true
	}
	(*index)[key] = true
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the end of the JSON value starting at b[i], for valid JSON.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = valueEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}
		return j
	}
	return len(b)
}

// jsonString decodes a JSON string literal; one without escapes is taken
// as is (when valid UTF-8, which encoding/json would otherwise repair):
// a view of raw when raw is immutable (it is a string's memory), else a
// copy.
func jsonString(raw []byte, immutable bool) (string, error) {
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		if immutable && len(body) > 0 {
			return unsafe.String(&body[0], len(body)), nil
		}
		return string(body), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// finish checks required fields and reads the record's time.
func (r *Record) finish() (*Record, error) {
	for i, f := range Fields {
		if f.Required && (!r.Present[i] || r.Values[i].Null) {
			return nil, &FieldError{Field: f.Key, Reason: "required"}
		}
	}
	ts, _ := r.Get("timestamp")
	r.Time, _ = time.Parse(time.RFC3339Nano, ts.Str)
	// OTel timestamps are unsigned nanoseconds since 1970 (until 2262)
	if r.Time.Before(time.Unix(0, 0)) || r.Time.After(time.Unix(0, math.MaxInt64)) {
		return nil, &FieldError{Field: "timestamp", Reason: fmt.Sprintf("%q is outside 1970-2262", ts.Str)}
	}
	return r, nil
}

func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at offset %d", se.Error(), se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return err.Error()
}

func parseValue(f Field, raw json.RawMessage, immutable bool) (Value, error) {
	v := Value{Raw: raw}
	if string(raw) == "null" {
		if !f.Nullable {
			return v, &FieldError{Field: f.Key, Reason: "must not be null"}
		}
		v.Null = true
		return v, nil
	}
	bad := func(got string) error {
		return &FieldError{Field: f.Key, Reason: fmt.Sprintf("want %s, got %s", f.Kind, got)}
	}
	switch f.Kind {
	case KindString, KindTimestamp:
		if raw[0] != '"' {
			return v, bad(jsonType(raw))
		}
		var err error
		if v.Str, err = jsonString(raw, immutable); err != nil {
			return v, &FieldError{Field: f.Key, Reason: "bad string: " + err.Error()}
		}
		if f.Kind == KindTimestamp {
			if _, err := time.Parse(time.RFC3339Nano, v.Str); err != nil {
				return v, &FieldError{Field: f.Key, Reason: fmt.Sprintf("not an RFC 3339 timestamp: %q", v.Str)}
			}
		}
	case KindInt:
		if jsonType(raw) != "number" {
			return v, bad(jsonType(raw))
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return v, bad(fmt.Sprintf("number %s", raw))
		}
		v.Int = n
	case KindNumber:
		if jsonType(raw) != "number" {
			return v, bad(jsonType(raw))
		}
		n, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(n, 0) {
			return v, bad(fmt.Sprintf("number %s", raw))
		}
		v.Num = n
	}
	return v, nil
}

func jsonType(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// ArrayElements returns the elements of a JSON array that jsonvalid.Valid
// accepted, as slices of b, without decoding them.
func ArrayElements(b []byte) []json.RawMessage {
	out, _ := ArrayElementsAtMost(b, len(b)) // an element takes at least a byte
	return out
}

// ArrayElementsAtMost is ArrayElements for at most max elements: it stops
// at the element after the max-th and reports more, so that an array of
// millions of tiny elements costs max slices, not one per element.
func ArrayElementsAtMost(b []byte, max int) (elems []json.RawMessage, more bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	out := []json.RawMessage{}
	for i = skipSpace(b, i+1); i < len(b) && b[i] != ']'; {
		if len(out) == max {
			return out, true
		}
		end := valueEnd(b, i)
		out = append(out, b[i:end:end])
		if i = skipSpace(b, end); i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return out, false
}

// Float returns the value of an extra that is a JSON number, read as serde
// reads it.
func (e Extra) Float() (float64, bool) {
	if e.IsString || jsonType(e.Value.Raw) != "number" {
		return 0, false
	}
	f, err := parseFloat(e.Value.Raw)
	return f, err == nil
}
