package hepreceiver

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/logbatch"
	"github.com/siphon-otel/siphon-otel/internal/logmodel"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver/internal/metadata"
)

// shutdownGrace bounds how long shutdown keeps retrying a batch the
// pipeline refuses before counting it as dropped.
const shutdownGrace = 5 * time.Second

// tlsHandshakeTimeout bounds a client's TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

type hepReceiver struct {
	cfg     *Config
	set     receiver.Settings
	next    consumer.Logs
	logger  *zap.Logger // rate-limited: at most one line per message per 10 s
	tel     *metadata.TelemetryBuilder
	authKey []byte

	udpConn    *net.UDPConn
	listeners  []net.Listener
	transports []*transport

	stopping     chan struct{}
	stopOnce     sync.Once
	readers      sync.WaitGroup
	connsMu      sync.Mutex
	conns        map[net.Conn]struct{}
	shuttingDown bool
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*hepReceiver, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("hep receiver: telemetry: %w", err)
	}
	r := &hepReceiver{
		cfg:  cfg,
		set:  set,
		next: next,
		tel:  tel,
		logger: set.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return zapcore.NewSamplerWithOptions(c, 10*time.Second, 1, 0)
		})),
		stopping: make(chan struct{}),
		conns:    make(map[net.Conn]struct{}),
	}
	if cfg.AuthKey != "" {
		r.authKey = []byte(cfg.AuthKey)
	}
	return r, nil
}

// transport is one listener kind's batcher and telemetry.
type transport struct {
	name string
	b    *logbatch.Batcher
	tel  *transportTelemetry
}

func (r *hepReceiver) newTransport(name string, block bool) (*transport, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: r.set.ID, Transport: name, ReceiverCreateSettings: r.set,
	})
	if err != nil {
		return nil, fmt.Errorf("hep receiver: obsreport: %w", err)
	}
	tel := newTransportTelemetry(r.tel, name)
	t := &transport{name: name, tel: tel, b: logbatch.New(logbatch.Settings{
		Transport: name, Format: "hep", Block: block,
		MaxSize: r.cfg.Batch.MaxSize, Timeout: r.cfg.Batch.Timeout,
		ScopeName: metadata.ScopeName, Next: r.next, Obs: obs, Logger: r.logger,
		Resource: resourceAttrs(r.cfg.Resource), Retried: tel.retry, Dropped: tel.dropped,
		Stopping: r.stopping,
	})}
	r.transports = append(r.transports, t)
	return t, nil
}

// Start opens every configured listener. A listener that cannot be opened
// fails the start and closes those already open.
func (r *hepReceiver) Start(ctx context.Context, _ component.Host) error {
	err := r.start(ctx)
	if err != nil {
		_ = r.Shutdown(ctx)
	}
	return err
}

func (r *hepReceiver) start(ctx context.Context) error {
	if u := r.cfg.UDP.Get(); u != nil {
		if err := r.startUDP(u); err != nil {
			return err
		}
	}
	if t := r.cfg.TCP.Get(); t != nil {
		ln, err := net.Listen("tcp", t.Endpoint)
		if err != nil {
			return fmt.Errorf("hep receiver: tcp listen %s: %w", t.Endpoint, err)
		}
		if err := r.serveStream(ln, "tcp", t, nil); err != nil {
			return err
		}
	}
	if t := r.cfg.TLS.Get(); t != nil {
		tlsCfg, err := t.ServerConfig.LoadTLSConfig(ctx)
		if err != nil {
			return fmt.Errorf("hep receiver: tls: %w", err)
		}
		ln, err := net.Listen("tcp", t.Endpoint)
		if err != nil {
			return fmt.Errorf("hep receiver: tls listen %s: %w", t.Endpoint, err)
		}
		if err := r.serveStream(ln, "tls", &t.TCPConfig, tlsCfg); err != nil {
			return err
		}
	}
	return nil
}

