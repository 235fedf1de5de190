package siphoncdrreceiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/siphon-otel/siphon-otel/internal/logbatch"
	"github.com/siphon-otel/siphon-otel/internal/streamserver"
	"github.com/siphon-otel/siphon-otel/receivers/siphoncdrreceiver/internal/metadata"
)

type cdrReceiver struct {
	cfg    *Config
	set    receiver.Settings
	next   consumer.Logs
	logger *zap.Logger // rate-limited: at most one line per message per 10 s
	tel    *metadata.TelemetryBuilder
	host   component.Host // receives a listener's failure

	httpServer *http.Server
	httpWatch  *streamserver.Watch
	httpDone   chan struct{}
	udpConn    *net.UDPConn
	udpWatch   *streamserver.Watch
	udpDone    chan struct{}
	streams    []*streamserver.Server // syslog TCP and TLS
	batchers   []*logbatch.Batcher
	// sockets holds each listening socket by transport; the tests close one
	// under the receiver, as an outside failure would.
	sockets map[string]io.Closer

	stopper *logbatch.Stopper
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*cdrReceiver, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("siphon_cdr receiver: telemetry: %w", err)
	}
	return &cdrReceiver{
		cfg: cfg, set: set, next: next, tel: tel,
		logger: set.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return zapcore.NewSamplerWithOptions(c, 10*time.Second, 1, 0)
		})),
		stopper: logbatch.NewStopper(),
		sockets: make(map[string]io.Closer),
	}, nil
}

// watch returns the failure policy of one listener.
func (r *cdrReceiver) watch(tel *transportTelemetry, addr net.Addr) *streamserver.Watch {
	return streamserver.NewWatch(streamserver.WatchSettings{
		Component: "siphon_cdr receiver", Listener: tel.name, Addr: addr, Host: r.host,
		Logger: r.set.Logger, Errors: tel.listenerError,
	})
}

// guard returns ln closing at once the connections from outside allowed,
// each counted (rejected, not_allowed) and logged; wrap, if set, wraps the
// others.
func (r *cdrReceiver) guard(ln net.Listener, allowed sources, tel *transportTelemetry, wrap func(net.Conn) net.Conn) net.Listener {
	if len(allowed) == 0 && wrap == nil {
		return ln
	}
	return &guardedListener{Listener: ln, allowed: allowed, wrap: wrap, refuse: func(peer net.Addr) {
		tel.rejected("not_allowed")
		r.logger.Warn("connection refused: source not in allowed_sources", zap.String("transport", tel.name), zap.Stringer("peer", peer))
	}}
}

func (r *cdrReceiver) obsReport(transport string) (*receiverhelper.ObsReport, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: r.set.ID, Transport: transport, ReceiverCreateSettings: r.set,
	})
	if err != nil {
		return nil, fmt.Errorf("siphon_cdr receiver: obsreport: %w", err)
	}
	return obs, nil
}

// Start opens every configured listener; on failure it closes those
// already open. A listener that fails later is reported to host as a
// permanent error (see streamserver.Watch).
func (r *cdrReceiver) Start(ctx context.Context, host component.Host) error {
	r.host = host
	err := r.start(ctx, host)
	if err != nil {
		_ = r.Shutdown(ctx)
	}
	return err
}

func (r *cdrReceiver) start(ctx context.Context, host component.Host) error {
	if h := r.cfg.HTTP.Get(); h != nil {
		if err := r.startHTTP(ctx, host, h); err != nil {
			return err
		}
	}
	if s := r.cfg.Syslog.Get(); s != nil {
		if u := s.UDP.Get(); u != nil {
			if err := r.startSyslogUDP(u, s); err != nil {
				return err
			}
		}
		if t := s.TCP.Get(); t != nil {
			if err := r.startSyslogStream(transportSyslogTCP, t, nil, s); err != nil {
				return err
			}
		}
		if t := s.TLS.Get(); t != nil {
			tlsCfg, err := t.ServerConfig.LoadTLSConfig(ctx)
			if err != nil {
				return fmt.Errorf("siphon_cdr receiver: syslog tls: %w", err)
			}
			if err := r.startSyslogStream(transportSyslogTLS, &t.SyslogTCPConfig, tlsCfg, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// Shutdown stops accepting, lets in-flight HTTP requests finish, delivers
// what syslog already read, and waits for every goroutine.
func (r *cdrReceiver) Shutdown(ctx context.Context) error {
	err := r.stopper.Drain(ctx, func() error {
		var errs []error
		if r.httpServer != nil {
			r.httpWatch.Close()
			shutdownCtx, cancel := context.WithTimeout(context.Background(), logbatch.ShutdownGrace)
			if err := r.httpServer.Shutdown(shutdownCtx); err != nil {
				// requests still being read or answered after the grace
				// (an upload held open) are cut, not waited for
				errs = append(errs, err, r.httpServer.Close())
			}
			cancel()
			<-r.httpDone
		}
		if r.udpConn != nil {
			if r.udpWatch != nil {
				r.udpWatch.Close()
			}
			if err := r.udpConn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
			<-r.udpDone
		}
		for _, srv := range r.streams {
			errs = append(errs, srv.Close())
		}
		for _, b := range r.batchers {
			b.Flush()
		}
		return errors.Join(errs...)
	})
	r.tel.Shutdown()
	return err
}

// nodeOf returns the IP of a remote address, the key of a sending node.
func nodeOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
