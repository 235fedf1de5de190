// Package stream is sipproxy's TCP and TLS connection layer, between the
// sockets and sipgo (github.com/emiago/sipgo v1.7.2), which bounds none of
// them: a Listener caps the connections it accepts, runs TLS handshakes
// under a deadline and closes connections that carry no SIP message for a
// while. It also hands sipgo the connections the proxy dials itself (so
// they are served and traced like accepted ones, and not capped), and
// passes every message read or written to the HEP capture.
//
// sipgo serves each connection with one goroutine reading it; a connection
// ends when a read fails, and sipgo then drops it from its pool and closes
// it. The limits act only through that path: Conn.Read returns an error
// wrapping net.ErrClosed (which sipgo logs at debug level), so sipgo's
// bookkeeping is the one it runs for a peer that hung up.
package stream

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siphon-otel/siphon-otel/internal/streamserver"
	"github.com/siphon-otel/siphon-otel/proxy/heptrace"
)

// Settings configure a Listener.
type Settings struct {
	Transport string      // "tcp" or "tls": the capture's transport
	TLS       *tls.Config // the server's certificate; nil for TCP
	// MaxConnections bounds the accepted connections open at once; one
	// more is reset at once. Connections the proxy dialled (Inject) do
	// not count.
	MaxConnections int
	// IdleTimeout closes a connection on which no SIP message and no
	// keep-alive arrived for that long, accepted or dialled.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds an accepted TLS connection's handshake.
	HandshakeTimeout time.Duration
	Obs              heptrace.Observer // captures every message; may be nil
	Events           Events
}

// Events feed the proxy's metrics and log. Each may be nil. Refused, Idle
// and HandshakeFailed come just before the close: a peer that sees it
// finds the count final.
type Events struct {
	// Active is told +1 and -1 as connections (accepted or dialled) open
	// and close.
	Active func(delta int)
	// Refused: an accepted connection is reset at once, MaxConnections
	// being open.
	Refused func(peer net.Addr)
	// Idle: a connection is closed after IdleTimeout without a message.
	Idle func(peer net.Addr)
	// HandshakeFailed: an accepted TLS connection failed its handshake or
	// did not finish it within HandshakeTimeout; it is closed.
	HandshakeFailed func(peer net.Addr, err error)
	// AcceptRetried: accepting failed for a reason that passes (no file
	// descriptors left ...); the listener waits and goes on.
	AcceptRetried func(err error)
}

// Listener is the net.Listener sipgo serves (ServeTCP, ServeTLS).
type Listener struct {
	ln    net.Listener
	s     Settings
	slots chan struct{} // one per accepted connection open

	accepted chan net.Conn
	injected chan net.Conn
	failed   chan error // the error that ended accepting
	closed   chan struct{}
	once     sync.Once
}

// Listen serves ln, a plain TCP listener, under s; for TLS, Settings.TLS
// holds the certificate.
func Listen(ln net.Listener, s Settings) *Listener {
	l := &Listener{ln: ln, s: s, slots: make(chan struct{}, s.MaxConnections),
		accepted: make(chan net.Conn), injected: make(chan net.Conn), failed: make(chan error, 1),
		closed: make(chan struct{})}
	go l.acceptLoop()
	return l
}

// Back-off after a temporary accept error, as net/http's: long enough not
// to spin while descriptors are exhausted, short enough to go on at once.
const (
	minRetryDelay = 5 * time.Millisecond
	maxRetryDelay = time.Second
)

func (l *Listener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			// sipgo stops serving the listener at the first error Accept
			// returns: only one that ends the socket may reach it
			if streamserver.Temporary(err) {
				delay = min(max(2*delay, minRetryDelay), maxRetryDelay)
				call(l.s.Events.AcceptRetried, err)
				select {
				case <-time.After(delay):
					continue
				case <-l.closed:
					return
				}
			}
			l.failed <- err
			return
		}
		delay = 0
		select {
		case l.slots <- struct{}{}:
		default:
			call(l.s.Events.Refused, c.RemoteAddr())
			// a reset, not a FIN: the peer's next write fails instead of
			// vanishing into a socket that is gone
			streamserver.Abort(c)
			_ = c.Close()
			continue
		}
		conn := l.wrap(c, func() { <-l.slots })
		if l.s.TLS != nil {
			conn.tls = tls.Server(c, l.s.TLS)
			conn.Conn = conn.tls
		}
		select {
		case l.accepted <- conn:
		case <-l.closed:
			_ = conn.Close()
			return
		}
	}
}

