package rtpengine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Selection is how a new call picks its instance.
type Selection string

// Selections.
const (
	// RoundRobin spreads new calls over the instances in turn (SIPhon's
	// choice).
	RoundRobin Selection = "round_robin"
	// Hash picks by a hash of the Call-ID (Kamailio's rtpengine module):
	// a Call-ID maps to the same instance while the set and its health
	// stay the same.
	Hash Selection = "hash"
)

// Result is the outcome of one command at one instance.
type Result string

// Results.
const (
	OK      Result = "ok"      // the engine did it
	Refused Result = "error"   // the engine answered with an error
	Timeout Result = "timeout" // no answer (or the port is closed)
)

// errNoAnswer wraps the errors of an instance that did not answer.
var errNoAnswer = errors.New("no answer")

// ErrNoInstance means no instance was healthy to send a command to.
var ErrNoInstance = errors.New("rtpengine: no healthy instance")

// Options configure a Client.
type Options struct {
	// Instances are the NG control addresses (host:port, UDP).
	Instances []string
	Selection Selection
	// Timeout bounds one command at one instance; the request is
	// retransmitted (same cookie) twice within it, which RTPEngine
	// answers from its cache.
	Timeout time.Duration
	// Observe, when set, receives every command's outcome at each
	// instance it was sent to, and how long the answer took.
	Observe func(command, instance string, r Result, took time.Duration)
}

// Client sends NG commands to a set of RTPEngine instances: a call's
// commands go to the instance that took its offer; a new call's offer
// goes to the instance Selection picks among the healthy ones, and to the
// next healthy one when that does not answer.
type Client struct {
	o     Options
	conns map[string]*conn
	rr    atomic.Uint64

	mu   sync.Mutex
	down map[string]bool // out of rotation until the next health report says up
}

// New opens a socket per instance (no packet is sent).
func New(o Options) (*Client, error) {
	if len(o.Instances) == 0 {
		return nil, errors.New("rtpengine: no instance")
	}
	if o.Selection == "" {
		o.Selection = RoundRobin
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	c := &Client{o: o, conns: map[string]*conn{}, down: map[string]bool{}}
	for _, addr := range o.Instances {
		if _, dup := c.conns[addr]; dup {
			continue
		}
		cn, err := dial(addr)
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		c.conns[addr] = cn
	}
	return c, nil
}

// Close closes the sockets; commands in flight fail.
func (c *Client) Close() error {
	for _, cn := range c.conns {
		cn.close()
	}
	return nil
}

// SetHealth takes a health report (the ping checker's): an instance
// reported up is back in rotation, one reported down is out of it.
func (c *Client) SetHealth(up map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, ok := range up {
		c.down[addr] = !ok
	}
}

// Healthy reports whether addr is in rotation.
func (c *Client) Healthy(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.down[addr]
}

// Order lists the healthy instances in the order a new call with this
// Call-ID tries them: the selected one first, then the ones after it in
// the configured order. With Hash, an instance going down moves only its
// own calls (to the next healthy instance).
func (c *Client) Order(callID string) []string {
	n := len(c.o.Instances)
	var start int
	if c.o.Selection == Hash {
		h := fnv.New32a()
		_, _ = h.Write([]byte(callID))
		start = int(h.Sum32() % uint32(n))
	} else {
		start = int((c.rr.Add(1) - 1) % uint64(n))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, n)
	for i := range n {
		addr := c.o.Instances[(start+i)%n]
		if !c.down[addr] {
			out = append(out, addr)
		}
	}
	return out
}

// Request sends msg for the call callID. With bound set (the instance
// holding the call) it goes there; when failover is true and bound does
// not answer, or bound is empty, it goes to the instances of Order in
// turn until one answers. An instance that does not answer is taken out
// of rotation until the next health report. The reply's result must be
// "ok" (an *EngineError otherwise: the engine answered, so no other
// instance is tried). It returns the instance that answered.
func (c *Client) Request(ctx context.Context, callID, bound string, failover bool, msg Dict) (Dict, string, error) {
	var try []string
	if bound != "" {
		try = append(try, bound)
	}
	if bound == "" || failover {
		for _, addr := range c.Order(callID) {
			if addr != bound {
				try = append(try, addr)
			}
		}
	}
	if len(try) == 0 {
		return nil, "", ErrNoInstance
	}
	var errs []error
	for _, addr := range try {
		reply, err := c.Send(ctx, addr, msg)
		if err == nil || IsEngineError(err) || ctx.Err() != nil {
			return reply, addr, err
		}
		c.mu.Lock()
		c.down[addr] = true
		c.mu.Unlock()
		errs = append(errs, err)
	}
	return nil, "", errors.Join(errs...)
}

// Send sends msg to one instance and waits up to Timeout for its reply,
// whose result must be "ok" ("pong" for a ping).
func (c *Client) Send(ctx context.Context, addr string, msg Dict) (Dict, error) {
	cn := c.conns[addr]
	if cn == nil {
		return nil, fmt.Errorf("rtpengine: %s is not a configured instance", addr)
	}
	command := String(msg, "command")
	start := time.Now()
	reply, err := cn.exchange(ctx, msg, c.o.Timeout)
	r := OK
	switch {
	case errors.Is(err, errNoAnswer):
		r = Timeout
	case err != nil:
		r = Refused // an answer that is not NG
	case command == "ping":
		err = checkResult(reply, "pong")
	default:
		err = checkResult(reply, "ok")
	}
	if err != nil && r == OK {
		r = Refused
	}
	if c.o.Observe != nil {
		c.o.Observe(command, addr, r, time.Since(start))
	}
	if err != nil {
		return reply, fmt.Errorf("rtpengine %s: %s: %w", addr, command, err)
	}
	return reply, nil
}

// conn is one instance's socket: connected, so only that instance's
// datagrams arrive, and a closed port shows as ECONNREFUSED at once.
type conn struct {
	addr string
	uc   *net.UDPConn
	done chan struct{}

	mu      sync.Mutex
	pending map[string]chan reply
}

type reply struct {
	b   []byte
	err error
}

func dial(addr string) (*conn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("rtpengine %s: %w", addr, err)
	}
	uc, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, fmt.Errorf("rtpengine %s: %w", addr, err)
	}
	cn := &conn{addr: addr, uc: uc, done: make(chan struct{}), pending: map[string]chan reply{}}
	go cn.read()
	return cn, nil
}

