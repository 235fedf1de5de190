package jsonvalid

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

var cases = []struct {
	in    string
	valid bool
}{
	{``, false},
	{` `, false},
	{`null`, true},
	{` true `, true},
	{"\tfalse\r\n", true},
	{`nul`, false},
	{`truex`, false},
	{`0`, true},
	{`-0`, true},
	{`-`, false},
	{`01`, false},
	{`1.`, false},
	{`1.5`, true},
	{`.5`, false},
	{`1e`, false},
	{`1e+`, false},
	{`1E-07`, true},
	{`-12.34e+56`, true},
	{`+1`, false},
	{`""`, true},
	{`"a\"b\\c\/d\b\f\n\r\t"`, true},
	{`"\u00e9\uD83D\uDE00"`, true},
	{`"\u00g9"`, false},
	{`"\u00e"`, false},
	{`"\x"`, false},
	{"\"tab\there\"", false},
	{"\"\x7f\xff\xfe\"", true}, // json.Valid does not check UTF-8
	{`"open`, false},
	{`"\`, false},
	{`[]`, true},
	{`[ ]`, true},
	{`[1,]`, false},
	{`[,1]`, false},
	{`[1 2]`, false},
	{`[1,[2,[3]],{"a":[]}]`, true},
	{`[1}`, false},
	{`{}`, true},
	{`{"a":1,"b":{"c":null}}`, true},
	{`{"a" : 1 , "b" : [ true ] }`, true},
	{`{"a":1,}`, false},
	{`{"a"}`, false},
	{`{"a":}`, false},
	{`{a:1}`, false},
	{`{"a":1]`, false},
	{`{"a":1} x`, false},
	{`{"a":1}{}`, false},
	{`[1] [2]`, false},
	{`{`, false},
	{`[`, false},
}

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range cases {
		require.Equal(t, c.valid, json.Valid([]byte(c.in)), "the table is wrong for %q", c.in)
		assert.Equal(t, c.valid, Valid([]byte(c.in)), "%q", c.in)
	}
	fixture := fixture.CDR()
	assert.True(t, Valid(fixture))
	for n := range len(fixture) { // every truncation of SIPhon's record is refused
		require.False(t, Valid(fixture[:n]), "%d bytes", n)
	}
}

// TestDepthLimit: encoding/json refuses nesting deeper than 10,000.
func TestDepthLimit(t *testing.T) {
	for _, depth := range []int{9999, 10000, 10001, 20000} {
		for _, open := range []string{"[", `{"k":[`} {
			closeS := "]"
			if open != "[" {
				closeS = "]}"
			}
			n := depth
			if open != "[" {
				n = depth / 2 // two levels each
			}
			in := []byte(strings.Repeat(open, n) + strings.Repeat(closeS, n))
			assert.Equal(t, json.Valid(in), Valid(in), "depth %d of %s", depth, open)
		}
	}
	in := []byte(strings.Repeat("[", 10001) + strings.Repeat("]", 10001))
	assert.False(t, Valid(in), "10,001 levels")
}

func FuzzValid(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if want := json.Valid(b); Valid(b) != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", b, !want, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	fixture := fixture.CDR()
	for _, impl := range []struct {
		name  string
		valid func([]byte) bool
	}{{"encoding-json", json.Valid}, {"jsonvalid", Valid}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(fixture)))
			for b.Loop() {
				if !impl.valid(fixture) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
