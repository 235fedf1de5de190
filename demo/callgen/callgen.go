// Package callgen places a steady mix of SIP calls through a proxy and
// answers them itself: one sipgo user agent registers the callees with the
// proxy and calls them through it, so a demo or a test needs no external
// SIP tool. Each callee user stands for one outcome. With Config.Media,
// answered calls carry RTP and RTCP both ways (internal/rtpua) to where
// the proxy's SDP says: RTPEngine's ports when the proxy anchors media.
// Call places one call and returns what became of it, media figures
// included.
package callgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siphon-otel/siphon-otel/internal/rtpua"
)

// Outcome is what a call is made to end in; the callee's user name decides.
type Outcome string

// The outcomes, by callee user.
const (
	Answered       Outcome = "alice"  // answered, the caller hangs up
	AnsweredCallee Outcome = "bob"    // answered, the callee hangs up
	Busy           Outcome = "busy"   // 180 then 486
	Cancelled      Outcome = "ring"   // rings until the caller cancels (487)
	Failed         Outcome = "fail"   // 503 at once
	NotFound       Outcome = "nobody" // never registered: the proxy answers 404
)

// DefaultMix is the share of each outcome.
var DefaultMix = map[Outcome]int{Answered: 40, AnsweredCallee: 20, Busy: 15, Cancelled: 10, Failed: 10, NotFound: 5}

// Config configures a Generator.
type Config struct {
	Proxy string // the proxy's UDP address, host:port
	// Listen is our UDP address (port 0: any free port); its host is also
	// where the media endpoints listen.
	Listen   string
	Rate     float64       // calls started per second; 0: none but those placed with Call
	Hold     time.Duration // talk time of answered calls (randomised +-50%)
	Ring     time.Duration // ringing before the callee answers, or before the caller cancels
	MaxCalls int           // calls in progress at most; above it a tick is skipped
	Mix      map[Outcome]int
	Media    *Media // nil: the SDP names a port nobody listens on, and no media flows
	Logger   *slog.Logger
}

// Media makes answered calls carry media: the caller offers an rtpua
// endpoint, the callee answers with one, and from the ACK to the hangup
// each sends RTP and RTCP to the address the SDP it received names.
type Media struct {
	// Codecs are offered by the caller and taken by the callee, in order
	// (default PCMU).
	Codecs       []rtpua.Codec
	RTCPInterval time.Duration // default 1 s
	// Impair is what the network does to both sides' RTP of the generator's
	// calls, by callee user (none: clean); each call draws its own seed.
	Impair map[Outcome]rtpua.Impairment
}

// Stats counts calls by how they ended, as the caller saw them.
type Stats struct {
	Placed, Answered, Busy, Cancelled, Failed, NotFound, Errors, Active atomic.Int64
}

// Generator is a running call generator.
type Generator struct {
	cfg    Config
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	dc     *sipgo.DialogClientCache
	ds     *sipgo.DialogServerCache
	addr   *net.UDPAddr
	host   netip.Addr
	conn   net.PacketConn
	proxy  sip.Uri
	stats  Stats
	// wg counts the call loop and the calls, both sides; Add only
	// through track, so that none comes after Stop's Wait began
	wg      sync.WaitGroup
	trackMu sync.Mutex
	stopped bool
	serving sync.WaitGroup // the SIP server
	stop    chan struct{}
	rng     *rand.Rand
	rngMu   sync.Mutex
	picks   []Outcome
	calls   sync.Map // Call-ID -> *placed: our own calls, for the callee's side
}

// placed is one call of ours while it is up: what the callee's side
// should do, and where it leaves its media figures.
type placed struct {
	opts   CallOptions
	callee chan rtpua.Stats // buffered: the callee's side never waits
}

var staticSDP = []byte("v=0\r\no=demo 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")

