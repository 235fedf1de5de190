package hepreceiver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/net/ipv4"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/logbatch"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
	"github.com/siphon-otel/siphon-otel/internal/streamserver"
	"github.com/siphon-otel/siphon-otel/internal/udpdrops"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver/internal/metadata"
)

type hepReceiver struct {
	cfg     *Config
	set     receiver.Settings
	next    consumer.Logs
	logger  *zap.Logger // rate-limited: at most one line per message per 10 s
	tel     *metadata.TelemetryBuilder
	authKey []byte
	host    component.Host // receives a listener's failure

	udpConn    *net.UDPConn
	udpWatch   *streamserver.Watch
	udpReaders sync.WaitGroup
	servers    []*streamserver.Server
	transports []*transport
	// sockets holds each listening socket by transport; the tests close one
	// under the receiver, as an outside failure would.
	sockets map[string]io.Closer

	stopper *logbatch.Stopper
}

// transport is one listener kind's batcher and telemetry.
type transport struct {
	name string
	b    *logbatch.Batcher
	tel  *transportTelemetry
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
		stopper: logbatch.NewStopper(),
		sockets: make(map[string]io.Closer),
	}
	if cfg.AuthKey != "" {
		r.authKey = []byte(cfg.AuthKey)
	}
	return r, nil
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
		Batch: r.cfg.Batch, ScopeName: metadata.ScopeName, Next: r.next, Obs: obs, Logger: r.logger,
		Resource: r.cfg.Resource, Retried: tel.retry, Dropped: tel.dropped,
		Stopping: r.stopper.Stopping(),
	})}
	r.transports = append(r.transports, t)
	return t, nil
}

