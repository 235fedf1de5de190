package core

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siphon-otel/siphon-otel/proxy/calls"
)

// asIs sends a request exactly as built (a CANCEL reuses its INVITE's Via).
var asIs = func(*sipgo.Client, *sip.Request) error { return nil }

// decMaxForwards is RFC 3261 16.6 step 3: the copy's Max-Forwards goes
// down by one, to 0 included (the next hop answers 483 unless it is the
// target, which may take it), and a request without one gets 70. sipgo's
// ClientRequestDecreaseMaxForward refuses to send at 0, which turned a
// request arriving with 1 into a 503 from this proxy. A request arriving
// with 0 was answered 483 before (process); an ACK stops here.
// It replaces the header: sip.Request.Clone (sipgo v1.7.2) shares the
// Max-Forwards header between a request and its clones, so decrementing in
// place took one more hop off for every target a request failed over to.
var errMaxForwards = errors.New("core: Max-Forwards 0: not forwarded")

func decMaxForwards(_ *sipgo.Client, r *sip.Request) error {
	h := r.MaxForwards()
	if h == nil {
		mf := sip.MaxForwardsHeader(70)
		r.AppendHeader(&mf)
		return nil
	}
	if *h == 0 {
		return errMaxForwards
	}
	mf := *h - 1
	r.ReplaceHeader(&mf)
	return nil
}

// recordRoute keeps this proxy on the dialog's path (16.6 step 4). When the
// request changes transport it records both sides (RFC 5658), the outgoing
// one on top: the callee's first Route is the side it reaches, the
// caller's (the reversed set) the side it came in on.
func (p *Proxy) recordRoute(inbound string) sipgo.ClientRequestOption {
	return func(_ *sipgo.Client, r *sip.Request) error {
		out := strings.ToLower(r.Transport())
		if in := strings.ToLower(inbound); in != out {
			r.PrependHeader(p.rrHeader(in))
		}
		r.PrependHeader(p.rrHeader(out))
		return nil
	}
}

func (p *Proxy) rrHeader(transport string) *sip.RecordRouteHeader {
	u := sip.Uri{Scheme: "sip", Host: p.host, Port: p.ports[transport],
		UriParams: sip.HeaderParams{{K: "transport", V: transport}, {K: "lr", V: ""}}}
	if transport == "tls" {
		u.Scheme = "sips"
		u.UriParams = sip.HeaderParams{{K: "lr", V: ""}}
	}
	return &sip.RecordRouteHeader{Address: u}
}

// callOf is the call record of an initial INVITE.
func (p *Proxy) callOf(req *sip.Request, authUser string) calls.Call {
	c := calls.Call{
		CallID: req.CallID().Value(), FromTag: req.From().Params.GetOr("tag", ""),
		FromURI: req.From().Address.String(), ToURI: req.To().Address.String(), RURI: req.Recipient.String(),
		SourceIP: hostOf(req.Source()), DestinationIP: p.host, Transport: strings.ToLower(req.Transport()), AuthUser: authUser,
	}
	if ua := req.GetHeader("User-Agent"); ua != nil {
		c.UserAgent = ua.Value()
	}
	return c
}

// prepare points a request at its next hop.
func (p *Proxy) prepare(req *sip.Request, next sip.Uri, transport string) error {
	return p.prepareDial(req, next, transport, dialTimeout)
}

// prepareDial is prepare with the time a new connection may take.
func (p *Proxy) prepareDial(req *sip.Request, next sip.Uri, transport string, timeout time.Duration) error {
	dest := hostPort(next, transport)
	req.SetDestination(dest)
	req.SetTransport(strings.ToUpper(transport))
	if transport == "udp" && p.udpLaddr.IP != nil {
		// leave from the listening socket (sipgo would open a new one)
		req.Laddr = p.udpLaddr
	}
	return p.ensureConn(transport, dest, timeout)
}

// dialTimeout is how long dialling a next hop may take.
const dialTimeout = 5 * time.Second