// Start listens, registers the callees and starts placing calls.
func Start(ctx context.Context, cfg Config) (*Generator, error) {
	if cfg.Rate < 0 {
		return nil, errors.New("callgen: rate must not be negative")
	}
	if cfg.Mix == nil {
		cfg.Mix = DefaultMix
	}
	if cfg.MaxCalls == 0 {
		cfg.MaxCalls = 500
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if m := cfg.Media; m != nil {
		m2 := *m
		if len(m2.Codecs) == 0 {
			m2.Codecs = []rtpua.Codec{rtpua.PCMU}
		}
		for o, imp := range m2.Impair {
			if err := imp.Validate(); err != nil {
				return nil, fmt.Errorf("callgen: impairment of %s: %w", o, err)
			}
		}
		cfg.Media = &m2
	}
	host, portStr, err := net.SplitHostPort(cfg.Proxy)
	if err != nil {
		return nil, fmt.Errorf("callgen: proxy %q: %w", cfg.Proxy, err)
	}
	pport, _ := strconv.Atoi(portStr)
	g := &Generator{cfg: cfg, stop: make(chan struct{}), proxy: sip.Uri{Host: host, Port: pport},
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))}
	for o, w := range cfg.Mix {
		for range w {
			g.picks = append(g.picks, o)
		}
	}
	if len(g.picks) == 0 {
		return nil, errors.New("callgen: empty mix")
	}
	// Bind first so that the contact we register is the port we listen on.
	conn, err := net.ListenPacket("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("callgen: listen %s: %w", cfg.Listen, err)
	}
	g.conn, g.addr = conn, conn.LocalAddr().(*net.UDPAddr)
	g.host = g.addr.AddrPort().Addr().Unmap()
	if g.ua, err = sipgo.NewUA(sipgo.WithUserAgent("siphon-demo/1.0")); err != nil {
		conn.Close()
		return nil, err
	}
	if g.srv, err = sipgo.NewServer(g.ua, sipgo.WithServerLogger(cfg.Logger)); err != nil {
		conn.Close()
		return nil, err
	}
	if g.client, err = sipgo.NewClient(g.ua, sipgo.WithClientHostname(g.addr.IP.String()),
		sipgo.WithClientPort(g.addr.Port), sipgo.WithClientLogger(cfg.Logger)); err != nil {
		conn.Close()
		return nil, err
	}
	contact := sip.ContactHeader{Address: sip.Uri{User: "demo", Host: g.addr.IP.String(), Port: g.addr.Port}}
	g.dc = sipgo.NewDialogClientCache(g.client, contact)
	g.ds = sipgo.NewDialogServerCache(g.client, contact)
	g.srv.OnInvite(g.onInvite)
	g.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = g.ds.ReadAck(req, tx) })
	g.srv.OnBye(g.onBye)
	g.serving.Add(1)
	go func() {
		defer g.serving.Done()
		if err := g.srv.ServeUDP(conn); err != nil && !errors.Is(err, net.ErrClosed) {
			cfg.Logger.Warn("callgen: serve", "err", err)
		}
	}()
	for _, o := range []Outcome{Answered, AnsweredCallee, Busy, Cancelled, Failed} {
		if err := g.register(ctx, string(o)); err != nil {
			g.Stop(context.Background())
			return nil, err
		}
	}
	if cfg.Rate > 0 && g.track() {
		go g.loop()
	}
	return g, nil
}

// Addr is our SIP address.
func (g *Generator) Addr() string { return g.addr.String() }

// Stats returns the live counters.
func (g *Generator) Stats() *Stats { return &g.stats }

func (g *Generator) register(ctx context.Context, user string) error {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{User: user, Host: g.proxy.Host, Port: g.proxy.Port})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{User: user, Host: g.addr.IP.String(), Port: g.addr.Port}})
	req.AppendHeader(sip.NewHeader("Expires", "3600"))
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := g.client.Do(rctx, req, sipgo.ClientRequestRegisterBuild)
	if err != nil {
		return fmt.Errorf("callgen: register %s: %w", user, err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("callgen: register %s: %d %s", user, res.StatusCode, res.Reason)
	}
	return nil
}

func (g *Generator) jitter(d time.Duration) time.Duration {
	g.rngMu.Lock()
	defer g.rngMu.Unlock()
	return d/2 + time.Duration(g.rng.Int64N(int64(d)+1))
}

func (g *Generator) pick() Outcome {
	g.rngMu.Lock()
	defer g.rngMu.Unlock()
	return g.picks[g.rng.IntN(len(g.picks))]
}

