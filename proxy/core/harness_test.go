package core

// The harness drives the proxy without sockets, through the seams sipgo
// v1.7.2 has for it:
//
//   - upstream, a server transaction is sipgo's own (sip.NewServerTx, as
//     siptest.NewServerTxRecorder builds it) on a recording connection that
//     also signals each write, so tests wait for an answer instead of
//     polling; the harness calls onRequest as sipgo's Server does, then
//     TerminateGracefully;
//   - downstream, sipgo.Client.TxRequester takes every request the proxy
//     sends (TransactionRequest and WriteRequest, after the request options
//     such as the Via and Max-Forwards ones ran): nextHop records them and
//     answers as a scripted next hop.
//
// sipgo's transaction layer is not in the path: what it does before the
// proxy's handlers (matching a CANCEL or an ACK to its INVITE's server
// transaction) the tests do with tx.Receive, as it would.
//
// What remains untested here needs sockets: the listeners and the
// housekeeping loop (Start), dialling next hops (ensureConn) and writing a
// stray 2xx upstream (onStrayResponse's write; its decision is
// strayUpstream). proxy/e2e covers them.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/siphon-otel/siphon-otel/proxy/cdrsink"
	"github.com/siphon-otel/siphon-otel/proxy/config"
	"github.com/siphon-otel/siphon-otel/proxy/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every wait on the proxy: a test that reaches it failed.
const waitFor = 5 * time.Second

var discard = slog.New(slog.DiscardHandler)

// testConfig is a proxy for example.com, on 127.0.0.1 port 5060 (UDP and
// TCP) and 5061 (TLS); New opens nothing, so the ports are only names.
func testConfig() *config.Config {
	c := config.Defaults()
	c.Domain.Local = []string{"example.com"}
	c.Listen.UDP = []string{"127.0.0.1:5060"}
	c.Listen.TCP = []string{"127.0.0.1:5060"}
	c.Listen.TLS = []string{"127.0.0.1:5061"}
	c.Script.SyncPoolSize, c.Script.SyncPoolMax = 2, 4
	return &c
}

type harness struct {
	t    *testing.T
	p    *Proxy
	next *nextHop

	mu   sync.Mutex
	cdrs []cdrsink.Record
}

// newHarness builds a proxy on cfg (testConfig when nil); opts edit the
// Options before New.
func newHarness(t *testing.T, cfg *config.Config, opts ...func(*Options)) *harness {
	t.Helper()
	if cfg == nil {
		cfg = testConfig()
	}
	o := Options{Config: cfg, Metrics: metrics.New(), Logger: discard}
	for _, f := range opts {
		f(&o)
	}
	p, err := New(o)
	require.NoError(t, err)
	h := &harness{t: t, p: p, next: &nextHop{invites: map[string]*clientTx{}}}
	p.client.TxRequester = h.next
	// the call CDRs, as cdr.auto_emit would send them to the sink
	p.Calls = p.newTracker(func(r cdrsink.Record) {
		h.mu.Lock()
		h.cdrs = append(h.cdrs, r)
		h.mu.Unlock()
	})
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return h
}

// callCDRs returns the call CDRs emitted so far, decoded.
func (h *harness) callCDRs() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]map[string]any, len(h.cdrs))
	for i, r := range h.cdrs {
		out[i] = decodeJSON(h.t, r.JSON)
	}
	return out
}

// counter reads a counter or gauge.
func counter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

var seq atomic.Int64