// Accept returns the next accepted or dialled connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accepted:
		return c, nil
	case c := <-l.injected:
		return c, nil
	case err := <-l.failed:
		l.failed <- err // for the next caller too
		return nil, err
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Inject hands sipgo a connection the proxy dialled (TLS handshaken
// already): served like an accepted one, without taking a slot. It reports
// false, having closed c, once the listener is closed.
func (l *Listener) Inject(c net.Conn) bool {
	conn := l.wrap(c, nil)
	select {
	case l.injected <- conn:
		return true
	case <-l.closed:
		_ = conn.Close()
		return false
	}
}

// Close stops accepting; connections open stay with sipgo.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	err := l.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

func (l *Listener) wrap(c net.Conn, release func()) *Conn {
	call(l.s.Events.Active, 1)
	conn := &Conn{Conn: c, l: l, release: release, last: time.Now()}
	// sipgo's parsers take no longer message (sip.NewParser reads this
	// bound): the framer holds no more while waiting for a message's end
	conn.in.max = sip.ParseMaxMessageLength
	return conn
}

// Conn is one connection as sipgo sees it. sipgo reads it from one
// goroutine; writes come from others.
type Conn struct {
	net.Conn // the TCP connection, or TLS over it
	l        *Listener
	tls      *tls.Conn // accepted TLS, until its handshake is done
	release  func()    // gives the slot back; nil for a dialled connection

	// the reading goroutine's own
	in       framer
	last     time.Time // the last message or keep-alive read
	deadline time.Time // the read deadline set

	closed    atomic.Bool
	closeOnce sync.Once
}

// ErrIdle ends a connection on which nothing arrived for IdleTimeout.
var ErrIdle = errors.New("stream: idle connection closed")

// ErrHandshake ends an accepted TLS connection whose handshake failed or
// timed out.
var ErrHandshake = errors.New("stream: TLS handshake failed")

// Read reads for sipgo: first the TLS handshake, under HandshakeTimeout;
// then data, until IdleTimeout passes with no message or keep-alive. Any
// error closes the connection (sipgo's read loop ends at the first) and
// gives its slot back; the limits' errors wrap net.ErrClosed.
func (c *Conn) Read(b []byte) (int, error) {
	if c.tls != nil {
		if err := c.handshake(); err != nil {
			return 0, err
		}
	}
	if d := c.idleDeadline(); !d.Equal(c.deadline) {
		if err := c.Conn.SetReadDeadline(d); err != nil {
			_ = c.Close()
			return 0, err
		}
		c.deadline = d
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		var emit func([]byte)
		if c.l.s.Obs != nil {
			emit = func(m []byte) { c.l.s.Obs.Capture(c.l.s.Transport, c.RemoteAddr(), c.LocalAddr(), m, time.Now()) }
		}
		if c.in.feed(b[:n], emit) {
			c.last = time.Now()
		}
	}
	if err == nil {
		return n, nil
	}
	// only the deadline set above: a dead peer's ETIMEDOUT (TCP
	// keep-alive) is a Timeout() too, but no idle connection
	if errors.Is(err, os.ErrDeadlineExceeded) && !c.closed.Load() {
		call(c.l.s.Events.Idle, c.RemoteAddr())
		err = fmt.Errorf("%w (no SIP message for %s): %w", ErrIdle, c.l.s.IdleTimeout, net.ErrClosed)
	}
	_ = c.Close()
	return n, err
}

// idleDeadline is when the connection is idle for IdleTimeout; none
// when IdleTimeout is 0.
func (c *Conn) idleDeadline() time.Time {
	if c.l.s.IdleTimeout <= 0 {
		return time.Time{}
	}
	return c.last.Add(c.l.s.IdleTimeout)
}

// handshake runs an accepted TLS connection's handshake under
// HandshakeTimeout (tls.Conn would run it inside the first Read, with no
// deadline).
func (c *Conn) handshake() error {
	tc := c.tls
	c.tls = nil
	_ = tc.SetDeadline(time.Now().Add(c.l.s.HandshakeTimeout))
	err := tc.Handshake()
	if err == nil {
		err = tc.SetDeadline(time.Time{})
	}
	if err != nil {
		if f := c.l.s.Events.HandshakeFailed; f != nil && !c.closed.Load() {
			f(c.RemoteAddr(), err)
		}
		_ = c.Close()
		return fmt.Errorf("%w: %w: %w", ErrHandshake, err, net.ErrClosed)
	}
	c.last = time.Now()
	return nil
}

// Write writes one message (sipgo writes a message per call) and captures
// it; a keep-alive answer is not captured.
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err == nil && c.l.s.Obs != nil && len(bytes.TrimLeft(b, "\r\n")) > 0 {
		c.l.s.Obs.Capture(c.l.s.Transport, c.LocalAddr(), c.RemoteAddr(), b[:n], time.Now())
	}
	return n, err
}

// Close closes the connection once, gives its slot back and reports it;
// later calls (sipgo closes what a failed read closed already) return nil.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		err = c.Conn.Close()
		if c.release != nil {
			c.release()
		}
		call(c.l.s.Events.Active, -1)
	})
	return err
}

// call calls an event hook that may be nil.
func call[A any](f func(A), a A) {
	if f != nil {
		f(a)
	}
}
