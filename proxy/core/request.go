package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siphon-otel/siphon-otel/internal/sipscanner"
)

// onRequest admits a request (everything but ACK) and queues its routing
// on the handler pool.
func (p *Proxy) onRequest(req *sip.Request, tx sip.ServerTransaction) {
	start := time.Now()
	method := req.Method.String()
	p.m.Requests.WithLabelValues(method).Inc()
	// a transaction is active until sipgo lets go of it (after its
	// linger timers); its duration is request in to final answer out
	p.m.TransactionsActive.Inc()
	tx.OnTerminate(func(string, error) { p.m.TransactionsActive.Dec() })
	p.inflight.Add(1)
	defer func() {
		p.m.TransactionDuration.WithLabelValues(method, "server").Observe(time.Since(start).Seconds())
		p.awaitAck(tx)
		p.inflight.Add(-1)
	}()
	// requests of known scanning tools are dropped without an answer
	// (answering helps them); sipkpi flags the same tools (sipscanner)
	if ua := req.GetHeader("User-Agent"); ua != nil && sipscanner.Match(ua.Value()) {
		p.m.ScannerBlocked.Inc()
		tx.Terminate()
		return
	}
	inDialog := req.To() != nil && req.To().Params.Has("tag")
	if p.limiter != nil && !inDialog && !p.limiter.allow(hostOf(req.Source())) {
		p.m.RateLimited.Inc()
		p.reply(tx, req, 503, "Service Unavailable", "Retry-After", "5")
		return
	}
	// the routing decision runs on the pool (SIPhon's script executor);
	// relaying, which waits on the next hop, runs here, off the pool
	decided := make(chan func(), 1)
	if !p.pool.Submit(func() { decided <- p.process(req, tx, start) }) {
		// SIPhon sheds the job and the client retransmits; over a stream
		// there is no retransmission, so say so instead
		if sip.IsReliable(req.Transport()) {
			p.reply(tx, req, 503, "Service Unavailable", "Retry-After", "1")
		} else {
			tx.Terminate() // the retransmission starts a new transaction
		}
		return
	}
	select {
	case relay := <-decided:
		if relay != nil {
			relay()
		}
	case <-p.closed:
	}
}