// forward relays a request statefully to the first target that answers,
// failing over on transport errors, 408, 5xx and no final answer. inDialog
// requests do not rewrite the Request-URI (it is the remote target or the
// route set says where to go). key is the request's loopKey as received.
// anchor puts a new call's media through RTPEngine (an in-dialog INVITE
// is anchored when its call is).
func (p *Proxy) forward(req *sip.Request, tx sip.ServerTransaction, targets []Target, inDialog bool, authUser, key string, anchor bool) {
	invite := req.Method == sip.INVITE
	initial := invite && !inDialog
	callID, fromTag := req.CallID().Value(), req.From().Params.GetOr("tag", "")
	if initial {
		p.Calls.Invite(p.callOf(req, authUser))
	}
	if invite {
		p.reply(tx, req, 100, "Trying")
	}
	cancelled := make(chan *sip.Request, 1)
	if invite {
		tx.OnCancel(func(c *sip.Request) {
			// sipgo answers a matching CANCEL (200) and its INVITE (487)
			// without calling a handler: count them here
			p.m.Requests.WithLabelValues("CANCEL").Inc()
			p.m.Responses.WithLabelValues("200").Inc()
			p.m.Responses.WithLabelValues("487").Inc()
			p.countAck(tx) // sipgo sends the 487 after this returns
			select {
			case cancelled <- c:
			default:
			}
		})
	}
	var body sipgo.ClientRequestOption // RTPEngine's SDP, for every copy
	if invite && p.media != nil {
		sdp, reject := p.media.offer(req, inDialog, anchor)
		if reject {
			if initial {
				p.Calls.Final(callID, fromTag, 500, "", "", true)
			}
			p.reply(tx, req, 500, "Media Relay Unavailable")
			return
		}
		if sdp != nil {
			body = func(_ *sipgo.Client, r *sip.Request) error { r.SetBody(sdp); return nil }
		}
	}
	var lastCode int
	var lastReason string
	for i, t := range targets {
		if p.isOwnAddress(t.URI, t.Transport) {
			p.m.Loops.WithLabelValues("target").Inc()
			lastCode, lastReason = 482, "Loop Detected"
			continue
		}
		opts := []sipgo.ClientRequestOption{p.via(key), decMaxForwards}
		if body != nil {
			opts = append(opts, body)
		}
		if initial {
			opts = append(opts, p.recordRoute(req.Transport()))
		}
		fwds, err := p.outgoing(req, t, inDialog, opts)
		if err != nil {
			p.sendFailed("request", err, "method", req.Method, "target", t.URI.String())
			lastCode, lastReason = 503, "Service Unavailable"
			continue
		}
		code, reason, final, fwd, done := p.relay(req, fwds, tx, invite, initial, cancelled, i == len(targets)-1)
		if done {
			if initial && final != nil {
				p.Calls.Final(callID, fromTag, code, reasonHeader(final), hostOf(fwd.Destination()), false)
			}
			return
		}
		lastCode, lastReason = code, reason
	}
	if lastCode == 0 {
		lastCode, lastReason = 503, "Service Unavailable"
	}
	if initial {
		p.Calls.Final(callID, fromTag, lastCode, "", "", true)
	}
	p.reply(tx, req, lastCode, lastReason)
}

