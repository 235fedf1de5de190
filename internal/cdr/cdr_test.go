package cdr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

func TestParseFixture(t *testing.T) {
	r, err := Parse(fixture.CDR())
	require.NoError(t, err)
	assert.Equal(t, "a84b4c76e66710@192.168.1.100", r.CallID())
	assert.Equal(t, time.Date(2026, 3, 6, 14, 23, 1, 42e6, time.UTC), r.Time)
	code, _ := r.Get("response_code")
	assert.Equal(t, int64(200), code.Int)
	dur, _ := r.Get("duration_secs")
	assert.Equal(t, 164.735, dur.Num)
	reason, ok := r.Get("sip_reason")
	assert.True(t, ok && reason.Null)
	_, ok = r.Get("reg_event")
	assert.False(t, ok)
	require.Len(t, r.Extras, 2)
	assert.Equal(t, "billing_id", r.Extras[0].Key)
	assert.Equal(t, "B-12345", r.Extras[0].Value.Str)
	assert.Equal(t, "trunk", r.Extras[1].Key)
}

func TestParseErrors(t *testing.T) {
	base := string(fixture.CDR())
	with := func(old, new string) string { return strings.Replace(base, old, new, 1) }
	tests := []struct{ name, in, want string }{
		{"not json", `{"call_id":`, `cdr: field "call_id": malformed JSON value: unexpected end of input`},
		{"garbage", `hello`, `cdr: not JSON`},
		{"array", `[1]`, `cdr: not a JSON object`},
		{"code as string", with(`"response_code":200`, `"response_code":"200"`), `cdr: field "response_code": want integer, got string`},
		{"code fractional", with(`"response_code":200`, `"response_code":200.5`), `cdr: field "response_code": want integer, got number 200.5`},
		{"duration as string", with(`"duration_secs":164.735`, `"duration_secs":"164.735"`), `cdr: field "duration_secs": want number, got string`},
		{"bad timestamp", with(`"timestamp_end":"2026-03-06T14:23:01.042Z"`, `"timestamp_end":"yesterday"`), `cdr: field "timestamp_end": not an RFC 3339 timestamp: "yesterday"`},
		{"method null", with(`"method":"INVITE"`, `"method":null`), `cdr: field "method": must not be null`},
		{"call_id missing", with(`"call_id":"a84b4c76e66710@192.168.1.100",`, ``), `cdr: field "call_id": required`},
		{"timestamp object", with(`"timestamp":"2026-03-06T14:23:01.042Z"`, `"timestamp":{}`), `cdr: field "timestamp": want RFC 3339 timestamp string, got object`},
		{"duplicate key", with(`"trunk":"carrier-a"`, `"trunk":"a","trunk":"b"`), `cdr: field "trunk": appears twice`},
		{"trailing", base + `{}`, `cdr: trailing data after the JSON object`},
		{"before 1970", with(`"timestamp":"2026-03-06T14:23:01.042Z"`, `"timestamp":"0000-01-01T00:00:00.000Z"`), `cdr: field "timestamp": "0000-01-01T00:00:00.000Z" is outside 1970-2262`},
		{"too big", `{"call_id":"` + strings.Repeat("x", MaxRecordSize) + `"}`, `exceeds`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			var fe *FieldError
			assert.True(t, errors.As(err, &fe))
		})
	}
}

