// Package sendconn is the client side of the stream-or-datagram senders
// (the homer and siphon_syslog exporters, sipproxy's HEP tracer): one
// connection to the target, redialled with backoff, checked before each
// batch for a peer that went away, a batch writer that knows which records
// made it out when a write fails, and, over UDP, the accounting of which
// datagrams a closed port or unreachable host lost (see ledger.go).
package sendconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
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

// Conn is a connection to one target. Sends are serialised by an internal
// lock, which the UDP accounting timer shares; the callbacks are called
// with it held (they only count and must not call back into Conn).
type Conn struct {
	Transport string // UDP, TCP or TLS
	Endpoint  string
	TLS       *tls.Config // for TLS
	Timeout   time.Duration
	// Logger gets the warnings: a stream target that closed the
	// connection, a UDP target that is unreachable. Give it a rate limit
	// (logexport.SampledLogger): a target that is down is reported on every
	// batch.
	Logger *zap.Logger
	// Dialed is told the outcome of each TCP/TLS dial.
	Dialed func(ok bool)
	// Sent is told how many records went out: over a stream when written,
	// over UDP when confirmed, that is when a check at least a grace after
	// the write found no report of loss (ledger.go).
	Sent func(n int)
	// Lost is told of datagrams an ICMP error reported lost (UDP): every
	// datagram written and not yet confirmed when the report came, by
	// reason (PortUnreachable, HostUnreachable). UDP has no
	// acknowledgement: the loss is counted and sending goes on, rather than
	// retrying for ever and stalling the pipeline behind a target that is
	// not there.
	Lost func(reason string, n int)

	mu       sync.Mutex
	conn     net.Conn
	items    []record.Item // SendLogs' batch, reused
	redial   time.Duration
	nextDial time.Time
	buf      []byte
	dgrams   datagrams
	ledger   ledger
}

func (c *Conn) sent(n int) {
	if c.Sent != nil && n > 0 {
		c.Sent(n)
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
		c.drop()
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
	if !c.Stream() {
		watchErrors(conn)
	}
	return conn, nil
}

// Close settles the UDP accounting (settleAll: waits, at most the
// grace and while ctx allows, for reports about the last datagrams) and
// drops the connection; a later Send dials again.
func (c *Conn) Close(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && !c.Stream() {
		c.settleAll(ctx)
	}
	c.drop()
}

// drop closes the connection without settling anything.
func (c *Conn) drop() {
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
// over a stream; what went out is reported to Sent (and, over UDP, Lost).
// On failure it returns the index of the first record that may not have
// been written (the caller hands those back for retry) with the error; a
// stream connection is then closed. A UDP socket is kept: it holds no
// state a redial would reset, and it still receives the reports about the
// datagrams written before.
func (c *Conn) Send(ctx context.Context, n int, enc Encoder) (from int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.send(ctx, n, enc)
}

func (c *Conn) send(ctx context.Context, n int, enc Encoder) (from int, err error) {
	conn, err := c.get(ctx)
	if err != nil {
		return 0, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.Timeout)
	}
	_ = conn.SetWriteDeadline(deadline)
	if !c.Stream() {
		if from, err := c.sendDatagrams(conn, n, enc); err != nil {
			return from, fmt.Errorf("send to %s: %w", c.Endpoint, err)
		}
		return n, nil
	}
	fail := func(err error, from int) (int, error) {
		c.drop()
		return from, fmt.Errorf("send to %s: %w", c.Endpoint, err)
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
			c.sent(pending)
			pending, written = 0, i+1
		}
	}
	if len(c.buf) > 0 {
		if _, err := conn.Write(c.buf); err != nil {
			return fail(err, written)
		}
		c.sent(pending)
	}
	return n, nil
}

// SendLogs sends every record of ld, encoded by enc (which, like an
// Encoder, returns false for a record it dropped). On failure the error
// hands the records not yet written back for retry (logexport.Unsent), so
// a batch that failed half-way is not sent twice.
func (c *Conn) SendLogs(ctx context.Context, ld plog.Logs, enc func(dst []byte, it record.Item) ([]byte, bool)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items = c.items[:0]
	for _, it := range record.All(ld) {
		c.items = append(c.items, it)
	}
	defer clear(c.items) // hold no references to the batch
	from, err := c.send(ctx, len(c.items), func(dst []byte, i int) ([]byte, bool) { return enc(dst, c.items[i]) })
	if err != nil {
		return logexport.Unsent(err, ld, from)
	}
	return nil
}