// relay runs one client transaction, with the first of fwds (outgoing's
// copies of the request, in order) that can be sent. It returns the final
// code, the copy sent and whether the request is finished (answered
// upstream, or cancelled); not done means try the next target.
func (p *Proxy) relay(req *sip.Request, fwds []*sip.Request, tx sip.ServerTransaction,
	invite, initial bool, cancelled <-chan *sip.Request, last bool) (int, string, *sip.Response, *sip.Request, bool) {
	callID, fromTag := req.CallID().Value(), req.From().Params.GetOr("tag", "")
	timeout := 32 * time.Second // timer F
	if invite {
		timeout = p.cfg.Proxy.InviteTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	var ctxTx sip.ClientTransaction
	var fwd *sip.Request
	for i, f := range fwds {
		t, err := p.client.TransactionRequest(ctx, f, asIs)
		if err == nil {
			ctxTx, fwd = t, f
			break
		}
		if i < len(fwds)-1 {
			// outgoing's TCP copy of a large request: the hop takes no TCP
			p.noTCP.add(f.Destination(), time.Now())
			p.log.Debug("request not sent, trying the next transport", "method", f.Method, "destination", f.Destination(),
				"transport", f.Transport(), "error", err)
			continue
		}
		p.sendFailed("request", err, "method", f.Method, "destination", f.Destination(), "transport", f.Transport())
		return 503, "Service Unavailable", nil, nil, false
	}
	p.m.UACPendingRequests.Inc()
	defer func() {
		p.m.UACPendingRequests.Dec()
		p.m.TransactionDuration.WithLabelValues(fwd.Method.String(), "client").Observe(time.Since(start).Seconds())
	}()
	defer ctxTx.Terminate()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	// a next hop that says nothing at all (not even 100) within
	// failover_timeout is given up for the next target; the last target
	// keeps the full timeout
	var silent <-chan time.Time
	if !last {
		t := time.NewTimer(p.cfg.Proxy.FailoverTimeout)
		defer t.Stop()
		silent = t.C
	}
	answered := false // a final response went upstream
	for {
		select {
		case <-silent:
			p.log.Warn("next hop silent, failing over", "method", fwd.Method, "destination", fwd.Destination(),
				"after", p.cfg.Proxy.FailoverTimeout)
			return 408, "Request Timeout", nil, fwd, false
		case res := <-ctxTx.Responses():
			silent = nil
			if res.StatusCode == 100 {
				continue // ours went already
			}
			if res.StatusCode < 200 {
				if initial {
					p.Calls.Provisional(callID, fromTag)
				}
				p.relayResponse(tx, req, res)
				continue
			}
			if answered {
				// after CANCEL or timeout upstream has its answer; the
				// downstream final (487) only closes this transaction
				return res.StatusCode, res.Reason, res, fwd, true
			}
			if !last && failover(res.StatusCode) {
				return res.StatusCode, res.Reason, res, fwd, false
			}
			p.relayResponse(tx, req, res)
			return res.StatusCode, res.Reason, res, fwd, true
		case c := <-cancelled:
			// sipgo answered the CANCEL (200) and the INVITE (487) upstream
			answered = true
			reason := ""
			if h := c.GetHeader("Reason"); h != nil {
				reason = h.Value()
			}
			if initial {
				p.Calls.Cancelled(callID, fromTag, reason)
				p.Calls.Final(callID, fromTag, 487, reason, hostOf(fwd.Destination()), false)
			}
			p.cancelDownstream(fwd, reason)
			timer.Reset(4 * time.Second) // wait a little for the 487
		case <-timer.C:
			if answered {
				return 487, "Request Terminated", nil, fwd, true
			}
			if invite {
				// nobody answered: CANCEL downstream, 408 upstream
				answered = true
				if initial {
					p.Calls.TimedOut(callID, fromTag)
					p.Calls.Final(callID, fromTag, 408, "", hostOf(fwd.Destination()), false)
				}
				p.cancelDownstream(fwd, "")
				p.reply(tx, req, 408, "Request Timeout")
				timer.Reset(4 * time.Second)
				continue
			}
			return 408, "Request Timeout", nil, fwd, false
		case <-ctxTx.Done():
			if answered {
				return 487, "Request Terminated", nil, fwd, true
			}
			p.log.Warn("no answer from next hop", "method", fwd.Method, "destination", fwd.Destination(), "error", ctxTx.Err())
			return 408, "Request Timeout", nil, fwd, false
		}
	}
}

func failover(code int) bool { return code == 408 || code >= 500 && code < 600 }

// relayResponse sends a downstream response upstream without our Via, to
// where the request came from (a clone would keep the downstream address).
func (p *Proxy) relayResponse(tx sip.ServerTransaction, req *sip.Request, res *sip.Response) {
	up := res.Clone()
	up.RemoveHeader("Via")
	if p.media != nil {
		p.media.answer(up)
	}
	up.SetTransport(req.Transport())
	up.SetSource("")
	up.SetDestination(sip.NewResponseFromRequest(req, res.StatusCode, "", nil).Destination())
	p.respond(tx, up)
}

// cancelDownstream sends CANCEL for a forwarded INVITE (RFC 3261 9.1): the
// same Request-URI, Call-ID, To, From, CSeq number and top Via.
func (p *Proxy) cancelDownstream(invite *sip.Request, reason string) {
	c := sip.NewRequest(sip.CANCEL, invite.Recipient)
	c.SipVersion = invite.SipVersion
	c.AppendHeader(invite.Via().Clone())
	for _, h := range invite.GetHeaders("Route") {
		c.AppendHeader(sip.HeaderClone(h))
	}
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.AppendHeader(sip.HeaderClone(invite.From()))
	c.AppendHeader(sip.HeaderClone(invite.To()))
	c.AppendHeader(sip.HeaderClone(invite.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: invite.CSeq().SeqNo, MethodName: sip.CANCEL})
	if reason != "" {
		c.AppendHeader(sip.NewHeader("Reason", reason))
	}
	c.AppendHeader(sip.NewHeader("Content-Length", "0"))
	c.SetTransport(invite.Transport())
	c.SetDestination(invite.Destination())
	c.Laddr = invite.Laddr
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
		defer cancel()
		ctx2, err := p.client.TransactionRequest(ctx, c, asIs)
		if err != nil {
			p.sendFailed("request", err, "method", sip.CANCEL, "destination", c.Destination())
			return
		}
		defer ctx2.Terminate()
		select {
		case <-ctx2.Responses():
		case <-ctx2.Done():
		case <-ctx.Done():
		}
	}()
}

