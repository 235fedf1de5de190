package cdrrecord

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

func logRecord(t testing.TB, b []byte) plog.LogRecord {
	t.Helper()
	r, err := cdr.Parse(b)
	require.NoError(t, err)
	lr := plog.NewLogRecord()
	FromCDR(r, b, time.Unix(1772807000, 0), lr)
	return lr
}

func TestToLogRecord(t *testing.T) {
	lr := logRecord(t, fixture.CDR())
	assert.Equal(t, record.EventCDR, lr.EventName())
	assert.Equal(t, time.Date(2026, 3, 6, 14, 23, 1, 42e6, time.UTC), lr.Timestamp().AsTime())
	assert.Equal(t, string(fixture.CDR()), lr.Body().Str())
	assert.Equal(t, map[string]any{
		"sip.call_id": "a84b4c76e66710@192.168.1.100", "sip.from.uri": "sip:alice@example.com",
		"sip.to.uri": "sip:bob@example.com", "sip.request.uri": "sip:bob@10.0.0.1:5060", "sip.request.method": "INVITE",
		"sip.response.status_code": int64(200), "cdr.timestamp_start": "2026-03-06T14:20:16.100Z",
		"cdr.timestamp_answer": "2026-03-06T14:20:16.307Z", "cdr.timestamp_end": "2026-03-06T14:23:01.042Z",
		"cdr.duration_secs": 164.735, "source.address": "192.168.1.100", "destination.address": "10.0.0.1",
		"cdr.transport": "udp", "user_agent.original": "Ozona/5.0", "cdr.auth_user": "alice",
		"cdr.disconnect_initiator": "caller", "cdr.extra.billing_id": "B-12345", "cdr.extra.trunk": "carrier-a",
	}, lr.Attributes().AsRaw())
}

func TestRenderIsByteIdentical(t *testing.T) {
	lr := logRecord(t, fixture.CDR())
	fromBody, err := AppendJSON(nil, lr, record.SourceBody)
	require.NoError(t, err)
	assert.Equal(t, string(fixture.CDR()), string(fromBody))
	// from the attributes alone, SIPhon's own bytes come out too
	lr.Body().SetStr("")
	fromAttrs, err := AppendJSON(nil, lr, record.SourceBody)
	require.NoError(t, err)
	assert.Equal(t, string(fixture.CDR()), string(fromAttrs))
}

