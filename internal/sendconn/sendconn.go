// Package sendconn is the client side of the stream-or-datagram exporters
// (homer, siphon_syslog): one connection to the target, redialled with
// backoff, checked before each batch for a peer that went away, and a
// batch writer that knows which records made it out when a write fails.
package sendconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/logexport"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
)

// Transports.
const (
	UDP = "udp"
	TCP = "tcp"
	TLS = "tls"
)

const (
	// FlushSize is how many bytes of records a stream write carries;
	// records written before a failed write are not sent again.
	FlushSize = 64 << 10
	minRedial = 100 * time.Millisecond
	maxRedial = 30 * time.Second
)

// Conn is a connection to one target. It is not safe for concurrent use:
// exporters serialise pushes.
type Conn struct {
	Transport string // UDP, TCP or TLS
	Endpoint  string
	TLS       *tls.Config // for TLS
	Timeout   time.Duration
	Logger    *zap.Logger
	// Dialed is told the outcome of each TCP/TLS dial.
	Dialed func(ok bool)
	// Unreachable is told when a datagram met a closed port (an ICMP port
	// unreachable, reported by the next write): written is true for an
	// earlier datagram that went out and was lost, false for the current
	// one, dropped unsent. UDP has no acknowledgement, so the loss is counted
	// and the send goes on rather than retrying for ever and stalling the
	// pipeline behind a Homer that is not there.
	Unreachable func(written bool)

	conn     net.Conn
	items    []record.Item // SendLogs' batch, reused
	redial   time.Duration
	nextDial time.Time
	buf      []byte
	dgrams   datagrams
}

func (c *Conn) unreachable(written bool) {
	if c.Unreachable != nil {
		c.Unreachable(written)
	}
}

// Stream reports whether records go back to back on a connection.
func (c *Conn) Stream() bool { return c.Transport != UDP }

func (c *Conn) get(ctx context.Context) (net.Conn, error) {
	if c.conn != nil {
		if !c.Stream() || !peerClosed(c.conn) {
			return c.conn, nil
		}
		c.Logger.Warn("target closed the connection; reconnecting", zap.String("endpoint", c.Endpoint))
		c.Close()
	}
	if wait := time.Until(c.nextDial); wait > 0 {
		return nil, fmt.Errorf("%s unreachable, next attempt in %s", c.Endpoint, wait.Round(time.Millisecond))
	}
	var (
		conn net.Conn
		err  error
	)
	switch c.Transport {
	case UDP:
		// connected, so that ICMP port-unreachable surfaces as an error
		conn, err = (&net.Dialer{}).DialContext(ctx, "udp", c.Endpoint)
	case TCP:
		conn, err = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp", c.Endpoint)
	case TLS:
		conn, err = (&tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 30 * time.Second}, Config: c.TLS}).DialContext(ctx, "tcp", c.Endpoint)
	default:
		return nil, fmt.Errorf("unknown transport %q", c.Transport)
	}
	if c.Stream() && c.Dialed != nil {
		c.Dialed(err == nil)
	}
	if err != nil {
		c.redial = min(max(2*c.redial, minRedial), maxRedial)
		c.nextDial = time.Now().Add(c.redial)
		return nil, fmt.Errorf("connect %s %s: %w", c.Transport, c.Endpoint, err)
	}
	c.redial, c.conn = 0, conn
	return conn, nil
}

// Close drops the connection; the next Send dials again.
func (c *Conn) Close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

// Encoder appends record i's wire bytes to dst. It returns false to skip a
// record it could not encode (having counted and logged it).
type Encoder func(dst []byte, i int) ([]byte, bool)

// Send writes records 0..n-1: one datagram each over UDP (many per system
// call where the system has sendmmsg), back to back in FlushSize writes
// over a stream. It returns how many were written and,
// on failure, the index of the first record that may not have been (the
// caller hands those back for retry) with the error; the connection is then
// closed.
func (c *Conn) Send(ctx context.Context, n int, enc Encoder) (sent, from int, err error) {
	conn, err := c.get(ctx)
	if err != nil {
		return 0, 0, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.Timeout)
	}
	_ = conn.SetWriteDeadline(deadline)
	fail := func(err error, from int) (int, int, error) {
		c.Close()
		return sent, from, fmt.Errorf("send to %s: %w", c.Endpoint, err)
	}
	if !c.Stream() {
		var err error
		var from int
		if sent, from, err = c.sendDatagrams(conn, n, enc); err != nil {
			return fail(err, from)
		}
		return sent, n, nil
	}
	c.buf = c.buf[:0]
	written := 0 // records before this index are out (streams)
	pending := 0 // records encoded into buf since the last write
	for i := range n {
		start := len(c.buf)
		var encoded bool
		if c.buf, encoded = enc(c.buf, i); !encoded {
			c.buf = c.buf[:start]
			if pending == 0 {
				written = i + 1
			}
			continue
		}
		pending++
		if len(c.buf) >= FlushSize {
			if _, err := conn.Write(c.buf); err != nil {
				return fail(err, written)
			}
			c.buf = c.buf[:0]
			sent += pending
			pending, written = 0, i+1
		}
	}
	if len(c.buf) > 0 {
		if _, err := conn.Write(c.buf); err != nil {
			return fail(err, written)
		}
		sent += pending
	}
	return sent, n, nil
}

// SendLogs sends every record of ld, encoded by enc (which, like an
// Encoder, returns false for a record it dropped). It returns how many
// went out; on failure the error hands the records not yet written back
// for retry (logexport.Unsent), so a batch that failed half-way is not
// sent twice.
func (c *Conn) SendLogs(ctx context.Context, ld plog.Logs, enc func(dst []byte, it record.Item) ([]byte, bool)) (int, error) {
	c.items = c.items[:0]
	for _, it := range record.All(ld) {
		c.items = append(c.items, it)
	}
	defer clear(c.items) // hold no references to the batch
	sent, from, err := c.Send(ctx, len(c.items), func(dst []byte, i int) ([]byte, bool) { return enc(dst, c.items[i]) })
	if err != nil {
		return sent, logexport.Unsent(err, ld, from)
	}
	return sent, nil
}