func (g *Generator) seed() uint64 {
	g.rngMu.Lock()
	defer g.rngMu.Unlock()
	return g.rng.Uint64()
}

func (g *Generator) loop() {
	defer g.wg.Done()
	t := time.NewTicker(time.Duration(float64(time.Second) / g.cfg.Rate))
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			if g.stats.Active.Load() >= int64(g.cfg.MaxCalls) {
				continue
			}
			o := g.pick()
			opts := CallOptions{To: o, Hold: g.jitter(g.cfg.Hold)}
			if g.cfg.Media != nil {
				opts.Impair = g.cfg.Media.Impair[o]
				opts.Impair.Seed = g.seed()
			}
			go func() {
				if _, err := g.Call(context.Background(), opts); err != nil {
					g.cfg.Logger.Debug("callgen: call", "err", err)
				}
			}()
		}
	}
}

// CallOptions shape one call.
type CallOptions struct {
	To Outcome // the callee user, which decides how the call ends
	// Hold is the talk time of an answered call, after which the caller
	// (or, calling AnsweredCallee, the callee) hangs up; default
	// Config.Hold.
	Hold time.Duration
	// Impair is what the network does to both sides' RTP (with
	// Config.Media).
	Impair rtpua.Impairment
}

// CallResult is what became of a call.
type CallResult struct {
	CallID string
	// Status is the final response to the INVITE: 200 when answered, 487
	// when the caller cancelled (whether or not the 487 came).
	Status int
	// Caller and Callee are the media figures of an answered call's two
	// endpoints (with Config.Media; Callee is nil if the callee's side did
	// not hand them over in time).
	Caller, Callee *rtpua.Stats
}

// calleeWait bounds the wait for the callee's media figures after the
// hangup.
const calleeWait = 5 * time.Second

// Call places one call, plays the caller's part to its end (ringing,
// cancelling, talking, hanging up as opts.To says; at once when the
// generator stops) and returns what became of it. It counts the call in
// Stats. err is a failure to place or end it, not a failure response.
func (g *Generator) Call(ctx context.Context, opts CallOptions) (res CallResult, err error) {
	if !g.track() {
		return res, errStopped
	}
	defer g.wg.Done()
	g.stats.Active.Add(1)
	g.stats.Placed.Add(1)
	defer g.stats.Active.Add(-1)
	defer func() {
		switch code := res.Status; {
		case err != nil:
			g.stats.Errors.Add(1)
		case code == 200:
			g.stats.Answered.Add(1)
		case code == 486 || code == 600:
			g.stats.Busy.Add(1)
		case code == 404 || code == 480:
			g.stats.NotFound.Add(1)
		case code == 487:
			g.stats.Cancelled.Add(1)
		default:
			g.stats.Failed.Add(1)
		}
	}()
	if opts.Hold == 0 {
		opts.Hold = g.cfg.Hold
	}
	if err := opts.Impair.Validate(); err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res.CallID = g.newCallID()
	body := staticSDP
	var ep *rtpua.Endpoint
	if m := g.cfg.Media; m != nil {
		if ep, err = rtpua.Listen(g.host, m.Codecs...); err != nil {
			return res, fmt.Errorf("callgen: %w", err)
		}
		defer func() {
			if res.Caller == nil {
				ep.Stop() // the call never got to media
			}
		}()
		body = ep.Offer(uint64(time.Now().UnixNano()))
	}
	pl := &placed{opts: opts, callee: make(chan rtpua.Stats, 1)}
	g.calls.Store(res.CallID, pl)
	defer g.calls.Delete(res.CallID)

	to := g.proxy
	to.User = string(opts.To)
	callID := sip.CallIDHeader(res.CallID)
	sess, err := g.dc.Invite(ctx, to, body, sip.NewHeader("Content-Type", "application/sdp"), &callID)
	if err != nil {
		return res, fmt.Errorf("callgen: invite: %w", err)
	}
	defer sess.Close()
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	if opts.To == Cancelled {
		// give up after ringing, or at once when stopping
		go func() {
			select {
			case <-time.After(g.jitter(g.cfg.Ring)):
			case <-g.stop:
			case <-wctx.Done():
			}
			wcancel()
		}()
	}
	err = sess.WaitAnswer(wctx, sipgo.AnswerOptions{})
	var resp *sipgo.ErrDialogResponse
	switch {
	case err == nil:
	case errors.As(err, &resp):
		res.Status = resp.Res.StatusCode
		return res, nil
	case wctx.Err() != nil && ctx.Err() == nil:
		res.Status = 487
		return res, nil
	default:
		return res, fmt.Errorf("callgen: waiting for the answer: %w", err)
	}
	res.Status = 200
	var (
		remote rtpua.Remote
		codec  rtpua.Codec
	)
	if ep != nil {
		remote, err = rtpua.ParseSDP(sess.InviteResponse.Body())
		if err == nil {
			codec, err = ep.Choose(remote)
		}
	}
	if aerr := sess.Ack(ctx); aerr != nil {
		return res, fmt.Errorf("callgen: ack: %w", aerr)
	}
	if err != nil {
		g.hangUp(sess)
		return res, fmt.Errorf("callgen: the answer's SDP: %w", err)
	}
	if ep != nil {
		cfg := rtpua.Config{RTCPInterval: g.cfg.Media.RTCPInterval, Impair: opts.Impair}
		if err := ep.Start(remote, codec, cfg); err != nil {
			g.hangUp(sess)
			return res, fmt.Errorf("callgen: %w", err)
		}
	}
	stopMedia := func() {
		if ep != nil && res.Caller == nil {
			s := ep.Stop()
			res.Caller = &s
		}
	}
	if opts.To == AnsweredCallee {
		select { // the callee hangs up; stopping hangs up from our side
		case <-sess.Context().Done():
			stopMedia()
		case <-g.stop:
			stopMedia()
			g.hangUp(sess)
		}
	} else {
		select {
		case <-time.After(opts.Hold):
			stopMedia()
			g.hangUp(sess)
		case <-g.stop:
			stopMedia()
			g.hangUp(sess)
		case <-sess.Context().Done():
			stopMedia()
		}
	}
	if ep != nil {
		select {
		case s := <-pl.callee:
			res.Callee = &s
		case <-time.After(calleeWait):
		}
	}
	return res, nil
}