func TestRenderOtherShapes(t *testing.T) {
	tests := []struct{ name, in string }{
		{"register with reg_event", `{"timestamp":"2026-03-06T14:23:01.042Z","call_id":"r1","from_uri":"sip:a@x","to_uri":"sip:a@x","ruri":"sip:x","method":"REGISTER","response_code":200,"timestamp_start":null,"timestamp_answer":null,"timestamp_end":null,"duration_secs":0.0,"source_ip":"10.0.0.9","destination_ip":"10.0.0.1","transport":"tcp","user_agent":null,"auth_user":"a","disconnect_initiator":null,"sip_reason":null,"reg_event":"registered"}`},
		{"rf fields and escapes", `{"timestamp":"2026-03-06T14:23:01.000Z","call_id":"c\"2\\x\u0001","from_uri":"sip:<a>&b@x","to_uri":"sip:b@x","ruri":"sip:b@x","method":"INVITE","response_code":486,"timestamp_start":"2026-03-06T14:22:59.000Z","timestamp_answer":null,"timestamp_end":"2026-03-06T14:23:01.000Z","duration_secs":0.0,"source_ip":"::1","destination_ip":"::2","transport":"wss","user_agent":"Ünïcödé\tUA","auth_user":null,"disconnect_initiator":"callee","sip_reason":"Q.850;cause=17;text=\"User busy\"","rf_session_id":"rf;1","rf_result_code":2001,"x":"1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := logRecord(t, []byte(tt.in))
			lr.Body().SetStr("")
			out, err := AppendJSON(nil, lr, record.SourceAttributes)
			require.NoError(t, err)
			assert.Equal(t, tt.in, string(out))
		})
	}
}

func TestNonStringExtras(t *testing.T) {
	in := `{"timestamp":"2026-03-06T14:23:01.042Z","call_id":"c","n":3,"f":1.5,"b":true,"z":null,"o":{"a":1},"s":"x"}`
	lr := logRecord(t, []byte(in))
	attrs := lr.Attributes().AsRaw()
	assert.Equal(t, 3.0, attrs["cdr.extra.n"])
	assert.Equal(t, 1.5, attrs["cdr.extra.f"])
	assert.Equal(t, true, attrs["cdr.extra.b"])
	assert.NotContains(t, attrs, "cdr.extra.z")
	assert.Equal(t, `{"a":1}`, attrs["cdr.extra.o"])
	assert.Equal(t, "x", attrs["cdr.extra.s"])
}

func TestNotCDR(t *testing.T) {
	lr := plog.NewLogRecord()
	lr.SetEventName(record.EventSIPMessage)
	_, err := AppendJSON(nil, lr, record.SourceBody)
	assert.ErrorIs(t, err, ErrNotCDR)
	_, err = CSV{}.AppendRow(nil, lr)
	assert.ErrorIs(t, err, ErrNotCDR)
}

func TestCSV(t *testing.T) {
	c := CSV{ExtraColumns: []string{"trunk"}}
	assert.Equal(t, "timestamp,call_id,from_uri,to_uri,ruri,method,response_code,timestamp_start,timestamp_answer,timestamp_end,duration_secs,source_ip,destination_ip,transport,user_agent,auth_user,disconnect_initiator,sip_reason,rf_session_id,rf_result_code,reg_event,trunk,extra\n",
		string(c.AppendHeader(nil)))
	row, err := c.AppendRow(nil, logRecord(t, fixture.CDR()))
	require.NoError(t, err)
	assert.Equal(t, `2026-03-06T14:23:01.042Z,a84b4c76e66710@192.168.1.100,sip:alice@example.com,sip:bob@example.com,sip:bob@10.0.0.1:5060,INVITE,200,2026-03-06T14:20:16.100Z,2026-03-06T14:20:16.307Z,2026-03-06T14:23:01.042Z,164.735,192.168.1.100,10.0.0.1,udp,Ozona/5.0,alice,caller,,,,,carrier-a,"{""billing_id"":""B-12345""}"`+"\n", string(row))
}

// FuzzParse: no input panics; whatever parses renders from attributes to an
// object that parses to the same values.

// FuzzRoundTrip: whatever parses renders from its attributes to an object
// that parses to the same values.
func FuzzRoundTrip(f *testing.F) {
	f.Add(fixture.CDR())
	f.Add([]byte(`{"timestamp":"2026-03-06T14:23:01.042Z","call_id":"c","rf_result_code":1,"x":[1,{"y":null}]}`))
	f.Add([]byte(`{"timestamp":"2026-03-06T14:23:01Z","call_id":"c","duration_secs":1e300,"response_code":-1,"n":1.5e-7,"b":false}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := cdr.Parse(b)
		if err != nil {
			return
		}
		lr := plog.NewLogRecord()
		FromCDR(r, b, time.Now(), lr)
		out, err := AppendJSON(nil, lr, record.SourceAttributes)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := cdr.Parse(out)
		if err != nil {
			t.Fatalf("rendered record does not parse: %v\n%s", err, out)
		}
		// rendering keeps milliseconds, SIPhon's precision
		if d := r.Time.Sub(r2.Time); d < 0 || d >= time.Millisecond {
			t.Fatalf("time %v became %v", r.Time, r2.Time)
		}
		for i, fd := range cdr.Fields {
			if fd.Key == "timestamp" {
				continue
			}
			a, b := r.Values[i], r2.Values[i]
			if r.Present[i] && !a.Null && (a.Str != b.Str || a.Int != b.Int || a.Num != b.Num) {
				t.Fatalf("%s: %+v became %+v", fd.Key, a, b)
			}
		}
	})
}

func TestEveryKeyHasAnAttribute(t *testing.T) {
	seen := map[string]string{}
	for i, f := range cdr.Fields {
		if f.Key == "timestamp" {
			assert.Empty(t, Attrs[i])
			continue
		}
		require.NotEmpty(t, Attrs[i], f.Key)
		a, ok := Attr(f.Key)
		assert.True(t, ok)
		assert.Equal(t, Attrs[i], a)
		if other, dup := seen[a]; dup {
			t.Errorf("%s and %s share attribute %s", other, f.Key, a)
		}
		seen[a] = f.Key
	}
	assert.Len(t, keyAttrs, len(cdr.Fields)-1, "keys without a field")
}

// TestAttrCount holds the size FromCDR gives a record's attribute array
// against what it then puts, and sip_correlation after it.
func TestAttrCount(t *testing.T) {
	for _, in := range []string{
		string(fixture.CDR()),
		`{"timestamp":"2026-03-06T14:23:01.042Z","call_id":"r1","from_uri":"sip:a@x","to_uri":"sip:a@x","ruri":"sip:x","method":"REGISTER","response_code":200,"timestamp_start":null,"timestamp_answer":null,"timestamp_end":null,"duration_secs":0.0,"source_ip":"10.0.0.9","destination_ip":"10.0.0.1","transport":"tcp","user_agent":null,"auth_user":"a","disconnect_initiator":null,"sip_reason":null,"reg_event":"registered"}`,
		`{"timestamp":"2026-03-06T14:23:01.042Z","call_id":"c","n":3,"f":1.5,"b":true,"z":null,"o":{"a":1},"a":[1],"s":"x","e":""}`,
		`{"timestamp":"2026-03-06T14:23:01.042Z","call_id":"c"}`,
	} {
		r, err := cdr.Parse([]byte(in))
		require.NoError(t, err)
		lr := plog.NewLogRecord()
		FromCDR(r, []byte(in), time.Now(), lr)
		lr.Attributes().PutStr(record.AttrSIPCorrelationID, "c1") // as sip_correlation does
		assert.Equal(t, lr.Attributes().Len(), attrCount(r), in)
	}
}
