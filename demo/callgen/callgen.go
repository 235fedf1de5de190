// Package callgen places a steady mix of SIP calls through a proxy and
// answers them itself: one sipgo user agent registers the callees with the
// proxy and calls them through it, so a demo or a test needs no external
// SIP tool. Each callee user stands for one outcome.
package callgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
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
	Proxy    string        // the proxy's UDP address, host:port
	Listen   string        // our UDP address (port 0: any free port)
	Rate     float64       // calls started per second
	Hold     time.Duration // talk time of answered calls (randomised +-50%)
	Ring     time.Duration // ringing before the callee answers, or before the caller cancels
	MaxCalls int           // calls in progress at most; above it a tick is skipped
	Mix      map[Outcome]int
	Logger   *slog.Logger
}

// Stats counts calls by how they ended, as the caller saw them.
type Stats struct {
	Placed, Answered, Busy, Cancelled, Failed, NotFound, Errors, Active atomic.Int64
}

// Generator is a running call generator.
type Generator struct {
	cfg      Config
	ua       *sipgo.UserAgent
	srv      *sipgo.Server
	client   *sipgo.Client
	dc       *sipgo.DialogClientCache
	ds       *sipgo.DialogServerCache
	addr     *net.UDPAddr
	conn     net.PacketConn
	proxy    sip.Uri
	stats    Stats
	wg       sync.WaitGroup // calls and the call loop
	serving  sync.WaitGroup // the SIP server
	stopOnce sync.Once
	stop     chan struct{}
	rng      *rand.Rand
	rngMu    sync.Mutex
	picks    []Outcome
}

var sdp = []byte("v=0\r\no=demo 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")

// Start listens, registers the callees and starts placing calls.
func Start(ctx context.Context, cfg Config) (*Generator, error) {
	if cfg.Rate <= 0 {
		return nil, errors.New("callgen: rate must be positive")
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
	g.wg.Add(1)
	go g.loop()
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
			g.stats.Active.Add(1)
			g.stats.Placed.Add(1)
			g.wg.Add(1)
			go func() {
				defer g.wg.Done()
				defer g.stats.Active.Add(-1)
				g.call(g.pick())
			}()
		}
	}
}

// call places one call and plays the caller's part.
func (g *Generator) call(o Outcome) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	to := g.proxy
	to.User = string(o)
	sess, err := g.dc.Invite(ctx, to, sdp, sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		g.fail(err)
		return
	}
	defer sess.Close()
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	if o == Cancelled {
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
		switch code := resp.Res.StatusCode; {
		case code == 486 || code == 600:
			g.stats.Busy.Add(1)
		case code == 404 || code == 480:
			g.stats.NotFound.Add(1)
		case code == 487:
			g.stats.Cancelled.Add(1)
		default:
			g.stats.Failed.Add(1)
		}
		return
	case wctx.Err() != nil && ctx.Err() == nil:
		g.stats.Cancelled.Add(1)
		return
	default:
		g.fail(err)
		return
	}
	if err := sess.Ack(ctx); err != nil {
		g.fail(err)
		return
	}
	g.stats.Answered.Add(1)
	if o == AnsweredCallee {
		select { // the callee hangs up; stopping hangs up from our side
		case <-sess.Context().Done():
			return
		case <-g.stop:
		}
	} else {
		select {
		case <-time.After(g.jitter(g.cfg.Hold)):
		case <-g.stop:
		case <-sess.Context().Done():
			return
		}
	}
	bctx, bcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer bcancel()
	if err := sess.Bye(bctx); err != nil && sess.Context().Err() == nil {
		g.cfg.Logger.Debug("callgen: bye", "err", err)
	}
}

func (g *Generator) fail(err error) {
	g.stats.Errors.Add(1)
	g.cfg.Logger.Debug("callgen: call", "err", err)
}

// onInvite plays the callee's part.
func (g *Generator) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	dlg, err := g.ds.ReadInvite(req, tx)
	if err != nil {
		return
	}
	defer dlg.Close()
	user := Outcome(req.Recipient.User)
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
	if err := dlg.RespondSDP(sdp); err != nil {
		return
	}
	if user != AnsweredCallee {
		<-dlg.Context().Done() // until the caller's BYE
		return
	}
	select {
	case <-time.After(g.jitter(g.cfg.Hold)):
	case <-dlg.Context().Done():
		return
	case <-g.stop:
	}
	bctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = dlg.Bye(bctx)
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
	g.stopOnce.Do(func() { close(g.stop) })
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