// process decides what to do with one request, on the pool: it answers
// by itself or returns the relay to run off the pool.
func (p *Proxy) process(req *sip.Request, tx sip.ServerTransaction, start time.Time) (relay func()) {
	defer func() {
		if r := recover(); r != nil {
			p.m.ScriptErrors.Inc()
			p.log.Error("request handling panicked", "method", req.Method, "panic", r)
			p.reply(tx, req, 500, "Server Internal Error")
			relay = nil
		}
	}()
	defer func() { p.m.RequestDuration.WithLabelValues(req.Method.String()).Observe(time.Since(start).Seconds()) }()

	if req.CallID() == nil || req.CSeq() == nil || req.From() == nil || req.To() == nil {
		p.m.MalformedMessages.Inc()
		p.reply(tx, req, 400, "Bad Request")
		return nil
	}
	toSelf := p.isUs(req.Recipient)
	inDialog := req.To().Params.Has("tag")
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 && !(req.Method == sip.OPTIONS && toSelf) {
		p.failCall(req, "", 483)
		p.reply(tx, req, 483, "Too Many Hops")
		return nil
	}
	if p.looped(req) {
		p.m.Loops.WithLabelValues("via").Inc()
		if !inDialog {
			p.failCall(req, "", 482)
		}
		p.reply(tx, req, 482, "Loop Detected")
		return nil
	}
	key := loopKey(req, req.Via()) // as received: before our Routes go
	p.popOwnRoutes(req)
	if inDialog && req.Route() == nil && p.isUs(req.Recipient) {
		// a request of a dialog addressed to the proxy itself, after
		// route processing (RFC 3261 16.4): forwarding it to its
		// Request-URI would send it back here until Max-Forwards ran
		// out. The proxy is the target and has no such resource (16.5);
		// OPTIONS it answers as the final recipient (11).
		if req.Method == sip.OPTIONS {
			p.reply(tx, req, 200, "OK", "Allow", allowed, "Accept", "application/sdp", "Supported", "path")
			return nil
		}
		p.m.Loops.WithLabelValues("request_uri").Inc()
		p.reply(tx, req, 404, "Not Found")
		return nil
	}
	if inDialog {
		return p.inDialog(req, tx, key)
	}
	switch {
	case req.Method == sip.OPTIONS && (toSelf || (req.Recipient.User == "" && p.isLocalDomain(req.Recipient.Host))):
		p.reply(tx, req, 200, "OK", "Allow", allowed, "Accept", "application/sdp", "Supported", "path")
		return nil
	case req.Method == sip.REGISTER && p.isLocalDomain(req.Recipient.Host):
		p.register(req, tx)
		return nil
	case req.Route() != nil:
		// a pre-loaded route: follow it
		next := req.Route().Address
		return func() {
			p.forward(req, tx, []Target{{URI: next, Transport: transportOf(next, req.Transport())}}, true, "", key, false)
		}
	}
	if req.Method == sip.INVITE && p.draining.Load() {
		p.failCall(req, "", 503)
		p.reply(tx, req, 503, "Service Unavailable", "Retry-After", strconv.Itoa(p.cfg.Server.DrainSecs))
		return nil
	}
	authUser := ""
	if p.auth != nil && req.Method == sip.INVITE && p.isLocalDomain(req.From().Address.Host) {
		user, ok := p.challenge(req, tx, "Proxy-Authorization", 407, "Proxy-Authenticate")
		if !ok {
			return nil
		}
		authUser = user
	}
	r := &Request{Request: req, Source: req.Source(), Transport: strings.ToLower(req.Transport()), AuthUser: authUser,
		Local: p.isLocalDomain(req.Recipient.Host)}
	p.m.ScriptExec.WithLabelValues("on_request").Inc()
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Proxy.InviteTimeout)
	d := p.handler.OnRequest(ctx, r)
	cancel()
	switch d.Action {
	case Reply:
		p.failCall(req, authUser, d.Status)
		p.reply(tx, req, d.Status, d.Reason)
	case Forward:
		if len(d.Targets) == 0 {
			p.m.ScriptErrors.Inc()
			p.reply(tx, req, 500, "Server Internal Error")
			return nil
		}
		anchor := p.anchors(d.Media)
		return func() { p.forward(req, tx, d.Targets, false, authUser, key, anchor) }
	}
	return nil
}

// failCall records an INVITE this proxy answered itself (its CDR).
func (p *Proxy) failCall(req *sip.Request, authUser string, code int) {
	if req.Method != sip.INVITE {
		return
	}
	p.Calls.Invite(p.callOf(req, authUser))
	p.Calls.Final(req.CallID().Value(), req.From().Params.GetOr("tag", ""), code, "", "", true)
}

const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE, PRACK, MESSAGE, SUBSCRIBE, NOTIFY, REFER"

// inDialog forwards a request of an established dialog: to the next Route,
// else to the Request-URI (the remote target).
func (p *Proxy) inDialog(req *sip.Request, tx sip.ServerTransaction, key string) func() {
	next := req.Recipient
	if r := req.Route(); r != nil {
		next = r.Address
	}
	if req.Method == sip.BYE {
		if callerTag, fromCaller, ok := p.Calls.Lookup(req.CallID().Value(), req.From().Params.GetOr("tag", ""), req.To().Params.GetOr("tag", "")); ok {
			reason := ""
			if h := req.GetHeader("Reason"); h != nil {
				reason = h.Value()
			}
			p.Calls.Bye(req.CallID().Value(), callerTag, fromCaller, reason)
		}
	}
	return func() {
		p.forward(req, tx, []Target{{URI: next, Transport: transportOf(next, req.Transport())}}, true, "", key, false)
	}
}

