// Package syslogmsg reads and writes syslog messages: RFC 5424 and RFC 3164
// lines, and their framing on a TCP stream (RFC 6587 octet counting, or one
// message per line).
package syslogmsg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Message is one parsed syslog message. Fields that are "-" (NILVALUE) in
// RFC 5424 are empty.
type Message struct {
	Priority       int // facility*8 + severity
	RFC5424        bool
	Timestamp      string
	Hostname       string
	AppName        string
	ProcID         string
	MsgID          string
	StructuredData string
	Msg            []byte // the MSG part, BOM removed
}

// Facility and Severity split the priority.
func (m *Message) Facility() int { return m.Priority / 8 }

// Severity is the priority's severity.
func (m *Message) Severity() int { return m.Priority % 8 }

// ParseError says what is wrong with a line.
type ParseError struct{ Reason string }

func (e *ParseError) Error() string { return "syslog: " + e.Reason }

var bom = []byte{0xef, 0xbb, 0xbf}

// Parse reads one message (a datagram, or a frame from a stream). A
// trailing newline is ignored.
func Parse(line []byte) (Message, error) {
	line = bytes.TrimRight(line, "\r\n")
	var m Message
	if len(line) < 3 || line[0] != '<' {
		return m, &ParseError{"no <PRI> at the start"}
	}
	end := bytes.IndexByte(line[:min(len(line), 5)], '>')
	if end < 2 {
		return m, &ParseError{"malformed <PRI>"}
	}
	pri, err := strconv.Atoi(string(line[1:end]))
	if err != nil || pri < 0 || pri > 191 || (end > 2 && line[1] == '0') {
		return m, &ParseError{fmt.Sprintf("bad priority %q", line[1:end])}
	}
	m.Priority = pri
	rest := line[end+1:]
	if len(rest) >= 2 && rest[0] >= '1' && rest[0] <= '9' && rest[1] == ' ' {
		m.RFC5424 = true
		return m, parse5424(&m, rest[2:])
	}
	parse3164(&m, rest)
	return m, nil
}

func parse5424(m *Message, b []byte) error {
	fields := []*string{&m.Timestamp, &m.Hostname, &m.AppName, &m.ProcID, &m.MsgID}
	names := []string{"TIMESTAMP", "HOSTNAME", "APP-NAME", "PROCID", "MSGID"}
	for i, f := range fields {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			return &ParseError{"RFC 5424 header incomplete at " + names[i]}
		}
		if v := string(b[:sp]); v != "-" {
			*f = v
		}
		b = b[sp+1:]
	}
	if len(b) == 0 {
		return &ParseError{"RFC 5424 header incomplete at STRUCTURED-DATA"}
	}
	if b[0] == '-' {
		b = b[1:]
	} else {
		n, err := sdLen(b)
		if err != nil {
			return err
		}
		m.StructuredData = string(b[:n])
		b = b[n:]
	}
	if len(b) > 0 {
		if b[0] != ' ' {
			return &ParseError{"no space after STRUCTURED-DATA"}
		}
		m.Msg = bytes.TrimPrefix(b[1:], bom)
	}
	return nil
}

// sdLen returns the length of the SD-ELEMENTs at the start of b.
func sdLen(b []byte) (int, error) {
	i := 0
	for i < len(b) && b[i] == '[' {
		inQuote := false
		for i++; ; i++ {
			if i >= len(b) {
				return 0, &ParseError{"unterminated STRUCTURED-DATA"}
			}
			c := b[i]
			if inQuote && c == '\\' {
				i++
				continue
			}
			if c == '"' {
				inQuote = !inQuote
			} else if c == ']' && !inQuote {
				i++
				break
			}
		}
	}
	if i == 0 {
		return 0, &ParseError{"STRUCTURED-DATA is neither - nor [...]"}
	}
	return i, nil
}

