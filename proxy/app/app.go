// Package app runs sipproxy: the proxy, its telemetry (metrics, admin API,
// CDRs, HEP), RTPEngine health (which also steers media anchoring) and
// SIPhon's SIGTERM drain. cmd/sipproxy
// is a thin main around Run; a main of your own can wrap the routing
// (Options.Wrap) with Go code.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/siphon-otel/siphon-otel/proxy/admin"
	"github.com/siphon-otel/siphon-otel/proxy/calls"
	"github.com/siphon-otel/siphon-otel/proxy/cdrsink"
	"github.com/siphon-otel/siphon-otel/proxy/config"
	"github.com/siphon-otel/siphon-otel/proxy/core"
	"github.com/siphon-otel/siphon-otel/proxy/heptrace"
	"github.com/siphon-otel/siphon-otel/proxy/metrics"
	"github.com/siphon-otel/siphon-otel/proxy/registrar"
	"github.com/siphon-otel/siphon-otel/proxy/rtpengine"
)

// Options adds code to the proxy.
type Options struct {
	// Wrap, when set, wraps the YAML router (core.Options.Wrap).
	Wrap func(core.Handler) core.Handler
}

// Run runs the proxy until SIGTERM or SIGINT, then drains and returns.
func Run(cfg *config.Config, log *slog.Logger, o Options) error {
	m := metrics.New()
	var tracer *heptrace.Tracer
	if h := cfg.Tracing.HEP; h.Endpoint != "" {
		var err error
		tracer, err = heptrace.New(heptrace.Settings{
			Endpoint: h.Endpoint, Transport: h.Transport, AgentID: h.AgentID, CACert: h.CACert,
			TLSServerName: h.TLSServerName, QueueSize: h.QueueSize, Logger: log,
			Sent:    func(n int) { m.HEPSent.Add(float64(n)) },
			Dropped: func(reason string, n int) { m.HEPDropped.WithLabelValues(reason).Add(float64(n)) },
		})
		if err != nil {
			return err
		}
		defer tracer.Close()
	}
	var sink *cdrsink.Sink
	if cfg.CDR.Enabled {
		var err error
		sink, err = cdrsink.New(cfg.CDR, log,
			func(reason string) { m.CDRDropped.WithLabelValues(reason).Inc() },
			m.CDRWritten.Inc)
		if err != nil {
			return err
		}
	}
	p, err := core.New(core.Options{Config: cfg, Metrics: m, Logger: log, CDR: sink, Tracer: tracer, Wrap: o.Wrap})
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	if err := p.Start(); err != nil {
		return err
	}
	var servers []*http.Server
	serve := func(addr string, h http.Handler) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		servers = append(servers, serveHTTP(ln, h, metricsAdminLimits, addr, log))
		return nil
	}
	if l := cfg.Metrics.Prometheus.Listen; l != "" {
		mux := http.NewServeMux()
		mux.Handle(cfg.Metrics.Prometheus.Path, promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
		if err := serve(l, mux); err != nil {
			return fmt.Errorf("metrics.prometheus.listen: %w", err)
		}
	}
	if l := cfg.Admin.Listen; l != "" {
		api := admin.New(source{p, m}, cfg.Admin.Auth.Token, cfg.Admin.Auth.ProtectReads)
		if err := serve(l, api); err != nil {
			return fmt.Errorf("admin.listen: %w", err)
		}
	}
	if n := len(cfg.RTPEngine.Instances); n > 0 {
		m.RTPEngineTotal.Set(float64(n))
		checker := &rtpengine.Checker{Instances: cfg.RTPEngine.Instances, Interval: cfg.RTPEngine.PingInterval, Timeout: time.Second,
			Report: func(up map[string]bool) {
				healthy := 0
				for addr, ok := range up {
					v := 0.0
					if ok {
						v, healthy = 1, healthy+1
					}
					m.RTPEngineInstance.WithLabelValues(addr).Set(v)
				}
				m.RTPEngineUp.Set(float64(healthy))
				p.RTPEngineHealth(up) // calls go to healthy instances
			}}
		go checker.Run(ctx)
	}
	log.Info("sipproxy started", "udp", cfg.Listen.UDP, "tcp", cfg.Listen.TCP, "tls", cfg.Listen.TLS,
		"metrics", cfg.Metrics.Prometheus.Listen, "admin", cfg.Admin.Listen)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	// SIPhon's drain: ready turns 503, new INVITEs get 503, dialogs go on;
	// exit when idle or at drain_secs
	log.Info("draining", "drain_secs", cfg.Server.DrainSecs)
	dctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Server.DrainSecs)*time.Second)
	if err := p.Drain(dctx); err != nil {
		log.Warn("drain deadline reached with calls still up", "calls", len(p.Calls.Active()))
	}
	cancel()
	stop()
	_ = p.Close()
	for _, s := range servers {
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.Shutdown(sctx)
		c()
	}
	if sink != nil {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		if err := sink.Close(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			log.Warn("CDR backend close", "error", err)
		}
		c()
	}
	log.Info("sipproxy stopped")
	return nil
}

// source adapts the proxy to the admin API.
type source struct {
	p *core.Proxy
	m *metrics.Set
}

func (s source) Uptime() time.Duration           { return s.m.Uptime() }
func (s source) Draining() bool                  { return s.p.Draining() }
func (s source) Registrar() *registrar.Registrar { return s.p.Reg }
func (s source) ActiveCalls() []calls.Call       { return s.p.Calls.Active() }
func (s source) Gatherer() prometheus.Gatherer   { return s.m.Registry }