func (r *hepReceiver) startUDP(u *UDPConfig) error {
	addr, err := net.ResolveUDPAddr("udp", u.Endpoint)
	if err != nil {
		return fmt.Errorf("hep receiver: udp endpoint %q: %w", u.Endpoint, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return fmt.Errorf("hep receiver: udp listen %s: %w", u.Endpoint, err)
	}
	r.udpConn = conn
	if u.ReadBufferSize > 0 {
		if err := conn.SetReadBuffer(u.ReadBufferSize); err != nil {
			r.set.Logger.Warn("cannot set UDP read buffer size", zap.Int("bytes", u.ReadBufferSize), zap.Error(err))
		}
	}
	overflow := enableOverflowCounter(conn)
	t, err := r.newTransport("udp", false)
	if err != nil {
		return err
	}
	for range u.Readers {
		r.readers.Add(1)
		go func() {
			defer r.readers.Done()
			r.readUDP(conn, t, overflow)
		}()
	}
	r.set.Logger.Info("HEP receiver listening", zap.String("transport", "udp"), zap.Stringer("address", conn.LocalAddr()))
	return nil
}

// reader holds one goroutine's reusable decoding state.
type reader struct {
	r       *hepReceiver
	t       *transport
	pkt     hep.Packet
	scratch plog.LogRecord
}

func (r *hepReceiver) newReader(t *transport) *reader {
	return &reader{r: r, t: t, scratch: plog.NewLogRecord()}
}

func (r *hepReceiver) readUDP(conn *net.UDPConn, t *transport, overflow *overflowCounter) {
	rd := r.newReader(t)
	// one byte more than allowed, to tell a full-size packet from a truncated one
	buf := make([]byte, r.cfg.MaxPacketSize+1)
	oob := make([]byte, oobSize)
	for {
		n, oobn, _, _, err := conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.logger.Warn("HEP UDP read failed", zap.Error(err))
			continue
		}
		if dropped := overflow.update(oob[:oobn]); dropped > 0 {
			t.tel.dropped("socket_overflow", int(dropped))
			r.logger.Warn("HEP UDP packets dropped by the kernel: socket buffer full; raise udp.read_buffer_size", zap.Uint32("packets", dropped))
		}
		t.tel.received()
		if n > r.cfg.MaxPacketSize {
			t.tel.malformed(hep.Reason(hep.ErrOversized))
			r.logger.Warn("HEP packet larger than max_packet_size", zap.String("transport", "udp"), zap.Int("max_packet_size", r.cfg.MaxPacketSize))
			continue
		}
		rd.handle(buf[:n])
	}
}

func (r *hepReceiver) serveStream(ln net.Listener, name string, cfg *TCPConfig, tlsCfg *tls.Config) error {
	t, err := r.newTransport(name, true)
	if err != nil {
		_ = ln.Close()
		return err
	}
	r.listeners = append(r.listeners, ln)
	slots := make(chan struct{}, cfg.MaxConnections)
	r.readers.Add(1)
	go func() {
		defer r.readers.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				r.logger.Warn("HEP accept failed", zap.String("transport", name), zap.Error(err))
				time.Sleep(10 * time.Millisecond)
				continue
			}
			select {
			case slots <- struct{}{}:
			default:
				t.tel.rejected("limit")
				r.logger.Warn("HEP connection refused: max_connections reached", zap.String("transport", name), zap.Int("max_connections", cfg.MaxConnections))
				_ = conn.Close()
				continue
			}
			if !r.track(conn) {
				<-slots
				_ = conn.Close()
				return
			}
			t.tel.connections(1)
			r.readers.Add(1)
			go func() {
				defer r.readers.Done()
				r.readStream(conn, t, cfg, tlsCfg)
				r.untrack(conn)
				<-slots
				// only now, so that "active" never reads lower than the slots held
				t.tel.connections(-1)
			}()
		}
	}()
	r.set.Logger.Info("HEP receiver listening", zap.String("transport", name), zap.Stringer("address", ln.Addr()))
	return nil
}