// TestParseValidIntoReused: one Record parsed into again and again holds
// each time exactly what ParseValid makes of that input alone: nothing of a
// previous record (a field or an extra it had and this one lacks) stays, and
// a failed parse leaves nothing for the next one either.
func TestParseValidIntoReused(t *testing.T) {
	base := string(fixture.CDR())
	with := func(old, new string) string { return strings.Replace(base, old, new, 1) }
	tests := []struct {
		name, in string
		fails    bool
	}{
		{"full", base, false},
		{"fewer fields and extras", with(`"auth_user":"alice",`, ``), false},
		{"no extras", strings.NewReplacer(`,"billing_id":"B-12345"`, ``, `,"trunk":"carrier-a"`, ``).Replace(base), false},
		{"bad field", with(`"response_code":200`, `"response_code":"200"`), true},
		{"more extras", with(`"trunk":"carrier-a"`, `"trunk":"carrier-a","a":1,"b":"x","c":null,"d":true,"e":[1],"f":{},"g":2,"h":3,"i":4`), false},
		{"other call", strings.Replace(base, fixture.CDRCallID, "second-call", 1), false},
		{"reg event", with(`"method":"INVITE"`, `"method":"REGISTER","reg_event":"refresh"`), false},
	}
	var reused Record
	for _, order := range [][]int{{0, 1, 2, 3, 4, 5, 6}, {6, 4, 3, 2, 1, 0, 5}} {
		for _, i := range order {
			tt := tests[i]
			t.Run(tt.name, func(t *testing.T) {
				if tt.name != "full" {
					require.NotEqual(t, base, tt.in, "the case no longer changes the fixture")
				}
				fresh, err := ParseValid([]byte(tt.in))
				errInto := ParseValidInto(&reused, []byte(tt.in))
				if tt.fails {
					require.Error(t, err)
					require.Error(t, errInto)
					assert.Equal(t, err.Error(), errInto.Error())
					return
				}
				require.NoError(t, err)
				require.NoError(t, errInto)
				assert.Equal(t, fresh.Values, reused.Values)
				assert.Equal(t, fresh.Present, reused.Present)
				assert.Equal(t, fresh.Time, reused.Time)
				assert.Equal(t, fresh.Source, reused.Source)
				assert.Equal(t, append([]Extra{}, fresh.Extras...), append([]Extra{}, reused.Extras...)) // nil or empty alike
			})
		}
	}
}

func TestFloatsLikeSerde(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0.0", 164.735: "164.735", 1: "1.0", -2.5: "-2.5", 1e15: "1000000000000000.0", 1e16: "1e16",
		0.0001: "0.0001", 0.00001: "0.00001", 0.000001: "1e-6", 1.5e-7: "1.5e-7", 123456789012345680: "1.2345678901234568e17",
		12.0: "12.0", 0.1: "0.1", math.Copysign(0, -1): "-0.0", math.Inf(1): "null",
	} {
		assert.Equal(t, want, string(appendFloat(nil, f)), "%v", f)
	}
}

func TestStringsLikeSerde(t *testing.T) {
	assert.Equal(t, `"a\"b\\c\n\r\t\b\f\u0001\u001f<>&é\u2028"`, strings.Replace(string(appendString(nil, "a\"b\\c\n\r\t\b\f\x01\x1f<>&é\u2028")), "\u2028", `\u2028`, 1))
	assert.Equal(t, "\"x\ufffdy\"", string(appendString(nil, "x\xffy")))
}

