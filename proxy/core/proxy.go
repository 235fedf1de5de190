// Package core is sipproxy's SIP engine: a stateful proxy and registrar on
// github.com/emiago/sipgo (RFC 3261 section 16), with SIPhon's telemetry.
package core

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/siphon-otel/siphon-otel/proxy/calls"
	"github.com/siphon-otel/siphon-otel/proxy/cdrsink"
	"github.com/siphon-otel/siphon-otel/proxy/config"
	"github.com/siphon-otel/siphon-otel/proxy/digest"
	"github.com/siphon-otel/siphon-otel/proxy/heptrace"
	"github.com/siphon-otel/siphon-otel/proxy/metrics"
	"github.com/siphon-otel/siphon-otel/proxy/pool"
	"github.com/siphon-otel/siphon-otel/proxy/registrar"
	"github.com/siphon-otel/siphon-otel/proxy/stream"
)

// Options are what New needs.
type Options struct {
	Config  *config.Config
	Metrics *metrics.Set
	Logger  *slog.Logger
	// Handler routes out-of-dialog requests; nil uses the YAML Router.
	Handler Handler
	// Wrap, when set, wraps the handler (the YAML Router when Handler is
	// nil): code around the default routing.
	Wrap func(Handler) Handler
	// CDR and Tracer are optional.
	CDR    *cdrsink.Sink
	Tracer *heptrace.Tracer
}

// Proxy is a running proxy.
type Proxy struct {
	cfg     *config.Config
	m       *metrics.Set
	log     *slog.Logger
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	Reg     *registrar.Registrar
	auth    *digest.Authenticator
	handler Handler
	pool    *pool.Pool
	Calls   *calls.Tracker
	cdr     *cdrsink.Sink
	tracer  *heptrace.Tracer
	limiter *limiter
	media   *media // nil without rtpengine.instances

	host      string          // advertised host, in Via and Record-Route
	ourHosts  map[string]bool // hosts that mean "this proxy"
	ourPorts  map[int]bool    // ports we listen on
	wildcard  bool            // a listener on every address
	domains   map[string]bool // domain.local
	listeners []io_closer
	injectors map[string]*stream.Listener // tcp/tls listeners that take dialled connections
	udpLaddr  sip.Addr                    // the UDP listener requests leave from
	ports     map[string]int              // first listening port per transport, for Via and Record-Route
	tlsClient *tls.Config                 // verifies next hops over TLS
	dialMu    sync.Mutex
	dialing   map[string]chan struct{}

	serial        atomic.Uint64 // tells the branches of one request's copies apart
	sendWarn      throttle      // messages not sent
	nonceWarn     throttle      // digest nonces at their limit
	refusedWarn   throttle      // connections past max_connections
	handshakeWarn throttle      // TLS handshakes failed
	acceptWarn    throttle      // accept errors retried
	noTCP         hopSet        // next hops that took no TCP for a large request

	draining atomic.Bool
	inflight atomic.Int64 // requests still being handled (Drain waits for 0)
	ackWaits sync.Map     // sip.ServerTransaction -> chan struct{}: see countAck
	closed   chan struct{}
	bg       sync.WaitGroup
}

type io_closer interface{ Close() error }