func (r *hepReceiver) track(c net.Conn) bool {
	r.connsMu.Lock()
	defer r.connsMu.Unlock()
	if r.shuttingDown {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *hepReceiver) untrack(c net.Conn) {
	r.connsMu.Lock()
	delete(r.conns, c)
	r.connsMu.Unlock()
	_ = c.Close()
}

func (r *hepReceiver) readStream(conn net.Conn, t *transport, cfg *TCPConfig, tlsCfg *tls.Config) {
	peer := conn.RemoteAddr().String()
	if tlsCfg != nil {
		tc := tls.Server(conn, tlsCfg)
		_ = conn.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
		if err := tc.Handshake(); err != nil {
			t.tel.rejected("tls_handshake")
			r.logger.Warn("HEP TLS handshake failed", zap.String("peer", peer), zap.Error(err))
			return
		}
		_ = conn.SetDeadline(time.Time{})
		conn = tc
	}
	resync := cfg.OnGarbage == garbageResync
	sr := hep.NewStreamReader(conn, r.cfg.MaxPacketSize, resync, r.cfg.MaxPacketSize)
	rd := r.newReader(t)
	var skipped int64
	for {
		if cfg.IdleTimeout > 0 {
			_ = conn.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		}
		pkt, err := sr.Next()
		if s := sr.Skipped(); s > skipped {
			skipped = s
			t.tel.malformed(hep.Reason(hep.ErrResync))
			r.logger.Warn("HEP stream garbage skipped", zap.String("transport", t.name), zap.String("peer", peer), zap.Int64("bytes_total", s))
		}
		if err != nil {
			r.streamClosed(t, peer, err)
			return
		}
		t.tel.received()
		rd.handle(pkt)
	}
}

func (r *hepReceiver) streamClosed(t *transport, peer string, err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return
	case errors.Is(err, io.ErrUnexpectedEOF):
		t.tel.malformed("truncated")
		r.logger.Warn("HEP stream ended inside a packet", zap.String("transport", t.name), zap.String("peer", peer))
	case hep.Reason(err) != "other":
		t.tel.malformed(hep.Reason(err))
		r.logger.Warn("HEP stream closed on garbage", zap.String("transport", t.name), zap.String("peer", peer), zap.Error(err))
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && r.isShuttingDown() {
			return
		}
		r.logger.Info("HEP connection closed", zap.String("transport", t.name), zap.String("peer", peer), zap.Error(err))
	}
}

func (r *hepReceiver) isShuttingDown() bool {
	r.connsMu.Lock()
	defer r.connsMu.Unlock()
	return r.shuttingDown
}

// handle decodes one packet and adds its record to the batch.
func (rd *reader) handle(raw []byte) {
	r, t, p := rd.r, rd.t, &rd.pkt
	if err := p.Decode(raw); err != nil {
		t.tel.malformed(hep.Reason(err))
		r.logger.Warn("malformed HEP packet", zap.String("transport", t.name), zap.Int("size", len(raw)), zap.Error(err))
		return
	}
	if r.authKey != nil && subtle.ConstantTimeCompare(p.AuthKey, r.authKey) != 1 {
		t.tel.dropped("unauthorized", 1)
		r.logger.Warn("HEP packet without the configured auth key", zap.String("transport", t.name), zap.Uint32("capture_id", p.CaptureID))
		return
	}
	payload, compressed := p.Payload, false
	if payload == nil && p.Compressed != nil {
		inflated, err := hep.Inflate(p.Compressed, r.cfg.MaxPacketSize)
		if err != nil {
			t.tel.malformed(hep.Reason(err))
			r.logger.Warn("malformed HEP packet", zap.String("transport", t.name), zap.Error(err))
			return
		}
		payload, compressed = inflated, true
	} else if payload == nil && p.Compressed == nil && !p.Has(hep.HasProtoType) {
		return // a keep-alive: nothing to record
	}
	logmodel.FromHEP(p, payload, compressed, time.Now(), rd.scratch)
	t.b.Add(nodeID(p), rd.scratch)
}

// Shutdown stops reading, delivers what was read, and returns once every
// goroutine has ended. A batch the pipeline keeps refusing is retried for
// at most shutdownGrace (or until ctx ends), then counted as dropped.
func (r *hepReceiver) Shutdown(ctx context.Context) error {
	var errs []error
	r.connsMu.Lock()
	r.shuttingDown = true
	for c := range r.conns {
		// unblocks the reader, which then delivers what it framed
		_ = c.SetReadDeadline(time.Now())
	}
	r.connsMu.Unlock()
	for _, ln := range r.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if r.udpConn != nil {
		if err := r.udpConn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	grace := time.AfterFunc(shutdownGrace, r.stop)
	defer grace.Stop()
	done := make(chan struct{})
	go func() {
		r.readers.Wait()
		for _, t := range r.transports {
			t.b.Flush()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		r.stop()
		<-done
	}
	r.stop()
	r.tel.Shutdown()
	return errors.Join(errs...)
}

func (r *hepReceiver) stop() { r.stopOnce.Do(func() { close(r.stopping) }) }
