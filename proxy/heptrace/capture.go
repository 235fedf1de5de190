package heptrace

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"time"
)

// Observer is told about every SIP message crossing a wrapped socket.
type Observer interface {
	Capture(transport string, src, dst net.Addr, payload []byte, at time.Time)
}

// PacketConn wraps a UDP socket: every datagram read or written is one SIP
// message (or a keep-alive, which is skipped).
type PacketConn struct {
	net.PacketConn
	Obs Observer
}

// ReadFrom reads a datagram and captures it.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if n > 4 && c.Obs != nil {
		c.Obs.Capture("udp", addr, c.LocalAddr(), b[:n], time.Now())
	}
	return n, addr, err
}

// WriteTo writes a datagram and captures it.
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(b, addr)
	if err == nil && n > 4 && c.Obs != nil {
		c.Obs.Capture("udp", c.LocalAddr(), addr, b[:n], time.Now())
	}
	return n, err
}

// Conn wraps a TCP or TLS connection. sipgo writes one message per Write;
// reads arrive in arbitrary pieces and are framed by Content-Length.
type Conn struct {
	net.Conn
	Obs       Observer
	Transport string // tcp or tls
	OnClose   func()
	mu        sync.Mutex
	in        framer
	closeOnce sync.Once
}

// Read reads and captures every whole message the bytes complete.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.Obs != nil {
		c.mu.Lock()
		msgs := c.in.feed(b[:n])
		c.mu.Unlock()
		now := time.Now()
		for _, m := range msgs {
			c.Obs.Capture(c.Transport, c.RemoteAddr(), c.LocalAddr(), m, now)
		}
	}
	return n, err
}

// Write writes one message and captures it.
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err == nil && c.Obs != nil && len(bytes.TrimSpace(b)) > 0 {
		c.Obs.Capture(c.Transport, c.LocalAddr(), c.RemoteAddr(), b[:n], time.Now())
	}
	return n, err
}

// Close closes once and reports it.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		if c.OnClose != nil {
			c.OnClose()
		}
	})
	return err
}

// maxFrame bounds the bytes held while waiting for a message's end.
const maxFrame = 256 << 10

// framer splits a SIP byte stream into messages (RFC 3261 18.3:
// Content-Length locates the end of each message).
type framer struct{ buf []byte }

func (f *framer) feed(b []byte) [][]byte {
	f.buf = append(f.buf, b...)
	var out [][]byte
	for {
		// CRLF keep-alives between messages (RFC 5626)
		f.buf = bytes.TrimLeft(f.buf, "\r\n")
		end := bytes.Index(f.buf, []byte("\r\n\r\n"))
		if end < 0 {
			break
		}
		total := end + 4 + contentLength(f.buf[:end])
		if len(f.buf) < total {
			break
		}
		out = append(out, bytes.Clone(f.buf[:total]))
		f.buf = f.buf[total:]
	}
	if len(f.buf) > maxFrame {
		f.buf = nil // not SIP we can frame; sipgo will drop the connection
	}
	return out
}

func contentLength(headers []byte) int {
	for _, line := range bytes.Split(headers, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		if bytes.EqualFold(name, []byte("content-length")) || bytes.EqualFold(name, []byte("l")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(value)))
			if err == nil && n >= 0 {
				// past maxFrame the message is never framed; capping keeps
				// end+4+n from overflowing
				return min(n, maxFrame+1)
			}
		}
	}
	return 0
}

// Listener wraps accepted connections in Conn.
type Listener struct {
	net.Listener
	Obs       Observer
	Transport string
	// Opened is called for each accepted connection; it returns the close
	// hook (for connection gauges).
	Opened func() func()
	// injected are outbound connections the proxy dialled itself, handed to
	// sipgo as if accepted (sipgo pools connections by remote address and
	// reuses them for requests, so they are captured like accepted ones).
	injected chan net.Conn
	closed   chan struct{}
	once     sync.Once
	accepted chan acceptResult
	start    sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

// NewListener wraps ln.
func NewListener(ln net.Listener, transport string, obs Observer, opened func() func()) *Listener {
	return &Listener{Listener: ln, Obs: obs, Transport: transport, Opened: opened,
		injected: make(chan net.Conn), closed: make(chan struct{}), accepted: make(chan acceptResult)}
}

// Accept returns the next accepted or injected connection, wrapped.
func (l *Listener) Accept() (net.Conn, error) {
	l.start.Do(func() {
		go func() {
			for {
				c, err := l.Listener.Accept()
				select {
				case l.accepted <- acceptResult{c, err}:
				case <-l.closed:
					if c != nil {
						_ = c.Close()
					}
					return
				}
				if err != nil {
					return
				}
			}
		}()
	})
	select {
	case r := <-l.accepted:
		if r.err != nil {
			return nil, r.err
		}
		return l.Wrap(r.c), nil
	case c := <-l.injected:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Wrap wraps one connection for capture and counting.
func (l *Listener) Wrap(c net.Conn) net.Conn {
	w := &Conn{Conn: c, Obs: l.Obs, Transport: l.Transport}
	if l.Opened != nil {
		w.OnClose = l.Opened()
	}
	return w
}

// Inject hands an outbound connection (already wrapped) to the server.
func (l *Listener) Inject(c net.Conn) bool {
	select {
	case l.injected <- c:
		return true
	case <-l.closed:
		return false
	}
}

// Close stops accepting.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}