// Start opens every configured listener. A listener that cannot be opened
// fails the start and closes those already open. One that fails later is
// reported to host as a permanent error (see streamserver.Watch).
func (r *hepReceiver) Start(ctx context.Context, host component.Host) error {
	r.host = host
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
		if err := r.startStream("tcp", t, nil); err != nil {
			return err
		}
	}
	if t := r.cfg.TLS.Get(); t != nil {
		tlsCfg, err := t.ServerConfig.LoadTLSConfig(ctx)
		if err != nil {
			return fmt.Errorf("hep receiver: tls: %w", err)
		}
		if err := r.startStream("tls", &t.TCPConfig, tlsCfg); err != nil {
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
	r.udpConn, r.sockets["udp"] = conn, conn
	if u.ReadBufferSize > 0 {
		if err := conn.SetReadBuffer(u.ReadBufferSize); err != nil {
			r.set.Logger.Warn("cannot set UDP read buffer size", zap.Int("bytes", u.ReadBufferSize), zap.Error(err))
		}
	}
	drops := udpdrops.Enable(conn)
	t, err := r.newTransport("udp", false)
	if err != nil {
		return err
	}
	r.udpWatch = r.watch(t, conn.LocalAddr())
	for range u.Readers {
		r.udpReaders.Add(1)
		go func() {
			defer r.udpReaders.Done()
			r.readUDP(conn, t, drops)
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
	strs    *heprecord.Interner
}

// streamInternLimit bounds the string tables of one TCP/TLS connection's
// reader (about 0.15 MB at most): a connection is one sender, and 1024 of
// them must not each hold what a UDP reader, which serves the whole fleet,
// may (heprecord's default, 4096 entries a table).
const streamInternLimit = 512

func (r *hepReceiver) newReader(t *transport, strs *heprecord.Interner) *reader {
	return &reader{r: r, t: t, scratch: plog.NewLogRecord(), strs: strs}
}

// udpBatch is how many datagrams one read takes (recvmmsg): under load a
// read syscall then serves up to 16 packets instead of one. Each slot holds
// a packet of max_packet_size, so a reader's buffers are about 1 MB.
const udpBatch = 16

func (r *hepReceiver) readUDP(conn *net.UDPConn, t *transport, drops *udpdrops.Counter) {
	rd := r.newReader(t, heprecord.NewInterner())
	msgs := make([]ipv4.Message, udpBatch)
	for i := range msgs {
		// one byte more than allowed, to tell a full-size packet from a truncated one
		msgs[i].Buffers = [][]byte{make([]byte, r.cfg.MaxPacketSize+1)}
		msgs[i].OOB = make([]byte, udpdrops.OOBSize)
	}
	// ipv4's batch reads serve an IPv6 socket as well: recvmmsg does not
	// depend on the address family, only the address decoding does, which
	// the receiver does not use.
	pc := ipv4.NewPacketConn(conn)
	retry := r.udpWatch.Backoff()
	for {
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			if retry.Retry(err) {
				continue
			}
			r.udpWatch.Stop(err)
			return
		}
		retry.Reset()
		for i := range msgs[:n] {
			m := &msgs[i]
			if dropped := drops.Update(m.OOB[:m.NN]); dropped > 0 {
				t.tel.dropped("socket_overflow", int(dropped))
				r.logger.Warn("HEP UDP packets dropped by the kernel: socket buffer full; raise udp.read_buffer_size", zap.Uint32("packets", dropped))
			}
			t.tel.received()
			if m.N > r.cfg.MaxPacketSize {
				t.tel.malformed(hep.Reason(hep.ErrOversized))
				r.logger.Warn("HEP packet larger than max_packet_size", zap.String("transport", "udp"), zap.Int("max_packet_size", r.cfg.MaxPacketSize))
				continue
			}
			rd.handle(m.Buffers[0][:m.N])
		}
	}
}

func (r *hepReceiver) startStream(name string, cfg *TCPConfig, tlsCfg *tls.Config) error {
	ln, err := net.Listen("tcp", cfg.Endpoint)
	if err != nil {
		return fmt.Errorf("hep receiver: %s listen %s: %w", name, cfg.Endpoint, err)
	}
	t, err := r.newTransport(name, true)
	if err != nil {
		_ = ln.Close()
		return err
	}
	r.sockets[name] = ln
	srv := streamserver.Serve(ln, streamserver.Settings{
		Name: name, MaxConnections: cfg.MaxConnections, TLS: tlsCfg, Logger: r.logger,
		Watch:    r.watch(t, ln.Addr()),
		Handle:   func(srv *streamserver.Server, c net.Conn) { r.readStream(c, srv, t, cfg) },
		Rejected: t.tel.rejected, Active: t.tel.connections,
	})
	r.servers = append(r.servers, srv)
	r.set.Logger.Info("HEP receiver listening", zap.String("transport", name), zap.Stringer("address", ln.Addr()))
	return nil
}

// watch returns the failure policy of the listener of t.
func (r *hepReceiver) watch(t *transport, addr net.Addr) *streamserver.Watch {
	return streamserver.NewWatch(streamserver.WatchSettings{
		Component: "hep receiver", Listener: t.name, Addr: addr, Host: r.host,
		Logger: r.set.Logger, Errors: t.tel.listenerError,
	})
}

// readStream serves one TCP/TLS connection. It is idle, and closed after
// IdleTimeout, when no packet was accepted for that long: well-formed and,
// with auth_key, authorized. Bytes that are no such packet (garbage,
// packets without the key) do not keep a connection slot.
func (r *hepReceiver) readStream(conn net.Conn, srv *streamserver.Server, t *transport, cfg *TCPConfig) {
	peer := conn.RemoteAddr().String()
	resync := cfg.OnGarbage == garbageResync
	sr := hep.NewStreamReader(conn, r.cfg.MaxPacketSize, resync, r.cfg.MaxPacketSize)
	rd := r.newReader(t, heprecord.NewInternerLimit(streamInternLimit))
	var skipped int64
	idle := func() {
		if cfg.IdleTimeout > 0 {
			_ = srv.SetReadDeadline(conn, time.Now().Add(cfg.IdleTimeout))
		}
	}
	idle()
	for {
		pkt, err := sr.Next()
		if s := sr.Skipped(); s > skipped {
			skipped = s
			t.tel.malformed(hep.Reason(hep.ErrResync))
			r.logger.Warn("HEP stream garbage skipped", zap.String("transport", t.name), zap.String("peer", peer), zap.Int64("bytes_total", s))
		}
		if err != nil {
			r.streamClosed(conn, t, srv, cfg, peer, err)
			return
		}
		t.tel.received()
		// after handle: a batch the pipeline refused held it, not the peer
		if rd.handle(pkt) {
			idle()
		}
	}
}

// streamClosed counts and logs why a connection ended; the server closes
// it next.
func (r *hepReceiver) streamClosed(conn net.Conn, t *transport, srv *streamserver.Server, cfg *TCPConfig, peer string, err error) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		t.tel.closed("peer")
	case errors.Is(err, io.ErrUnexpectedEOF):
		t.tel.malformed("truncated")
		t.tel.closed("peer")
		r.logger.Warn("HEP stream ended inside a packet", zap.String("transport", t.name), zap.String("peer", peer))
	case hep.Reason(err) != "other":
		t.tel.malformed(hep.Reason(err))
		t.tel.closed("garbage")
		r.logger.Warn("HEP stream closed on garbage", zap.String("transport", t.name), zap.String("peer", peer), zap.Error(err))
	case errors.Is(err, net.ErrClosed), srv.Closing() && errors.As(err, &ne) && ne.Timeout():
		t.tel.closed("shutdown")
	case errors.As(err, &ne) && ne.Timeout():
		// reset: a sender that only writes learns of it at its next write
		streamserver.Abort(conn)
		t.tel.closed("idle_timeout")
		r.logger.Info("HEP connection closed: idle (reset)", zap.String("transport", t.name), zap.String("peer", peer),
			zap.Duration("idle_timeout", cfg.IdleTimeout))
	default:
		t.tel.closed("error")
		r.logger.Info("HEP connection closed", zap.String("transport", t.name), zap.String("peer", peer), zap.Error(err))
	}
}

