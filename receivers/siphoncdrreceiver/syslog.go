package siphoncdrreceiver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/logbatch"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/internal/streamserver"
	"github.com/siphon-otel/siphon-otel/internal/syslogmsg"
	"github.com/siphon-otel/siphon-otel/internal/udpdrops"
	"github.com/siphon-otel/siphon-otel/receivers/siphoncdrreceiver/internal/metadata"
)

// syslogIn turns syslog messages from one transport into records.
type syslogIn struct {
	r   *cdrReceiver
	b   *logbatch.Batcher
	tel *transportTelemetry
}

func (r *cdrReceiver) newSyslogIn(transport string, block bool) (*syslogIn, error) {
	obs, err := r.obsReport(transport)
	if err != nil {
		return nil, err
	}
	tel := newTransportTelemetry(r.tel, transport)
	b := logbatch.New(logbatch.Settings{
		Transport: transport, Format: "siphon_cdr_syslog", Block: block,
		Batch: r.cfg.Batch, ScopeName: metadata.ScopeName, Next: r.next, Obs: obs, Logger: r.logger,
		Resource: r.cfg.Resource, Retried: tel.retry, Dropped: tel.dropped, Stopping: r.stopper.Stopping(),
	})
	r.batchers = append(r.batchers, b)
	return &syslogIn{r: r, b: b, tel: tel}, nil
}

// handle parses one syslog message carrying a CDR; scratch is the caller's
// reusable record.
func (s *syslogIn) handle(msg []byte, node string, scratch plog.LogRecord) {
	m, err := syslogmsg.Parse(msg)
	if err != nil {
		s.tel.malformed("bad_syslog")
		s.r.logger.Warn("malformed syslog message", zap.String("node", node), zap.Error(err))
		return
	}
	rec, err := cdr.Parse(m.Msg)
	if err != nil {
		s.tel.malformed("bad_field")
		s.r.logger.Warn("syslog message is not a valid CDR", zap.String("node", node), zap.Error(err))
		return
	}
	cdrrecord.FromCDR(rec, m.Msg, time.Now(), scratch)
	s.b.Add(node, scratch)
}

func (r *cdrReceiver) startSyslogUDP(cfg *SyslogUDPConfig, s *SyslogConfig) error {
	allowed, err := parseSources(s.AllowedSources)
	if err != nil {
		return fmt.Errorf("siphon_cdr receiver: syslog: allowed_sources: %w", err)
	}
	maxSize := s.MaxMessageSize
	addr, err := net.ResolveUDPAddr("udp", cfg.Endpoint)
	if err != nil {
		return fmt.Errorf("siphon_cdr receiver: syslog udp endpoint %q: %w", cfg.Endpoint, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return fmt.Errorf("siphon_cdr receiver: syslog udp listen %s: %w", cfg.Endpoint, err)
	}
	r.udpConn, r.udpDone, r.sockets[transportSyslogUDP] = conn, make(chan struct{}), conn
	if cfg.ReadBufferSize > 0 {
		if err := conn.SetReadBuffer(cfg.ReadBufferSize); err != nil {
			r.set.Logger.Warn("cannot set UDP read buffer size", zap.Int("bytes", cfg.ReadBufferSize), zap.Error(err))
		}
	}
	in, err := r.newSyslogIn(transportSyslogUDP, false)
	if err != nil {
		close(r.udpDone)
		return err
	}
	drops := udpdrops.Enable(conn)
	r.udpWatch = r.watch(in.tel, conn.LocalAddr())
	go func() {
		defer close(r.udpDone)
		buf := make([]byte, maxSize+1)
		oob := make([]byte, udpdrops.OOBSize)
		scratch := plog.NewLogRecord()
		retry := r.udpWatch.Backoff()
		for {
			n, oobn, _, from, err := conn.ReadMsgUDPAddrPort(buf, oob)
			if err != nil {
				if retry.Retry(err) {
					continue
				}
				r.udpWatch.Stop(err)
				return
			}
			retry.Reset()
			if dropped := drops.Update(oob[:oobn]); dropped > 0 {
				in.tel.dropped("socket_overflow", int(dropped))
				r.logger.Warn("CDR syslog datagrams dropped by the kernel: socket buffer full; raise read_buffer_size", zap.Uint32("datagrams", dropped))
			}
			if !allowed.allows(from.Addr()) {
				in.tel.datagramRefused("not_allowed")
				r.logger.Warn("syslog datagram dropped: source not in allowed_sources", zap.Stringer("peer", from))
				continue
			}
			if n > maxSize {
				in.tel.malformed("too_large")
				r.logger.Warn("syslog datagram larger than max_message_size", zap.Int("max_message_size", maxSize))
				continue
			}
			in.handle(buf[:n], from.Addr().Unmap().String(), scratch)
		}
	}()
	r.set.Logger.Info("SIPhon CDR receiver listening", zap.String("transport", transportSyslogUDP), zap.Stringer("address", conn.LocalAddr()))
	return nil
}

// startSyslogStream starts the TCP listener, or with tlsCfg the TLS one
// (RFC 5425).
func (r *cdrReceiver) startSyslogStream(transport string, cfg *SyslogTCPConfig, tlsCfg *tls.Config, s *SyslogConfig) error {
	allowed, err := parseSources(s.AllowedSources)
	if err != nil {
		return fmt.Errorf("siphon_cdr receiver: syslog: allowed_sources: %w", err)
	}
	maxSize := s.MaxMessageSize
	ln, err := net.Listen("tcp", cfg.Endpoint)
	if err != nil {
		return fmt.Errorf("siphon_cdr receiver: %s listen %s: %w", transport, cfg.Endpoint, err)
	}
	in, err := r.newSyslogIn(transport, true)
	if err != nil {
		_ = ln.Close()
		return err
	}
	r.sockets[transport] = ln
	r.streams = append(r.streams, streamserver.Serve(r.guard(ln, allowed, in.tel, nil), streamserver.Settings{
		Name: transport, MaxConnections: cfg.MaxConnections, TLS: tlsCfg, Logger: r.logger,
		Watch:    r.watch(in.tel, ln.Addr()),
		Rejected: in.tel.rejected, Active: in.tel.connections,
		Handle: func(srv *streamserver.Server, conn net.Conn) {
			node := nodeOf(conn.RemoteAddr().String())
			fr := syslogmsg.NewReader(conn, maxSize)
			scratch := plog.NewLogRecord()
			for {
				if cfg.IdleTimeout > 0 {
					_ = srv.SetReadDeadline(conn, time.Now().Add(cfg.IdleTimeout))
				}
				msg, err := fr.Next()
				if err != nil {
					switch {
					case errors.Is(err, syslogmsg.ErrBadFrame) || errors.Is(err, syslogmsg.ErrFrameTooLarge) || errors.Is(err, io.ErrUnexpectedEOF):
						in.tel.malformed("bad_frame")
						r.logger.Warn("syslog stream closed on a bad frame", zap.String("transport", transport), zap.String("node", node), zap.Error(err))
					case errors.Is(err, os.ErrDeadlineExceeded) && !srv.Closing():
						in.tel.timedOut()
						r.set.Logger.Debug("syslog connection closed: no complete message within idle_timeout",
							zap.String("transport", transport), zap.String("node", node), zap.Duration("idle_timeout", cfg.IdleTimeout))
					}
					return
				}
				in.handle(msg, node, scratch)
			}
		},
	}))
	r.set.Logger.Info("SIPhon CDR receiver listening", zap.String("transport", transport), zap.Stringer("address", ln.Addr()))
	return nil
}