// New builds the proxy; Start opens its listeners.
func New(o Options) (*Proxy, error) {
	cfg := o.Config
	// sipgo reads datagrams into 32 KiB buffers and would truncate a
	// legal larger one; SIP over UDP can carry up to 65535 bytes
	sip.TransportBufferReadSize = maxDatagram
	// sipgo refuses UDP messages past 1300 bytes, answers included; the
	// proxy applies RFC 3261 18.1.1 to requests itself (send.go)
	sip.UDPMTUSize = maxDatagram + 200
	p := &Proxy{cfg: cfg, m: o.Metrics, log: o.Logger, cdr: o.CDR, tracer: o.Tracer,
		Reg: registrar.New(), ourHosts: map[string]bool{}, ourPorts: map[int]bool{}, domains: map[string]bool{},
		injectors: map[string]*stream.Listener{}, ports: map[string]int{}, dialing: map[string]chan struct{}{}, closed: make(chan struct{})}
	p.Reg.OnCount = func(n int) { p.m.RegistrationsActive.Set(float64(n)) }
	for _, d := range cfg.Domain.Local {
		p.domains[strings.ToLower(d)] = true
	}
	p.host = cfg.AdvertisedAddress
	for i, group := range [][]string{cfg.Listen.UDP, cfg.Listen.TCP, cfg.Listen.TLS} {
		for _, a := range group {
			h, port, _ := net.SplitHostPort(a)
			n, _ := strconv.Atoi(port)
			p.ourPorts[n] = true
			if kind := [...]string{"udp", "tcp", "tls"}[i]; p.ports[kind] == 0 {
				p.ports[kind] = n
			}
			if h == "" || h == "0.0.0.0" || h == "::" {
				p.wildcard = true
			} else {
				p.ourHosts[strings.ToLower(h)] = true
				if p.host == "" {
					p.host = h
				}
			}
		}
	}
	if p.host == "" {
		p.host = "127.0.0.1"
	}
	p.ourHosts[strings.ToLower(p.host)] = true
	if cfg.Registrar.Credentials != "" {
		realm := cfg.Registrar.Realm
		if realm == "" {
			realm = cfg.Domain.Local[0]
		}
		creds, err := digest.Load(cfg.Registrar.Credentials, realm)
		if err != nil {
			return nil, err
		}
		p.auth = digest.New(realm, creds)
	}
	p.tlsClient = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLS.CAFile != "" {
		pem, err := os.ReadFile(cfg.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("core: tls.ca_file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("core: tls.ca_file %s: no PEM certificate", cfg.TLS.CAFile)
		}
		p.tlsClient.RootCAs = roots
	}
	p.handler = o.Handler
	if p.handler == nil {
		p.handler = &Router{Routes: cfg.Routes, Reg: p.Reg, Auth: p.auth}
	}
	if o.Wrap != nil {
		p.handler = o.Wrap(p.handler)
	}
	if cfg.Limits.RequestsPerSecondPerIP > 0 {
		p.limiter = newLimiter(cfg.Limits.RequestsPerSecondPerIP, cfg.Limits.Burst)
	}
	var emit func(cdrsink.Record)
	if p.cdr != nil && cfg.CDR.Enabled && cfg.CDR.AutoEmit {
		emit = func(r cdrsink.Record) { p.cdr.Emit(r) }
	}

	core, ceiling := pool.Sizes(cfg.Script.SyncPoolSize, cfg.Script.SyncPoolMax)
	p.m.PoolMax.Set(float64(ceiling))
	p.pool = pool.New(core, ceiling, cfg.Script.ExecutorQueueCapacity, poolObserver{p.m})

	// sipgo logs what it cannot parse; that is our malformed-message count
	sipLog := slog.New(&countingHandler{Handler: p.log.Handler(), malformed: p.m.MalformedMessages})
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("sipproxy"),
		sipgo.WithUserAgentHostname(p.host),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog),
			sip.WithTransactionLayerUnhandledResponseHandler(p.onStrayResponse)),
	)
	if err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	p.ua = ua
	if p.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(sipLog)); err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	if p.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(p.host), sipgo.WithClientLogger(sipLog)); err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.BYE, sip.CANCEL, sip.REGISTER, sip.OPTIONS, sip.INFO,
		sip.UPDATE, sip.PRACK, sip.MESSAGE, sip.SUBSCRIBE, sip.NOTIFY, sip.REFER, sip.PUBLISH} {
		p.srv.OnRequest(m, p.onRequest)
	}
	p.srv.OnAck(p.onAck)
	p.srv.OnNoRoute(p.onRequest)
	// last: nothing after it fails, which would leave its sockets open
	if len(cfg.RTPEngine.Instances) > 0 {
		if p.media, err = newMedia(p); err != nil {
			p.pool.Close()
			_ = p.ua.Close()
			return nil, err
		}
	}
	p.Calls = p.newTracker(emit)
	return p, nil
}