// handle decodes one packet and adds its record to the batch. It reports
// whether the packet was accepted: well-formed and, with auth_key,
// authorized; a keep-alive is, though it makes no record.
func (rd *reader) handle(raw []byte) bool {
	r, t, p := rd.r, rd.t, &rd.pkt
	if err := p.Decode(raw); err != nil {
		t.tel.malformed(hep.Reason(err))
		r.logger.Warn("malformed HEP packet", zap.String("transport", t.name), zap.Int("size", len(raw)), zap.Error(err))
		return false
	}
	// Every copy of the key must match (hep.Packet.AuthKeyIs): a packet
	// may carry chunk 0x0e more than once, and readers differ on which
	// copy counts. No copy is forwarded either way (the decoder keeps none
	// among the extra chunks).
	if r.authKey != nil && !p.AuthKeyIs(r.authKey) {
		t.tel.dropped("unauthorized", 1)
		r.logger.Warn("HEP packet without the configured auth key", zap.String("transport", t.name),
			zap.Uint32("capture_id", p.CaptureID), zap.Int("auth_keys", p.AuthKeyCount()))
		return false
	}
	payload, compressed := p.Payload, false
	if payload == nil && p.Compressed != nil {
		inflated, err := hep.Inflate(p.Compressed, r.cfg.MaxPacketSize)
		if err != nil {
			t.tel.malformed(hep.Reason(err))
			r.logger.Warn("malformed HEP packet", zap.String("transport", t.name), zap.Error(err))
			return false
		}
		payload, compressed = inflated, true
	} else if payload == nil && p.Compressed == nil && !p.Has(hep.HasProtoType) {
		return true // a keep-alive: nothing to record
	}
	if err := heprecord.FromHEPInterned(p, payload, compressed, time.Now(), rd.scratch, rd.strs); err != nil {
		// the record goes on, without the figures it could not read
		t.tel.mediaUnreadable(string(mediaq.ReasonOf(err)))
		r.logger.Debug("HEP media-quality payload unreadable", zap.String("transport", t.name), zap.Error(err))
	}
	t.b.Add(nodeID(p, rd.strs), rd.scratch)
	return true
}

// Shutdown stops reading, delivers what was read, and returns once every
// goroutine has ended. A batch the pipeline keeps refusing is retried for
// at most logbatch.ShutdownGrace (or until ctx ends), then counted as dropped.
func (r *hepReceiver) Shutdown(ctx context.Context) error {
	err := r.stopper.Drain(ctx, func() error {
		var errs []error
		if r.udpConn != nil {
			if r.udpWatch != nil {
				r.udpWatch.Close()
			}
			if err := r.udpConn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		for _, s := range r.servers {
			errs = append(errs, s.Close())
		}
		r.udpReaders.Wait()
		for _, t := range r.transports {
			t.b.Flush()
		}
		return errors.Join(errs...)
	})
	r.tel.Shutdown()
	return err
}