var errStopped = errors.New("callgen: stopped")

// track counts a call (or the loop) in g.wg, which Stop waits for, unless
// Stop has begun: a WaitGroup must not go up from zero while a Wait runs.
func (g *Generator) track() bool {
	g.trackMu.Lock()
	defer g.trackMu.Unlock()
	if g.stopped {
		return false
	}
	g.wg.Add(1)
	return true
}

// hangUp sends the BYE of an answered call.
func (g *Generator) hangUp(sess *sipgo.DialogClientSession) {
	bctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sess.Bye(bctx); err != nil && sess.Context().Err() == nil {
		g.cfg.Logger.Debug("callgen: bye", "err", err)
	}
}

func (g *Generator) newCallID() string {
	g.rngMu.Lock()
	defer g.rngMu.Unlock()
	return fmt.Sprintf("%016x@%s", g.rng.Uint64(), g.host)
}

// onInvite plays the callee's part.
func (g *Generator) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if !g.track() {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil))
		return
	}
	defer g.wg.Done()
	dlg, err := g.ds.ReadInvite(req, tx)
	if err != nil {
		return
	}
	defer dlg.Close()
	user := Outcome(req.Recipient.User)
	// a call of ours says how to play it; another one plays by the user
	opts := CallOptions{To: user, Hold: g.jitter(g.cfg.Hold)}
	var pl *placed
	if id := req.CallID(); id != nil {
		if v, ok := g.calls.Load(id.Value()); ok {
			pl = v.(*placed)
			opts = pl.opts
		}
	}
	if user == Failed {
		_ = dlg.Respond(503, "Service Unavailable", nil)
		return
	}
	if err := dlg.Respond(180, "Ringing", nil); err != nil {
		return
	}
	switch user {
	case Busy:
		select {
		case <-time.After(g.jitter(g.cfg.Ring / 2)):
			_ = dlg.Respond(486, "Busy Here", nil)
		case <-dlg.Context().Done():
		}
		return
	case Cancelled:
		select { // the caller cancels; sipgo answers 487
		case <-dlg.Context().Done():
		case <-time.After(time.Minute):
			_ = dlg.Respond(480, "Temporarily Unavailable", nil)
		}
		return
	}
	select {
	case <-time.After(g.jitter(g.cfg.Ring / 2)):
	case <-dlg.Context().Done():
		return
	}
	ep, err := g.answer(dlg, req, opts)
	if err != nil {
		g.cfg.Logger.Debug("callgen: answer", "err", err)
		return
	}
	// the stream ends before the call does: on the caller's BYE, or
	// before our own
	stopMedia := func() {
		if ep != nil {
			s := ep.Stop()
			if pl != nil {
				pl.callee <- s
			}
			ep = nil
		}
	}
	defer stopMedia()
	if user != AnsweredCallee {
		select { // until the caller's BYE, which stopping sends
		case <-dlg.Context().Done():
		case <-g.stop:
			// our own caller's BYE may be the one stopping cannot send
			// any more: the media ends here, not at its MaxDuration
		}
		return
	}
	select {
	case <-time.After(opts.Hold):
	case <-dlg.Context().Done():
		return
	case <-g.stop:
	}
	stopMedia()
	bctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = dlg.Bye(bctx)
}