// Start opens every listener; listeners that fail close those opened.
func (p *Proxy) Start() error {
	if err := p.start(); err != nil {
		p.closeListeners()
		return err
	}
	p.bg.Add(1)
	go p.housekeeping()
	return nil
}

func (p *Proxy) start() error {
	for _, a := range p.cfg.Listen.UDP {
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			return fmt.Errorf("core: listen udp %s: %w", a, err)
		}
		p.listeners = append(p.listeners, pc)
		if p.udpLaddr.IP == nil {
			ua := pc.LocalAddr().(*net.UDPAddr)
			p.udpLaddr = sip.Addr{IP: ua.IP, Port: ua.Port}
			// port 0 in the config: the kernel chose
			p.ports["udp"] = ua.Port
		}
		p.ourPorts[pc.LocalAddr().(*net.UDPAddr).Port] = true
		var conn net.PacketConn = pc
		if p.tracer != nil {
			conn = &heptrace.PacketConn{PacketConn: pc, Obs: p.tracer}
		}
		p.m.ConnectionsActive.WithLabelValues("UDP").Set(0)
		go func() { _ = p.srv.ServeUDP(conn) }()
	}
	var tlsCfg *tls.Config
	if len(p.cfg.Listen.TLS) > 0 {
		cert, err := tls.LoadX509KeyPair(p.cfg.TLS.CertFile, p.cfg.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("core: tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var obs heptrace.Observer
	if p.tracer != nil {
		obs = p.tracer
	}
	for kind, addrs := range map[string][]string{"tcp": p.cfg.Listen.TCP, "tls": p.cfg.Listen.TLS} {
		if len(addrs) == 0 {
			continue // no series for a transport not served
		}
		settings := p.streamSettings(kind, obs)
		if kind == "tls" {
			settings.TLS = tlsCfg
		}
		for _, a := range addrs {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				return fmt.Errorf("core: listen %s %s: %w", kind, a, err)
			}
			if _, ok := p.injectors[kind]; !ok {
				p.ports[kind] = ln.Addr().(*net.TCPAddr).Port
			}
			p.ourPorts[ln.Addr().(*net.TCPAddr).Port] = true
			sl := stream.Listen(ln, settings)
			p.listeners = append(p.listeners, sl)
			if _, ok := p.injectors[kind]; !ok {
				p.injectors[kind] = sl
			}
			if kind == "tls" {
				go func() { _ = p.srv.ServeTLS(sl) }()
			} else {
				go func() { _ = p.srv.ServeTCP(sl) }()
			}
		}
	}
	return nil
}

// streamSettings are the limits and telemetry of kind's (tcp or tls)
// listeners.
func (p *Proxy) streamSettings(kind string, obs heptrace.Observer) stream.Settings {
	label := strings.ToUpper(kind)
	lim := p.cfg.Limits.TCP
	if kind == "tls" {
		lim = p.cfg.Limits.TLS.ConnLimits
	}
	active := p.m.ConnectionsActive.WithLabelValues(label)
	refused := p.m.ConnectionsRefused.WithLabelValues(label)
	idle := p.m.ConnectionsIdle.WithLabelValues(label)
	// the series exist at 0 from the start, so rate() sees the first one
	active.Set(0)
	key := "limits." + kind
	return stream.Settings{Transport: kind, MaxConnections: lim.MaxConnections, IdleTimeout: lim.IdleTimeout,
		HandshakeTimeout: p.cfg.Limits.TLS.HandshakeTimeout, Obs: obs,
		Events: stream.Events{
			Active: func(d int) { active.Add(float64(d)) },
			Refused: func(peer net.Addr) {
				refused.Inc()
				p.warn(&p.refusedWarn, "connection refused: "+key+".max_connections open on the listener",
					"transport", kind, "max_connections", lim.MaxConnections, "peer", peer.String())
			},
			Idle: func(peer net.Addr) {
				idle.Inc()
				p.log.Debug("idle connection closed", "transport", kind, "idle_timeout", lim.IdleTimeout, "peer", peer.String())
			},
			HandshakeFailed: func(peer net.Addr, err error) {
				p.m.HandshakeFailures.Inc()
				p.warn(&p.handshakeWarn, "TLS handshake failed; the connection was closed",
					"handshake_timeout", p.cfg.Limits.TLS.HandshakeTimeout, "peer", peer.String(), "error", err)
			},
			AcceptRetried: func(err error) {
				p.warn(&p.acceptWarn, "accepting connections failed; retrying", "transport", kind, "error", err)
			},
		}}
}

func (p *Proxy) closeListeners() {
	for _, l := range p.listeners {
		_ = l.Close()
	}
	p.listeners = nil
}

// housekeeping sweeps expired registrations (REGISTER CDRs with
// reg_event expired) and calls whose BYE never came.
func (p *Proxy) housekeeping() {
	defer p.bg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.closed:
			return
		case <-t.C:
			for _, gone := range p.Reg.Sweep() {
				p.registerCDR(calls.Register{
					CallID: gone.Contact.CallID, FromURI: gone.AoR, ToURI: gone.AoR, RURI: gone.AoR,
					SourceIP: hostOf(gone.Contact.Source), DestinationIP: p.host, Transport: gone.Contact.Transport,
					UserAgent: gone.Contact.UserAgent, Code: 200, Event: string(registrar.Expired), Time: time.Now(),
				})
			}
			p.Calls.Expire(12 * time.Hour)
		}
	}
}