// onAck forwards an ACK for a 2xx (ACKs for other responses end in their
// INVITE's server transaction); it is stateless. One that looped, or is
// for the proxy itself, stops here.
func (p *Proxy) onAck(req *sip.Request, _ sip.ServerTransaction) {
	p.m.Requests.WithLabelValues("ACK").Inc()
	if req.CallID() != nil && req.From() != nil {
		p.Calls.Ack(req.CallID().Value(), req.From().Params.GetOr("tag", ""))
	}
	if p.looped(req) {
		p.m.Loops.WithLabelValues("via").Inc()
		return
	}
	key := loopKey(req, req.Via())
	p.popOwnRoutes(req)
	if p.isUs(req.Recipient) && req.Route() == nil {
		return // for us
	}
	next := req.Recipient
	if r := req.Route(); r != nil {
		next = r.Address
	}
	if p.isOwnAddress(next, transportOf(next, req.Transport())) {
		p.m.Loops.WithLabelValues("target").Inc()
		return
	}
	fwds, err := p.outgoing(req, Target{URI: next, Transport: transportOf(next, req.Transport())}, true,
		[]sipgo.ClientRequestOption{p.via(key), decMaxForwards})
	if errors.Is(err, errMaxForwards) {
		p.log.Debug("ACK not forwarded", "error", err)
		return
	}
	if err != nil {
		p.sendFailed("request", err, "method", sip.ACK, "target", next.String())
		return
	}
	for i, fwd := range fwds {
		if err = p.client.WriteRequest(fwd, asIs); err == nil {
			return
		}
		if i == len(fwds)-1 {
			p.sendFailed("request", err, "method", sip.ACK, "destination", fwd.Destination(), "transport", fwd.Transport())
		}
	}
}

// popOwnRoutes is loose routing (RFC 3261 16.4): drop the Routes that name
// us (two when we recorded both sides of a transport change).
func (p *Proxy) popOwnRoutes(req *sip.Request) {
	for r := req.Route(); r != nil && p.isUs(r.Address); r = req.Route() {
		req.RemoveHeader("Route")
	}
}

// reply answers a request; headers are name, value pairs.
func (p *Proxy) reply(tx sip.ServerTransaction, req *sip.Request, code int, reason string, headers ...string) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		res.AppendHeader(sip.NewHeader(headers[i], headers[i+1]))
	}
	p.respond(tx, res)
}

// respond sends a response upstream and counts it.
func (p *Proxy) respond(tx sip.ServerTransaction, res *sip.Response) {
	if res.StatusCode >= 300 && res.CSeq() != nil && res.CSeq().MethodName == sip.INVITE {
		p.countAck(tx) // armed before the answer can be ACKed
	}
	if err := tx.Respond(res); err != nil {
		if errors.Is(err, sip.ErrTransactionTransport) {
			p.sendFailed("response", err, "code", res.StatusCode, "destination", res.Destination(), "transport", res.Transport())
		} else {
			p.log.Debug("response not sent", "code", res.StatusCode, "error", err) // the transaction is over
		}
		return
	}
	p.m.Responses.WithLabelValues(strconv.Itoa(res.StatusCode)).Inc()
}

// countAck counts the ACK of a non-2xx answer to INVITE, which ends in its
// transaction inside sipgo and never reaches a handler.
// sipgo hands the ACK over without blocking only to a receiver already
// waiting (otherwise it races the transaction's end), so countAck returns
// once its goroutine is about to wait; call it before sending the answer.
//
// sipgo ends a transaction when its handler returns, at once on reliable
// transports, so the ACK of a non-2xx answer would find no transaction and
// reach onAck as if it were end to end; onRequest therefore holds the
// transaction (awaitAck) until the ACK came or the transaction timed out.
func (p *Proxy) countAck(tx sip.ServerTransaction) {
	armed, finished := make(chan struct{}), make(chan struct{})
	if _, loaded := p.ackWaits.LoadOrStore(tx, finished); loaded {
		return // already counting (a CANCEL's 487, then our own answer)
	}
	go func() {
		defer close(finished)
		acks, done := tx.Acks(), tx.Done()
		close(armed)
		select {
		case <-acks:
			p.m.Requests.WithLabelValues("ACK").Inc()
		case <-done:
		}
	}()
	<-armed
}

// awaitAck waits for the ACK countAck is waiting for, if any.
func (p *Proxy) awaitAck(tx sip.ServerTransaction) {
	v, ok := p.ackWaits.LoadAndDelete(tx)
	if !ok {
		return
	}
	select {
	case <-v.(chan struct{}):
	case <-p.closed:
	}
}