// parse3164 reads "Mmm dd hh:mm:ss HOST TAG[PID]: MSG" as leniently as
// syslog daemons do: when the header is not there, the whole rest is MSG.
func parse3164(m *Message, b []byte) {
	const stampLen = len("Jan _2 15:04:05")
	if len(b) > stampLen && b[stampLen] == ' ' {
		if _, err := time.Parse(time.Stamp, string(b[:stampLen])); err == nil {
			m.Timestamp = string(b[:stampLen])
			b = b[stampLen+1:]
			if sp := bytes.IndexByte(b, ' '); sp > 0 {
				m.Hostname = string(b[:sp])
				b = b[sp+1:]
			}
		}
	}
	// TAG is up to 32 alphanumerics, optionally [PID], then ": "
	if colon := bytes.Index(b, []byte(": ")); colon > 0 && colon <= 48 && !bytes.ContainsAny(b[:colon], " {") {
		tag := b[:colon]
		if open := bytes.IndexByte(tag, '['); open > 0 && tag[len(tag)-1] == ']' {
			m.ProcID = string(tag[open+1 : len(tag)-1])
			tag = tag[:open]
		}
		m.AppName = string(tag)
		b = b[colon+2:]
	}
	m.Msg = b
}

// Append5424 appends an RFC 5424 line: empty fields are written as "-",
// there is no structured data. SIPhon's CDR line is
// Append5424(dst, 134, ts, "siphon", "cdr", "", "", json).
func Append5424(dst []byte, pri int, timestamp, hostname, app, procID, msgID string, msg []byte) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	dst = append(dst, ">1 "...)
	for _, f := range []string{timestamp, hostname, app, procID, msgID} {
		if f == "" {
			f = "-"
		}
		dst = append(dst, f...)
		dst = append(dst, ' ')
	}
	dst = append(dst, '-')
	if len(msg) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, msg...)
	}
	return dst
}

// Append3164 appends an RFC 3164 line "<PRI>Mmm dd hh:mm:ss HOST TAG: MSG".
func Append3164(dst []byte, pri int, t time.Time, hostname, tag string, msg []byte) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	dst = append(dst, '>')
	dst = t.AppendFormat(dst, time.Stamp)
	dst = append(dst, ' ')
	dst = append(dst, hostname...)
	dst = append(dst, ' ')
	dst = append(dst, tag...)
	dst = append(dst, ": "...)
	return append(dst, msg...)
}

// AppendOctetCounted frames msg for a stream as "LEN SP MSG" (RFC 6587 3.4.1).
func AppendOctetCounted(dst, msg []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}

// Framing errors.
var (
	ErrFrameTooLarge = errors.New("syslog: frame larger than the maximum")
	ErrBadFrame      = errors.New("syslog: stream is neither octet-counted nor newline-framed")
)

// Reader splits a TCP stream into messages. Each frame is either
// octet-counted (starts with a digit) or ends at a newline (starts with
// '<'); senders may mix them. Memory is bounded by max.
type Reader struct {
	br  *bufio.Reader
	max int
	buf []byte
}

// NewReader reads frames of at most max bytes from r.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Next returns the next message, valid until the next call. A clean end of
// stream is io.EOF.
func (r *Reader) Next() ([]byte, error) {
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			return nil, err
		}
		switch {
		case c == '\n' || c == '\r' || c == ' ':
			continue // stray separators between frames
		case c >= '1' && c <= '9':
			n := int(c - '0')
			for {
				d, err := r.br.ReadByte()
				if err != nil {
					return nil, unexpected(err)
				}
				if d == ' ' {
					break
				}
				if d < '0' || d > '9' {
					return nil, ErrBadFrame
				}
				if n = n*10 + int(d-'0'); n > r.max {
					return nil, ErrFrameTooLarge
				}
			}
			if n > r.max {
				return nil, ErrFrameTooLarge
			}
			if cap(r.buf) < n {
				r.buf = make([]byte, n)
			}
			r.buf = r.buf[:n]
			if _, err := io.ReadFull(r.br, r.buf); err != nil {
				return nil, unexpected(err)
			}
			return r.buf, nil
		case c == '<':
			r.buf = append(r.buf[:0], c)
			for {
				chunk, err := r.br.ReadSlice('\n')
				r.buf = append(r.buf, chunk...)
				if len(r.buf) > r.max+1 {
					return nil, ErrFrameTooLarge
				}
				if err == nil {
					return bytes.TrimRight(r.buf, "\r\n"), nil
				}
				if !errors.Is(err, bufio.ErrBufferFull) {
					if errors.Is(err, io.EOF) && len(r.buf) > 1 {
						// a last line without newline is still a message
						return r.buf, nil
					}
					return nil, unexpected(err)
				}
			}
		default:
			return nil, ErrBadFrame
		}
	}
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