func reasonHeader(res *sip.Response) string {
	if res == nil {
		return ""
	}
	if h := res.GetHeader("Reason"); h != nil {
		return h.Value()
	}
	return ""
}

// ensureConn makes sure a stream connection to dest exists and is one the
// proxy dialled itself and handed to sipgo through its listener, so that
// its traffic is captured for HEP and counted like accepted connections.
// (sipgo pools connections by remote address and reuses them.)
func (p *Proxy) ensureConn(transport, dest string, timeout time.Duration) error {
	if transport == "udp" {
		return nil
	}
	inj := p.injectors[transport]
	if inj == nil {
		return nil // no listener of that kind: sipgo dials by itself
	}
	if _, err := p.ua.TransportLayer().GetConnection(transport, dest); err == nil {
		return nil
	}
	p.dialMu.Lock()
	if wait, ok := p.dialing[dest]; ok {
		p.dialMu.Unlock()
		<-wait
		return nil
	}
	wait := make(chan struct{})
	p.dialing[dest] = wait
	p.dialMu.Unlock()
	defer func() {
		p.dialMu.Lock()
		delete(p.dialing, dest)
		p.dialMu.Unlock()
		close(wait)
	}()
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if transport == "tls" {
		cfg := p.tlsClient.Clone()
		cfg.ServerName = hostOf(dest)
		conn, err = tls.DialWithDialer(d, "tcp", dest, cfg)
	} else {
		conn, err = d.Dial("tcp", dest)
	}
	if err != nil {
		return errorf("dial %s %s: %v", transport, dest, err)
	}
	if !inj.Inject(conn) {
		return errClosed
	}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err := p.ua.TransportLayer().GetConnection(transport, dest); err == nil {
			return nil
		}
	}
	return errorf("connection to %s not taken up", dest)
}

// onStrayResponse handles a response no client transaction wants: a 2xx
// to INVITE retransmitted after its transaction ended (the callee resends
// it until the caller's ACK arrives) goes upstream statelessly (RFC 3261
// 16.7 step 10, 17.1.1.2); anything else is dropped.
func (p *Proxy) onStrayResponse(res *sip.Response) {
	up := p.strayUpstream(res)
	if up == nil {
		return
	}
	if err := p.srv.WriteResponse(up); err != nil {
		p.sendFailed("response", err, "code", up.StatusCode, "destination", up.Destination())
		return
	}
	p.m.Responses.WithLabelValues(strconv.Itoa(up.StatusCode)).Inc()
}

// strayUpstream is onStrayResponse's decision, apart from the write (a
// socket): the response to relay upstream, addressed to the previous hop,
// or nil to drop it.
func (p *Proxy) strayUpstream(res *sip.Response) *sip.Response {
	via := res.Via()
	if via == nil || !strings.EqualFold(via.Host, p.host) || !p.ourPorts[via.Port] {
		return nil
	}
	if cseq := res.CSeq(); !res.IsSuccess() || cseq == nil || cseq.MethodName != sip.INVITE {
		return nil
	}
	up := res.Clone()
	up.RemoveHeader("Via")
	next := up.Via()
	if next == nil {
		return nil
	}
	if p.media != nil {
		p.media.answer(up) // a retransmission: the rewrite is remembered
	}
	host := next.Host
	if h, ok := next.Params.Get("received"); ok && h != "" {
		host = h
	}
	port := next.Port
	if v, ok := next.Params.Get("rport"); ok && v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			port = n
		}
	}
	if port == 0 {
		port = sip.DefaultPort(next.Transport)
	}
	up.SetTransport(next.Transport)
	up.SetSource("")
	up.SetDestination(net.JoinHostPort(host, strconv.Itoa(port)))
	return up
}
