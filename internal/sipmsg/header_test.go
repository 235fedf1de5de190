package sipmsg

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

func TestHeader(t *testing.T) {
	msg := "INVITE sip:b@127.0.0.1 SIP/2.0\r\n" +
		"i: compact-id\r\n" +
		"X-CID:   first  \r\n" +
		"x-cid: folded\r\n" +
		" over\r\n" +
		"\tthree lines\r\n" +
		"X-CIDs: other\r\n" +
		"X-CID : spaced name\r\n" +
		"X-CID:a, b\r\n" +
		"Session-ID: ab;remote=cd\r\n" +
		"\r\n" +
		"X-CID: in the body\r\n"
	tests := []struct {
		name string
		want []string
	}{
		{"X-CID", []string{"first", "folded over three lines", "spaced name", "a, b"}},
		{"Call-ID", []string{"compact-id"}},
		{"i", []string{"compact-id"}},
		{"I", []string{"compact-id"}},
		{"session-id", []string{"ab;remote=cd"}},
		{"Contact", nil},
		{"m", nil},
		{"X-CID:", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, slices.Collect(Header(msg, tt.name)))
		})
	}
	// stopping early
	for v := range Header(msg, "X-CID") {
		assert.Equal(t, "first", v)
		break
	}
	// LF-only line ends, a fixture message
	assert.Equal(t, []string{"v2"}, slices.Collect(Header("OPTIONS sip:x SIP/2.0\nX-A: v2\n\n", "x-a")))
	assert.Equal(t, []string{"a84b4c76e66710@pc33.atlanta.example.com"}, slices.Collect(Header(string(fixture.Invite()), "Call-ID")))
}

func TestHeaderName(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"Call-ID", "i"}, {"CONTACT", "m"}, {"Via", "V"}, {"session-expires", "x"}, {"Content-Length", "l"},
	} {
		assert.Equal(t, HeaderName(tc.a), HeaderName(tc.b), tc.a)
	}
	assert.NotEqual(t, HeaderName("X-CID"), HeaderName("x"))
	assert.Equal(t, Name{long: "q"}, HeaderName("q"), "no compact form")
	// the summary's classifier agrees with the compact forms
	for c, long := range compactForms {
		assert.Equal(t, header(long), header(string(c)), long)
	}
}

func TestParam(t *testing.T) {
	tests := []struct {
		list, name, want string
		ok               bool
	}{
		{"icid-value=1234bc9876e;icid-generated-at=192.0.6.8", "icid-value", "1234bc9876e", true},
		{"orig-ioi=home1.net; ICID-Value = \"a;b=c\" ;x", "icid-value", "a;b=c", true},
		{"a=1;lr;b=2", "lr", "", true},
		{"a=1;b=2, c=3", "c", "", false},
		{`a="x\";c=1";c=2`, "c", "2", true},
		{"", "a", "", false},
		{"a=1;", "b", "", false},
		{"remote=00000000000000000000000000000000", "remote", "00000000000000000000000000000000", true},
	}
	for _, tt := range tests {
		got, ok := Param(tt.list, tt.name)
		assert.Equal(t, tt.want, got, "%q %q", tt.list, tt.name)
		assert.Equal(t, tt.ok, ok, "%q %q", tt.list, tt.name)
	}
}

// FuzzHeader: any input and name, no panic; a value is trimmed, on no more
// than its lines, made of pieces of the input; no more values than header
// lines; a compact name finds what its long form does.
func FuzzHeader(f *testing.F) {
	f.Add(string(fixture.Invite()), "Call-ID")
	f.Add("INVITE sip:x SIP/2.0\r\nX-CID: a\r\n b\r\ni: c\r\n\r\nX-CID: body", "x-cid")
	f.Add("SIP/2.0 200 OK\nSession-ID: ab;remote=\"cd;e\"\n", "Session-ID")
	f.Fuzz(func(t *testing.T, msg, name string) {
		headerLines := 0
		for i, line := range strings.Split(strings.ReplaceAll(msg, "\r\n", "\n"), "\n") {
			if i > 0 && line == "" {
				break
			}
			headerLines++
		}
		n := 0
		for v := range Header(msg, name) {
			n++
			if v != strings.TrimSpace(v) {
				t.Fatalf("%q not trimmed", v)
			}
			if strings.Contains(v, "\n") { // a bare CR is no line end, here as in Parse
				t.Fatalf("%q spans lines", v)
			}
			for _, piece := range strings.Split(v, " ") {
				if !strings.Contains(msg, piece) {
					t.Fatalf("%q is no piece of the input", piece)
				}
			}
			if p, ok := Param(v, name); ok && !strings.Contains(msg, p) {
				t.Fatalf("param %q is no piece of the input", p)
			}
		}
		if n > headerLines {
			t.Fatalf("%d values from %d header lines", n, headerLines)
		}
		if hn := HeaderName(name); hn.compact != 0 {
			long := slices.Collect(hn.Values(msg))
			if got := slices.Collect(HeaderName(string(hn.compact)).Values(msg)); !slices.Equal(got, long) {
				t.Fatalf("compact %q found %q, %q found %q", hn.compact, got, name, long)
			}
		}
	})
}
