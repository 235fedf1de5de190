package heptrace

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFramer(t *testing.T) {
	msg := func(body string) string {
		return "MESSAGE sip:a@x SIP/2.0\r\nCall-ID: 1\r\nl: " + itoa(len(body)) + "\r\n\r\n" + body
	}
	stream := "\r\n\r\n" + msg("hello") + "\r\n" + msg("") + msg("x\r\n\r\ny")
	// fed in every split of two pieces, the same three messages come out
	for cut := 0; cut <= len(stream); cut++ {
		var f framer
		out := f.feed([]byte(stream[:cut]))
		out = append(out, f.feed([]byte(stream[cut:]))...)
		if assert.Len(t, out, 3, "cut at %d", cut) {
			assert.Equal(t, msg("hello"), string(out[0]))
			assert.Equal(t, msg(""), string(out[1]))
			assert.Equal(t, msg("x\r\n\r\ny"), string(out[2]))
		}
	}
}

func TestFramerHugeContentLength(t *testing.T) {
	var f framer
	out := f.feed([]byte("INVITE sip:a@x SIP/2.0\r\nContent-Length: 9223372036854775807\r\n\r\nbody"))
	assert.Empty(t, out)
	assert.Empty(t, f.feed([]byte("more")))
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// FuzzFramer splits arbitrary bytes into reads: never a panic, frames are
// never longer than what was fed, and memory stays bounded.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("OPTIONS sip:x SIP/2.0\r\nContent-Length: 3\r\n\r\nabc"), uint8(7))
	f.Add([]byte("A\r\nl: 99999999999999999999\r\n\r\n"), uint8(1))
	f.Add([]byte("A\r\nContent-Length: 9223372036854775806\r\n\r\n\r\n\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		var fr framer
		n := int(step%64) + 1
		total := 0
		for i := 0; i < len(data); i += n {
			for _, m := range fr.feed(data[i:min(i+n, len(data))]) {
				total += len(m)
				if !bytes.Contains(m, []byte("\r\n\r\n")) {
					t.Fatalf("frame without a header end: %q", m)
				}
			}
			if len(fr.buf) > maxFrame+n {
				t.Fatalf("buffer grew to %d", len(fr.buf))
			}
		}
		if total > len(data) {
			t.Fatalf("framed %d bytes out of %d", total, len(data))
		}
	})
}
