package stream

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// testMax is sipgo's message bound, as the Listener sets it.
const testMax = 65535

// frames feeds pieces to f and returns the messages and, per piece,
// whether it was alive.
func frames(f *framer, pieces ...string) (msgs []string, alive []bool) {
	for _, p := range pieces {
		alive = append(alive, f.feed([]byte(p), func(m []byte) { msgs = append(msgs, string(m)) }))
	}
	return msgs, alive
}

func sipMessage(body string) string {
	return "MESSAGE sip:a@x SIP/2.0\r\nCall-ID: 1\r\nl: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func TestFramer(t *testing.T) {
	stream := "\r\n\r\n" + sipMessage("hello") + "\r\n" + sipMessage("") + sipMessage("x\r\n\r\ny")
	// fed in every split of two pieces, the same three messages come out
	for cut := 0; cut <= len(stream); cut++ {
		f := framer{max: testMax}
		out, _ := frames(&f, stream[:cut], stream[cut:])
		if assert.Len(t, out, 3, "cut at %d", cut) {
			assert.Equal(t, sipMessage("hello"), out[0])
			assert.Equal(t, sipMessage(""), out[1])
			assert.Equal(t, sipMessage("x\r\n\r\ny"), out[2])
		}
		assert.Empty(t, f.buf, "nothing left over")
	}
}

// TestFramerAlive: what pushes the idle clock. A message completed or a
// keep-alive between messages is alive; bytes of a message in progress are
// not, however many come.
func TestFramerAlive(t *testing.T) {
	msg := sipMessage("hello")
	tests := []struct {
		name   string
		pieces []string
		alive  []bool
	}{
		{"a whole message", []string{msg}, []bool{true}},
		{"a ping, a pong", []string{"\r\n\r\n", "\r\n"}, []bool{true, true}},
		{"a message trickled", []string{msg[:5], msg[5:20], msg[20:40], msg[40:]}, []bool{false, false, false, true}},
		{"a head that never ends", []string{"OPTIONS sip:x SIP/2.0\r\n", "X-A: 1\r\n", "X-B: 2\r\n"}, []bool{false, false, false}},
		{"CRLFs inside a head", []string{"OPTIONS sip:x SIP/2.0\r\n", "\r\n"}, []bool{false, true}},
		{"a body trickled", []string{"MESSAGE sip:x SIP/2.0\r\nl: 4\r\n\r\n", "ab", "\r\n", "\r\n"}, []bool{false, false, true, true}},
		{"a message, then part of the next", []string{msg + msg[:10]}, []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := framer{max: testMax}
			_, alive := frames(&f, tt.pieces...)
			assert.Equal(t, tt.alive, alive)
		})
	}
}

// TestFramerBound: the framer never holds more than a message sipgo could
// take; what runs past that is dropped (sipgo closes the connection).
func TestFramerBound(t *testing.T) {
	tests := []struct {
		name  string
		piece string
	}{
		{"huge Content-Length", "INVITE sip:a@x SIP/2.0\r\nContent-Length: 9223372036854775807\r\n\r\n" + strings.Repeat("b", 4000)},
		{"Content-Length past int64", "INVITE sip:a@x SIP/2.0\r\nl: 99999999999999999999999\r\n\r\n" + strings.Repeat("b", 4000)},
		{"endless head", "X-Header: " + strings.Repeat("a", 4000) + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := framer{max: testMax}
			var out []string
			for range 100 {
				m, _ := frames(&f, tt.piece)
				out = append(out, m...)
				assert.LessOrEqual(t, len(f.buf), testMax)
			}
			assert.Empty(t, out, "no message framed")
		})
	}
}

func TestContentLength(t *testing.T) {
	for head, want := range map[string]int{
		"A\r\nContent-Length: 12":             12,
		"A\r\ncontent-length:12":              12,
		"A\r\nl: 7\r\nX: y":                   7,
		"A\r\nX: y":                           0,
		"A\r\nContent-Length: -3":             0,
		"A\r\nContent-Length: abc":            0,
		"A\r\nContent-Length: 70000":          testMax + 1,
		"A\r\nl: 1" + strings.Repeat("0", 30): testMax + 1,
	} {
		assert.Equal(t, want, contentLength([]byte(head), testMax), "%q", head)
	}
}

// FuzzFramer splits arbitrary bytes into reads: never a panic, frames are
// never longer than what was fed, and memory stays bounded.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("OPTIONS sip:x SIP/2.0\r\nContent-Length: 3\r\n\r\nabc"), uint8(7))
	f.Add([]byte("A\r\nl: 99999999999999999999\r\n\r\n"), uint8(1))
	f.Add([]byte("A\r\nContent-Length: 9223372036854775806\r\n\r\n\r\n\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		fr := framer{max: 1024}
		n := int(step%64) + 1
		total := 0
		for i := 0; i < len(data); i += n {
			fr.feed(data[i:min(i+n, len(data))], func(m []byte) {
				total += len(m)
				if !bytes.Contains(m, []byte("\r\n\r\n")) {
					t.Fatalf("frame without a header end: %q", m)
				}
			})
			if len(fr.buf) > fr.max+n {
				t.Fatalf("buffer grew to %d", len(fr.buf))
			}
		}
		if total > len(data) {
			t.Fatalf("framed %d bytes out of %d", total, len(data))
		}
	})
}