// Draining reports whether SIGTERM started the drain.
func (p *Proxy) Draining() bool { return p.draining.Load() }

// Drain stops taking new calls (new out-of-dialog INVITEs get 503) while
// in-dialog traffic goes on, and returns when no call or transaction is
// left or ctx ends.
func (p *Proxy) Drain(ctx context.Context) error {
	p.draining.Store(true)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if len(p.Calls.Active()) == 0 && p.inflight.Load() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close stops the listeners and the pool.
func (p *Proxy) Close() error {
	select {
	case <-p.closed:
		return nil
	default:
	}
	close(p.closed)
	p.closeListeners()
	err := p.ua.Close()
	p.pool.Close()
	p.bg.Wait()
	if p.media != nil {
		p.media.close()
	}
	return err
}

// newTracker is the call tracker; a call's end also ends its media
// session.
func (p *Proxy) newTracker(emit func(cdrsink.Record)) *calls.Tracker {
	t := calls.New(gauges{p.m}, emit)
	if p.media != nil {
		t.OnEnd = p.media.ended
	}
	return t
}

var errClosed = errors.New("core: closed")

type gauges struct{ m *metrics.Set }

func (g gauges) Dialogs(n int)             { g.m.DialogsActive.Set(float64(n)) }
func (g gauges) CDRSessions(n int)         { g.m.CDRSessions.Set(float64(n)) }
func (g gauges) ProxyDialogSessions(n int) { g.m.ProxyDialogSessions.Set(float64(n)) }

type poolObserver struct{ m *metrics.Set }

func (o poolObserver) Size(n int)     { o.m.PoolSize.Set(float64(n)) }
func (o poolObserver) Inflight(n int) { o.m.PoolInflight.Set(float64(n)) }
func (o poolObserver) Queue(n int)    { o.m.PoolQueue.Set(float64(n)) }
func (o poolObserver) Completed()     { o.m.JobsCompleted.Inc() }
func (o poolObserver) Shed()          { o.m.JobsShed.Inc() }

func hostOf(hostport string) string {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return h
}