func (cn *conn) close() {
	_ = cn.uc.Close()
	<-cn.done
}

// read hands each reply to the request with its cookie; replies nobody
// waits for (late ones, after a timeout) are dropped.
func (cn *conn) read() {
	defer close(cn.done)
	buf := make([]byte, maxDatagram)
	for {
		n, err := cn.uc.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			cn.failAll(err)
			return
		}
		if err != nil {
			// ECONNREFUSED: an ICMP port unreachable for one of our
			// datagrams, so nothing listens there: fail what waits
			if errors.Is(err, syscall.ECONNREFUSED) {
				cn.failAll(err)
			}
			continue
		}
		cookie, _, ok := cutCookie(buf[:n])
		if !ok {
			continue
		}
		cn.mu.Lock()
		ch := cn.pending[cookie]
		delete(cn.pending, cookie)
		cn.mu.Unlock()
		if ch != nil {
			ch <- reply{b: append([]byte(nil), buf[:n]...)}
		}
	}
}

func (cn *conn) failAll(err error) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	for cookie, ch := range cn.pending {
		ch <- reply{err: err}
		delete(cn.pending, cookie)
	}
}

// exchange sends msg and waits for its reply, retransmitting at a third
// and two thirds of timeout.
func (cn *conn) exchange(ctx context.Context, msg Dict, timeout time.Duration) (Dict, error) {
	cookie := newCookie()
	dgram, err := encodeRequest(cookie, msg)
	if err != nil {
		return nil, err
	}
	ch := make(chan reply, 1)
	cn.mu.Lock()
	cn.pending[cookie] = ch
	cn.mu.Unlock()
	defer func() {
		cn.mu.Lock()
		delete(cn.pending, cookie)
		cn.mu.Unlock()
	}()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	resend := time.NewTicker(timeout / 3)
	defer resend.Stop()
	for {
		if _, err := cn.uc.Write(dgram); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w: %w", errNoAnswer, err)
		}
		select {
		case r := <-ch:
			if r.err != nil {
				return nil, fmt.Errorf("%w: %w", errNoAnswer, r.err)
			}
			_, d, err := ParseDatagram(r.b)
			return d, err
		case <-resend.C:
		case <-deadline.C:
			return nil, fmt.Errorf("%w within %s", errNoAnswer, timeout)
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", errNoAnswer, ctx.Err())
		case <-cn.done:
			return nil, fmt.Errorf("%w: %w", errNoAnswer, net.ErrClosed)
		}
	}
}