// ackWait bounds the wait for the caller's ACK (RFC 3261's 64*T1).
const ackWait = 32 * time.Second

// answer answers 200, and with Config.Media starts the callee's media
// once the ACK came: an endpoint answering the offer's first format it
// takes, sending to where the offer says. An offer it cannot take is
// answered 488.
func (g *Generator) answer(dlg *sipgo.DialogServerSession, req *sip.Request, opts CallOptions) (*rtpua.Endpoint, error) {
	m := g.cfg.Media
	if m == nil {
		return nil, dlg.RespondSDP(staticSDP)
	}
	remote, err := rtpua.ParseSDP(req.Body())
	if err != nil {
		_ = dlg.Respond(488, "Not Acceptable Here", nil)
		return nil, err
	}
	ep, err := rtpua.Listen(g.host, m.Codecs...)
	if err != nil {
		_ = dlg.Respond(500, "Server Internal Error", nil)
		return nil, err
	}
	codec, err := ep.Choose(remote)
	if err != nil {
		ep.Stop()
		_ = dlg.Respond(488, "Not Acceptable Here", nil)
		return nil, err
	}
	states := dlg.StateRead()
	if err := dlg.RespondSDP(rtpua.SDP(ep.RTPAddr(), uint64(time.Now().UnixNano()), codec)); err != nil {
		ep.Stop()
		return nil, err
	}
	// media from the ACK on: RTPEngine has the answer by then
	timeout := time.After(ackWait)
	for dlg.LoadState() != sip.DialogStateConfirmed {
		select {
		case <-states:
		case <-dlg.Context().Done():
			ep.Stop()
			return nil, errors.New("callgen: the call ended before the ACK")
		case <-timeout:
			ep.Stop()
			return nil, errors.New("callgen: no ACK")
		}
	}
	// the same network both ways, but its own draws: the directions'
	// losses and delays are independent
	imp := opts.Impair
	imp.Seed++
	if err := ep.Start(remote, codec, rtpua.Config{RTCPInterval: m.RTCPInterval, Impair: imp}); err != nil {
		ep.Stop()
		return nil, err
	}
	return ep, nil
}

func (g *Generator) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if err := g.ds.ReadBye(req, tx); err == nil {
		return
	}
	if err := g.dc.ReadBye(req, tx); err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	}
}

// Stop stops placing calls, hangs up or cancels the calls in progress and
// waits for them (at most until ctx ends).
func (g *Generator) Stop(ctx context.Context) error {
	g.trackMu.Lock()
	if !g.stopped {
		g.stopped = true
		close(g.stop)
	}
	g.trackMu.Unlock()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("callgen: %d calls still in progress: %w", g.stats.Active.Load(), ctx.Err())
	}
	_ = g.ua.Close()
	_ = g.conn.Close() // ours: the UA does not close a connection it was given
	g.serving.Wait()
	return err
}
