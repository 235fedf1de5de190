package syslogmsg

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

func siphonLine(t testing.TB) []byte {
	return fixture.SyslogLine()
}

func TestParseSIPhonLine(t *testing.T) {
	line := siphonLine(t)
	m, err := Parse(line)
	require.NoError(t, err)
	assert.True(t, m.RFC5424)
	assert.Equal(t, 134, m.Priority)
	assert.Equal(t, 16, m.Facility())
	assert.Equal(t, 6, m.Severity())
	assert.Equal(t, "2026-03-06T14:23:01.042Z", m.Timestamp)
	assert.Equal(t, "siphon", m.Hostname)
	assert.Equal(t, "cdr", m.AppName)
	assert.Empty(t, m.ProcID)
	assert.Empty(t, m.MsgID)
	assert.Empty(t, m.StructuredData)
	assert.Equal(t, string(fixture.CDR()), string(m.Msg))

	// and the writer reproduces SIPhon's line byte for byte
	assert.Equal(t, string(line), string(Append5424(nil, 134, m.Timestamp, "siphon", "cdr", "", "", m.Msg)))
}

func TestParseShapes(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Message
	}{
		{"5424 with sd and bom", "<14>1 2026-03-06T14:23:01Z host app 42 ID7 [x@1 a=\"q\\\"]\"][y@2] \xef\xbb\xbf{\"k\":1}\n",
			Message{Priority: 14, RFC5424: true, Timestamp: "2026-03-06T14:23:01Z", Hostname: "host", AppName: "app", ProcID: "42", MsgID: "ID7",
				StructuredData: "[x@1 a=\"q\\\"]\"][y@2]", Msg: []byte(`{"k":1}`)}},
		{"5424 without msg", "<134>1 - - - - - -", Message{Priority: 134, RFC5424: true}},
		{"3164 with pid", "<134>Mar  6 14:23:01 sbc-1 siphon[1234]: {\"call_id\":\"c\"}",
			Message{Priority: 134, Timestamp: "Mar  6 14:23:01", Hostname: "sbc-1", AppName: "siphon", ProcID: "1234", Msg: []byte(`{"call_id":"c"}`)}},
		{"3164 bare", `<134>{"call_id":"c"}`, Message{Priority: 134, Msg: []byte(`{"call_id":"c"}`)}},
		{"3164 tag only", "<13>cdr: hello", Message{Priority: 13, AppName: "cdr", Msg: []byte("hello")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.line))
			require.NoError(t, err)
			if tt.want.Msg == nil {
				tt.want.Msg = m.Msg[:0:0]
				if m.Msg == nil {
					tt.want.Msg = nil
				}
			}
			assert.Equal(t, tt.want, m)
		})
	}
}

func TestParseErrors(t *testing.T) {
	for line, want := range map[string]string{
		"":                         "no <PRI>",
		"hello":                    "no <PRI>",
		"<999>1 - - - - - -":       "bad priority",
		"<01>1 - - - - - -":        "bad priority",
		"<1a>x":                    "bad priority",
		"<134>1 2026-03-06 host":   "RFC 5424 header incomplete at HOSTNAME",
		"<134>1 - - - - - [open":   "unterminated STRUCTURED-DATA",
		"<134>1 - - - - - x":       "STRUCTURED-DATA is neither",
		"<134>1 - - - - - [a]json": "no space after STRUCTURED-DATA",
	} {
		_, err := Parse([]byte(line))
		require.Error(t, err, line)
		assert.Contains(t, err.Error(), want, line)
		var pe *ParseError
		assert.True(t, errors.As(err, &pe))
	}
}

func TestAppend3164(t *testing.T) {
	ts := time.Date(2026, 3, 6, 14, 23, 1, 0, time.UTC)
	assert.Equal(t, `<134>Mar  6 14:23:01 sbc-1 cdr: {"a":1}`, string(Append3164(nil, 134, ts, "sbc-1", "cdr", []byte(`{"a":1}`))))
	m, err := Parse(Append3164(nil, 134, ts, "sbc-1", "cdr", []byte(`{"a":1}`)))
	require.NoError(t, err)
	assert.Equal(t, "sbc-1", m.Hostname)
	assert.Equal(t, `{"a":1}`, string(m.Msg))
}

func TestReaderFraming(t *testing.T) {
	line := siphonLine(t)
	var stream []byte
	stream = AppendOctetCounted(stream, line)
	stream = append(stream, line...)
	stream = append(stream, '\r', '\n')
	stream = AppendOctetCounted(stream, []byte("<13>1 - - - - - - with\nnewline inside"))
	stream = append(stream, "\n<14>last line without newline"...)
	for name, r := range map[string]io.Reader{
		"whole": bytes.NewReader(stream), "byte by byte": iotest.OneByteReader(bytes.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			fr := NewReader(r, 4096)
			var got []string
			for {
				b, err := fr.Next()
				if err != nil {
					assert.ErrorIs(t, err, io.EOF)
					break
				}
				got = append(got, string(b))
			}
			assert.Equal(t, []string{string(line), string(line), "<13>1 - - - - - - with\nnewline inside", "<14>last line without newline"}, got)
		})
	}
}

func TestReaderErrors(t *testing.T) {
	for stream, want := range map[string]error{
		"99999 x":                       ErrFrameTooLarge,
		"12x <1>a":                      ErrBadFrame,
		"GET / HTTP/1.1\r\n":            ErrBadFrame,
		"20 <1>short":                   io.ErrUnexpectedEOF,
		"<1>" + strings.Repeat("a", 99): ErrFrameTooLarge,
	} {
		_, err := NewReader(strings.NewReader(stream), 64).Next()
		assert.ErrorIs(t, err, want, stream)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(siphonLine(f))
	f.Add([]byte("<134>Mar  6 14:23:01 sbc-1 siphon[1]: {}"))
	f.Add([]byte("<14>1 - h a p m [x a=\"]\\\"\"] msg"))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := Parse(line)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if m.Priority < 0 || m.Priority > 191 {
			t.Fatalf("priority %d", m.Priority)
		}
		if m.RFC5424 && m.StructuredData == "" && !bytes.Contains(line, []byte{0xef, 0xbb, 0xbf}) {
			out := Append5424(nil, m.Priority, m.Timestamp, m.Hostname, m.AppName, m.ProcID, m.MsgID, m.Msg)
			m2, err := Parse(out)
			if err != nil || m2.Timestamp != m.Timestamp || m2.Hostname != m.Hostname || !bytes.Equal(m2.Msg, bytes.TrimRight(m.Msg, "\r\n")) {
				t.Fatalf("re-format of %q gave %q (%v)", line, out, err)
			}
		}
	})
}

func FuzzReader(f *testing.F) {
	f.Add([]byte("5 <1>ab<2>cd\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := NewReader(bytes.NewReader(stream), 128)
		for i := 0; i <= len(stream); i++ {
			b, err := r.Next()
			if err != nil {
				return
			}
			if len(b) > 129 {
				t.Fatalf("frame of %d bytes", len(b))
			}
		}
		t.Fatal("more frames than bytes")
	})
}