func FuzzParse(f *testing.F) {
	f.Add(fixture.CDR())
	f.Add([]byte(`{"timestamp":"2026-03-06T14:23:01.042Z","call_id":"c","rf_result_code":1,"x":[1,{"y":null}]}`))
	// seeds for the scanner/decoder agreement: escapes, whitespace, nesting
	// with brackets inside strings, invalid UTF-8, duplicates past the
	// linear scan, escaped keys
	f.Add([]byte(" {\n\t\"timestamp\" : \"2026-03-06T14:23:01Z\" ,\r\n \"call_id\":\"a\\\"b\\u00e9\\\\\", \"x\" : { \"s\": \"}]\\\"[{\" , \"a\": [ 1 , -2.5e3, true, null ] } } "))
	f.Add([]byte("{\"timestamp\":\"2026-03-06T14:23:01Z\",\"call_id\":\"\xff\xfe\",\"e\":\"\xc3\"}"))
	f.Add([]byte(`{"timestamp":"2026-03-06T14:23:01Z","call_id":"c","a":"1","b":"2","c":"3","d":"4","e":"5","f":"6","g":"7","h":"8","i":"9","e":"again"}`))
	f.Add([]byte(`{"timestamp":"2026-03-06T14:23:01Z","call_\u0069d":"c","call_id":"d"}`))
	f.Add([]byte(`{"timestamp":"2026-03-06T14:23:01Z","call_id":"c","duration_secs":"1","response_code":1.5}`))
	f.Add([]byte(`[{"timestamp":"2026-03-06T14:23:01Z"}]`))
	f.Add([]byte(" [ {\"a\":\"],[\\\"\"} ,\n[1,[2]], \"x\" ,null,-1.5e-3 ,{} ] "))
	f.Add([]byte(`[]`))
	f.Add([]byte("[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if trimmed := bytes.TrimSpace(b); json.Valid(b) && len(trimmed) > 0 && trimmed[0] == '[' {
			// ArrayElements slices what encoding/json decodes
			var want []json.RawMessage
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			got := ArrayElements(b)
			if len(got) != len(want) {
				t.Fatalf("ArrayElements: %d elements, encoding/json %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("element %d: %q, encoding/json %q", i, got[i], want[i])
				}
			}
			// the bounded scan agrees up to its bound and tells what is beyond
			for _, max := range []int{0, 1, len(want) / 2, len(want) - 1, len(want), len(want) + 1} {
				if max < 0 {
					continue
				}
				first, more := ArrayElementsAtMost(b, max)
				if n := min(max, len(want)); len(first) != n || more != (len(want) > max) {
					t.Fatalf("ArrayElementsAtMost(%d): %d elements, more %v; encoding/json has %d", max, len(first), more, len(want))
				}
				for i := range first {
					if !bytes.Equal(first[i], want[i]) {
						t.Fatalf("ArrayElementsAtMost(%d): element %d: %q, encoding/json %q", max, i, first[i], want[i])
					}
				}
			}
		}
		if json.Valid(b) && len(b) <= MaxRecordSize {
			// the fast scanner and encoding/json's decoder agree on valid JSON
			fast, errFast := ParseValid(b)
			slow, errSlow := parseDecoder(b)
			if fmt.Sprint(errFast) != fmt.Sprint(errSlow) {
				t.Fatalf("scanner error %v, decoder error %v", errFast, errSlow)
			}
			if errFast == nil {
				if fast.Source != string(b) {
					t.Fatalf("Source %q, want the input", fast.Source)
				}
				fast.Source = "" // the decoder keeps no copy of its input
				if !reflect.DeepEqual(fast, slow) {
					t.Fatalf("scanner and decoder differ:\n%+v\n%+v", fast, slow)
				}
			}
		}
		if _, err := Parse(b); err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
		}
	})
}

func TestArrayElementsAtMost(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want []string
		more bool
	}{
		{`[]`, 0, []string{}, false},
		{` [ ] `, 5, []string{}, false},
		{`[1]`, 0, []string{}, true},
		{`[1, 2 ,3]`, 2, []string{`1`, `2`}, true},
		{`[1, 2 ,3]`, 3, []string{`1`, `2`, `3`}, false},
		{`[{"a":"],["}, [1,[2]], "x\"]"]`, 2, []string{`{"a":"],["}`, `[1,[2]]`}, true},
		{`{"a":1}`, 5, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, more := ArrayElementsAtMost([]byte(tt.in), tt.max)
			var strs []string
			if got != nil {
				strs = []string{}
			}
			for _, e := range got {
				strs = append(strs, string(e))
			}
			assert.Equal(t, tt.want, strs)
			assert.Equal(t, tt.more, more)
		})
	}
	// a million tiny elements past the bound are scanned no further
	huge := append(bytes.Repeat([]byte("1,"), 1<<20), '1', ']')
	huge = append([]byte("["), huge...)
	got, more := ArrayElementsAtMost(huge, 10)
	assert.True(t, more)
	assert.Len(t, got, 10)
	assert.LessOrEqual(t, cap(got), 16, "no slice per element beyond the bound")
	assert.Len(t, ArrayElements(huge), 1<<20+1)
}