// newReq parses a request as a UA at 10.0.0.1:5070 sends it over transport
// (UDP, TCP, TLS). The default headers (Via with a fresh branch, From with a
// tag, To, a fresh Call-ID, CSeq, Max-Forwards 70) can be replaced by a
// header line of the same name in hdrs, or removed by "Name:" alone; other
// lines are added.
func newReq(t *testing.T, transport, method, ruri string, hdrs ...string) *sip.Request {
	t.Helper()
	n := seq.Add(1)
	to := ruri
	if i := strings.IndexByte(to, ';'); i >= 0 {
		to = to[:i]
	}
	defaults := []string{
		fmt.Sprintf("Via: SIP/2.0/%s 10.0.0.1:5070;branch=z9hG4bK-t%d;rport", transport, n),
		"From: <sip:alice@example.com>;tag=from-" + fmt.Sprint(n),
		"To: <" + to + ">",
		fmt.Sprintf("Call-ID: call-%d@10.0.0.1", n),
		fmt.Sprintf("CSeq: 1 %s", method),
		"Max-Forwards: 70",
	}
	var extra []string
	for _, line := range hdrs {
		name, value, _ := strings.Cut(line, ":")
		replaced := false
		for i, d := range defaults {
			if dn, _, _ := strings.Cut(d, ":"); strings.EqualFold(dn, name) {
				defaults[i] = line
				if strings.TrimSpace(value) == "" {
					defaults[i] = ""
				}
				replaced = true
			}
		}
		if !replaced {
			extra = append(extra, line)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	for _, l := range append(defaults, extra...) {
		if l != "" {
			b.WriteString(l + "\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	msg, err := sip.ParseMessage([]byte(b.String()))
	require.NoError(t, err, b.String())
	req := msg.(*sip.Request)
	req.SetTransport(transport)
	req.SetSource("10.0.0.1:5070")
	return req
}

// cancelOf is the CANCEL a UA sends for invite (RFC 3261 9.1).
func cancelOf(invite *sip.Request, reason string) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, invite.Recipient)
	c.AppendHeader(invite.Via().Clone())
	c.AppendHeader(sip.HeaderClone(invite.From()))
	c.AppendHeader(sip.HeaderClone(invite.To()))
	c.AppendHeader(sip.HeaderClone(invite.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: invite.CSeq().SeqNo, MethodName: sip.CANCEL})
	if reason != "" {
		c.AppendHeader(sip.NewHeader("Reason", reason))
	}
	c.SetTransport(invite.Transport())
	c.SetSource(invite.Source())
	return c
}

// ackOf is the ACK of a non-2xx final response to invite (RFC 3261
// 17.1.1.3): same branch, the response's To.
func ackOf(invite *sip.Request, res *sip.Response) *sip.Request {
	a := sip.NewRequest(sip.ACK, invite.Recipient)
	a.AppendHeader(invite.Via().Clone())
	a.AppendHeader(sip.HeaderClone(invite.From()))
	a.AppendHeader(sip.HeaderClone(res.To()))
	a.AppendHeader(sip.HeaderClone(invite.CallID()))
	a.AppendHeader(&sip.CSeqHeader{SeqNo: invite.CSeq().SeqNo, MethodName: sip.ACK})
	a.SetTransport(invite.Transport())
	a.SetSource(invite.Source())
	return a
}

// upstream is the previous hop's side of one server transaction.
type upstream struct {
	t    *testing.T
	req  *sip.Request
	tx   *sip.ServerTx
	conn *recConn
	done chan struct{} // onRequest returned
	read int           // responses already returned by next
}

// send hands req to the proxy as sipgo's Server would: in a server
// transaction, on its own goroutine.
func (h *harness) send(req *sip.Request) *upstream {
	h.t.Helper()
	return h.sendOn(req, &recConn{})
}

// sendOn is send with the upstream connection given.
func (h *harness) sendOn(req *sip.Request, conn *recConn) *upstream {
	h.t.Helper()
	key, err := sip.ServerTxKeyMake(req)
	require.NoError(h.t, err)
	u := &upstream{t: h.t, req: req, conn: conn, done: make(chan struct{})}
	u.tx = sip.NewServerTx(key, req, u.conn, discard)
	require.NoError(h.t, u.tx.Init())
	go func() {
		defer close(u.done)
		h.p.onRequest(req, u.tx)
		u.tx.TerminateGracefully() // as sipgo.Server.handleRequest
	}()
	h.t.Cleanup(u.finish)
	return u
}

// finish ends the transaction (as its timers would) and waits for the
// proxy to let go of it.
func (u *upstream) finish() {
	u.tx.Terminate()
	u.wait()
}

// wait waits for onRequest to return.
func (u *upstream) wait() {
	u.t.Helper()
	select {
	case <-u.done:
	case <-time.After(waitFor):
		u.t.Fatalf("%s: the proxy still holds the request", u.req.Method)
	}
}

// next returns the next response the proxy sent upstream.
func (u *upstream) next() *sip.Response {
	u.t.Helper()
	res := u.conn.response(u.t, u.read)
	u.read++
	return res
}

// final skips provisional responses and returns the final one.
func (u *upstream) final() *sip.Response {
	u.t.Helper()
	for {
		if res := u.next(); res.StatusCode >= 200 {
			return res
		}
	}
}

// codes lists the status codes sent upstream so far.
func (u *upstream) codes() []int {
	var out []int
	for _, r := range u.conn.responses.all() {
		out = append(out, r.StatusCode)
	}
	return out
}

// ack sends the ACK of the final response res, as sipgo's transaction
// layer delivers it to the INVITE's server transaction.
func (u *upstream) ack(res *sip.Response) {
	require.NoError(u.t, u.tx.Receive(ackOf(u.req, res)))
}

// recConn is the server transaction's connection: it keeps the responses
// and wakes whoever waits for one; with fail set, writes fail with it.
type recConn struct {
	responses recorded[*sip.Response]
	fail      error
}

func (c *recConn) LocalAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060} }
func (c *recConn) Ref(int) int         { return 1 }
func (c *recConn) TryClose() (int, error) {
	return 0, nil
}
func (c *recConn) Close() error { return nil }

func (c *recConn) WriteMsg(m sip.Message) error {
	res, ok := m.(*sip.Response)
	if !ok {
		return fmt.Errorf("recConn: a request written upstream: %s", m)
	}
	if c.fail != nil {
		return c.fail
	}
	c.responses.add(res.Clone())
	return nil
}

// response waits for the i-th response.
func (c *recConn) response(t *testing.T, i int) *sip.Response {
	t.Helper()
	return c.responses.wait(t, i, "response upstream")
}

// recorded keeps what was written, in order, and lets a test wait for the
// i-th item.
type recorded[T any] struct {
	mu    sync.Mutex
	items []T
	wrote chan struct{} // closed at the next add
}

func (r *recorded[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, v)
	if r.wrote != nil {
		close(r.wrote)
		r.wrote = nil
	}
}

// all is what was written so far.
func (r *recorded[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}

// wait returns the i-th item once written; the test fails after waitFor.
func (r *recorded[T]) wait(t *testing.T, i int, what string) T {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		r.mu.Lock()
		if len(r.items) > i {
			v := r.items[i]
			r.mu.Unlock()
			return v
		}
		if r.wrote == nil {
			r.wrote = make(chan struct{})
		}
		wrote, have := r.wrote, len(r.items)
		r.mu.Unlock()
		select {
		case <-wrote:
		case <-timeout:
			t.Fatalf("no %s #%d (have %d)", what, i+1, have)
		}
	}
}

// nextHop stands for every next hop: it records what the proxy sends and
// answers through answer. CANCEL it answers by itself as a UAS does: 200,
// then 487 for the INVITE it cancels.
type nextHop struct {
	// answer scripts the next hops (set before the first request); nil
	// leaves them silent.
	answer func(req *sip.Request, tx *clientTx)
	// refuse, when set, makes TransactionRequest fail for a request (no
	// route to the next hop, Max-Forwards exhausted ...).
	refuse func(req *sip.Request) error

	sent    recorded[*sip.Request]
	txs     recorded[*clientTx] // the client transactions, in order
	mu      sync.Mutex
	invites map[string]*clientTx // by branch, for CANCEL
}

// Request implements sipgo.ClientTransactionRequester.
func (n *nextHop) Request(_ context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	n.sent.add(snapshot(req))
	if req.IsAck() {
		return nil, nil // WriteRequest: no transaction
	}
	if n.refuse != nil {
		if err := n.refuse(req); err != nil {
			return nil, err
		}
	}
	tx := newClientTx(req)
	n.txs.add(tx)
	branch, _ := req.Via().Params.Get("branch")
	switch req.Method {
	case sip.CANCEL:
		tx.respond(200, "OK")
		n.mu.Lock()
		inv := n.invites[branch]
		n.mu.Unlock()
		if inv != nil {
			inv.respond(487, "Request Terminated")
		}
		return tx, nil
	case sip.INVITE:
		n.mu.Lock()
		n.invites[branch] = tx
		n.mu.Unlock()
	}
	if n.answer != nil {
		n.answer(req, tx)
	}
	return tx, nil
}

// snapshot is req as it would go on the wire now. (A sipgo Clone would not
// do: it shares some headers with the original, Max-Forwards among them.)
func snapshot(req *sip.Request) *sip.Request {
	msg, err := sip.ParseMessage([]byte(req.String()))
	if err != nil {
		panic(fmt.Sprintf("the proxy sent what sipgo cannot parse: %v\n%s", err, req))
	}
	s := msg.(*sip.Request)
	s.SetTransport(req.Transport())
	s.SetSource(req.Source())
	s.SetDestination(req.Destination())
	s.Laddr = req.Laddr
	return s
}

// tx waits for the i-th client transaction.
func (n *nextHop) tx(t *testing.T, i int) *clientTx {
	t.Helper()
	return n.txs.wait(t, i, "client transaction")
}

// request waits for the i-th request sent downstream.
func (n *nextHop) request(t *testing.T, i int) *sip.Request {
	t.Helper()
	return n.sent.wait(t, i, "request downstream")
}

// requests is what was sent downstream so far.
func (n *nextHop) requests() []*sip.Request { return n.sent.all() }

// clientTx is a client transaction whose responses the test scripts.
type clientTx struct {
	req  *sip.Request
	res  chan *sip.Response
	done chan struct{}
	once sync.Once
	err  atomic.Value
}

func newClientTx(req *sip.Request) *clientTx {
	return &clientTx{req: req, res: make(chan *sip.Response, 16), done: make(chan struct{})}
}

// respond queues a response from the next hop, with a fixed To tag.
func (c *clientTx) respond(code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(c.req, code, reason, nil)
	if code > 100 {
		res.To().Params.Add("tag", "callee")
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	c.res <- res
}

// fail ends the transaction without a final response (Timer B/F, a
// transport error).
func (c *clientTx) fail(err error) {
	c.err.Store(err)
	c.Terminate()
}

func (c *clientTx) Terminate()                             { c.once.Do(func() { close(c.done) }) }
func (c *clientTx) OnTerminate(sip.FnTxTerminate) bool     { return true }
func (c *clientTx) Done() <-chan struct{}                  { return c.done }
func (c *clientTx) Responses() <-chan *sip.Response        { return c.res }
func (c *clientTx) OnRetransmission(sip.FnTxResponse) bool { return true }
func (c *clientTx) Err() error {
	if err, ok := c.err.Load().(error); ok {
		return err
	}
	return nil
}

// headerValues lists the values of a header, in order.
func headerValues(m interface{ GetHeaders(string) []sip.Header }, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

// headerValue is a header's first value, "" when absent.
func headerValue(m interface{ GetHeader(string) sip.Header }, name string) string {
	if h := m.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	return m
}
