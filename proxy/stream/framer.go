package stream

import (
	"bytes"
	"errors"
	"strconv"
)

// framer splits a SIP byte stream into messages (RFC 3261 18.3:
// Content-Length locates the end of each message). It runs beside sipgo's
// own parser, which has no hook: it tells the idle clock when a message or
// a keep-alive arrived, and hands whole messages to the capture.
type framer struct {
	buf []byte // the start of a message not yet complete
	max int    // bytes held at most while waiting for a message's end
}

// feed takes the next bytes read and calls emit for every message they
// complete (a view, valid during the call). alive tells whether they
// completed a message or carried a keep-alive: CRLFs between messages
// (RFC 5626 3.5.1), which sipgo answers (a double CRLF ping) or ignores.
// Bytes that only extend a message in progress are not alive: a peer that
// trickles a message never finishes it.
func (f *framer) feed(b []byte, emit func([]byte)) (alive bool) {
	// with nothing held, frame the read itself: a read usually carries
	// whole messages, which then need no copy
	data := b
	if len(f.buf) > 0 {
		f.buf = append(f.buf, b...)
		data = f.buf
	}
	for {
		trimmed := bytes.TrimLeft(data, "\r\n")
		if len(trimmed) < len(data) {
			alive = true
		}
		data = trimmed
		end := bytes.Index(data, []byte("\r\n\r\n"))
		if end < 0 {
			break
		}
		total := end + 4 + contentLength(data[:end], f.max)
		if total > f.max {
			// sipgo refuses it and closes the connection
			f.buf = nil
			return alive
		}
		if len(data) < total {
			break
		}
		if emit != nil {
			emit(data[:total])
		}
		alive = true
		data = data[total:]
	}
	switch {
	case len(data) > f.max:
		// longer than any message sipgo takes: it closes the connection
		f.buf = nil
	case len(data) == 0 && cap(f.buf) > 4096:
		// an idle connection does not keep a large message's buffer
		f.buf = nil
	default:
		// data may be a view of f.buf itself: copy moves it to the front
		f.buf = append(f.buf[:0], data...)
	}
	return alive
}

// contentLength reads a message's Content-Length (or its compact form l)
// from its head; 0 when absent or unreadable. Values past limit read as
// limit+1: such a message is never framed (feed drops it), and end+4+n
// cannot overflow.
func contentLength(head []byte, limit int) int {
	for len(head) > 0 {
		line := head
		if i := bytes.Index(head, []byte("\r\n")); i >= 0 {
			line, head = head[:i], head[i+2:]
		} else {
			head = nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		if !bytes.EqualFold(name, []byte("content-length")) && !bytes.EqualFold(name, []byte("l")) {
			continue
		}
		n, err := strconv.Atoi(string(bytes.TrimSpace(value)))
		switch {
		case err == nil && n >= 0:
			return min(n, limit+1)
		case errors.Is(err, strconv.ErrRange):
			return limit + 1
		}
	}
	return 0
}