// isUs reports whether a URI names this proxy (a Route or a Request-URI).
func (p *Proxy) isUs(u sip.Uri) bool {
	port := u.Port
	if port == 0 {
		port = 5060
		if u.Scheme == "sips" {
			port = 5061
		}
	}
	return u.User == "" && p.ourHosts[strings.ToLower(u.Host)] && p.ourPorts[port] ||
		u.User == "" && p.domains[strings.ToLower(u.Host)] && (u.Port == 0 || p.ourPorts[u.Port])
}

func (p *Proxy) isLocalDomain(host string) bool {
	return p.domains[strings.ToLower(host)] || p.ourHosts[strings.ToLower(host)]
}

// countingHandler counts the messages sipgo cannot parse (it logs them and
// drops them, or answers 400 statelessly) as malformed, and logs them at
// debug level without their bytes: a flood of garbage must not flood the
// log.
//
// Matching sipgo's log is the only way to see them: sipgo v1.7.2 has no
// hook for a message it cannot parse. No server or transport option takes
// an error callback, and the parse errors (ErrParseLineNoCRLF,
// ErrMessageTooLarge ... in sip/parser.go) never leave the transport.
// WithTransportLayerReadFilter (sip/transport_layer.go) sees the raw bytes
// before parsing, not the outcome, and over TCP sees reads, not messages;
// the parser's only option, WithHeadersParsers (sip/parser.go), replaces
// header parsers and does not see start-line or framing errors. The
// records, all at level Error:
//
//   - sip/transport_udp.go, (*TransportUDP).parseAndHandle: "failed to
//     parse" with "data" and "error";
//   - sip/transport_tcp.go, (*TransportTCP).parseStream (TLS too, through
//     TransportTLS's TransportTCP): "failed to parse" with "error" and
//     "data" (sip/transport_ws.go says the same for WebSocket, which the
//     proxy does not serve);
//   - sip/transaction_layer.go, (*TransactionLayer).handleRequest and
//     handleResponse return "make key failed: ..." for a message without
//     the Via or CSeq a transaction needs (a request gets a stateless 400
//     from rejectMalformedRequest first); handleRequestBackground and
//     handleResponseBackground log it as "Server tx failed to handle
//     request" / "Client tx failed to handle response" with "error".
//
// TestMalformedRecord and TestMalformedFromSipgo hold these texts: rerun
// them when upgrading sipgo.
type countingHandler struct {
	slog.Handler
	malformed interface{ Inc() }
}

// Enabled takes every Error record, whatever the log level: slog asks
// before it builds a record, and the count must not depend on the level.
func (h *countingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.Handler.Enabled(ctx, l)
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError || !malformedRecord(r) {
		if !h.Handler.Enabled(ctx, r.Level) {
			return nil
		}
		return h.Handler.Handle(ctx, r)
	}
	h.malformed.Inc()
	if !h.Handler.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	out := slog.NewRecord(r.Time, slog.LevelDebug, "malformed SIP message dropped", r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "data" {
			out.AddAttrs(a)
		}
		return true
	})
	return h.Handler.Handle(ctx, out)
}

// malformedRecord recognises sipgo's parse failures: "failed to parse"
// from the transports, and a request without the headers a transaction
// needs ("make key failed").
func malformedRecord(r slog.Record) bool {
	if r.Message == "failed to parse" {
		return true
	}
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" && strings.Contains(a.Value.String(), "make key failed") {
			found = true
			return false
		}
		return true
	})
	return found
}

func (h *countingHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &countingHandler{Handler: h.Handler.WithAttrs(a), malformed: h.malformed}
}

func (h *countingHandler) WithGroup(n string) slog.Handler {
	return &countingHandler{Handler: h.Handler.WithGroup(n), malformed: h.malformed}
}

// hostPort is where a URI's requests go (no DNS: targets here are IPs or
// resolvable names). sipgo keeps an IPv6 reference's brackets in Host;
// JoinHostPort adds its own.
func hostPort(u sip.Uri, transport string) string {
	port := u.Port
	if port == 0 {
		port = sip.DefaultPort(transport)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(u.Host, "["), "]")
	return net.JoinHostPort(host, strconv.Itoa(port))
}

func errorf(format string, a ...any) error { return fmt.Errorf("core: "+format, a...) }
