package homerexporter

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/siphon-otel/siphon-otel/exporters/homerexporter/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/logmodel"
	"github.com/siphon-otel/siphon-otel/internal/logsubset"
)

const (
	// flushSize is how many bytes of packets are written at once on a
	// stream; what was written before a failure is not sent again.
	flushSize = 64 << 10
	// Dial backoff after a failed connection attempt.
	minRedial = 100 * time.Millisecond
	maxRedial = 30 * time.Second
)

type homerExporter struct {
	cfg    *Config
	set    exporter.Settings
	logger *zap.Logger // rate-limited
	tel    *metadata.TelemetryBuilder
	tlsCfg *tls.Config

	// mu serialises pushes: one connection, one encoding buffer.
	mu       sync.Mutex
	conn     net.Conn
	redial   time.Duration
	nextDial time.Time
	pkt      hep.Packet
	scratch  bytes.Buffer
	buf      []byte
}

func newExporter(set exporter.Settings, cfg *Config) (*homerExporter, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("homer exporter: telemetry: %w", err)
	}
	return &homerExporter{
		cfg: cfg, set: set, tel: tel,
		logger: set.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return zapcore.NewSamplerWithOptions(c, 10*time.Second, 1, 0)
		})),
		buf: make([]byte, 0, flushSize+hep.MaxPacketLen),
	}, nil
}

func (e *homerExporter) start(ctx context.Context, _ component.Host) error {
	if e.cfg.Transport == TransportTLS {
		tlsCfg, err := e.cfg.TLS.LoadTLSConfig(ctx)
		if err != nil {
			return fmt.Errorf("homer exporter: tls: %w", err)
		}
		if tlsCfg == nil {
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		e.tlsCfg = tlsCfg
	}
	return nil
}

func (e *homerExporter) shutdown(context.Context) error {
	e.mu.Lock()
	e.closeConn()
	e.mu.Unlock()
	e.tel.Shutdown()
	return nil
}

// connect returns the open connection or dials a new one, no sooner than
// the backoff after a failed attempt allows.
func (e *homerExporter) connect(ctx context.Context) (net.Conn, error) {
	if e.conn != nil {
		if e.cfg.Transport == TransportUDP || !peerClosed(e.conn) {
			return e.conn, nil
		}
		e.logger.Warn("HEP endpoint closed the connection; reconnecting", zap.String("endpoint", e.cfg.Endpoint))
		e.closeConn()
	}
	if wait := time.Until(e.nextDial); wait > 0 {
		return nil, fmt.Errorf("homer exporter: %s unreachable, next attempt in %s", e.cfg.Endpoint, wait.Round(time.Millisecond))
	}
	var (
		conn net.Conn
		err  error
	)
	switch e.cfg.Transport {
	case TransportUDP:
		// connected, so that ICMP port-unreachable surfaces as an error
		conn, err = (&net.Dialer{}).DialContext(ctx, "udp", e.cfg.Endpoint)
	case TransportTCP:
		conn, err = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp", e.cfg.Endpoint)
	case TransportTLS:
		conn, err = (&tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 30 * time.Second}, Config: e.tlsCfg}).DialContext(ctx, "tcp", e.cfg.Endpoint)
	}
	if e.cfg.Transport != TransportUDP {
		e.tel.HomerExporterConnects.Add(ctx, 1, outcome(err == nil))
	}
	if err != nil {
		e.redial = min(max(2*e.redial, minRedial), maxRedial)
		e.nextDial = time.Now().Add(e.redial)
		return nil, fmt.Errorf("homer exporter: connect %s %s: %w", e.cfg.Transport, e.cfg.Endpoint, err)
	}
	e.redial, e.conn = 0, conn
	return conn, nil
}

func outcome(ok bool) metric.MeasurementOption {
	v := "failure"
	if ok {
		v = "success"
	}
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", v)))
}

func (e *homerExporter) closeConn() {
	if e.conn != nil {
		_ = e.conn.Close()
		e.conn = nil
	}
}

// pushLogs sends every record as one HEP packet. On a send failure it
// returns the records not yet written, so only those are retried.
func (e *homerExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	conn, err := e.connect(ctx)
	if err != nil {
		return err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(e.cfg.Timeout)
	}
	_ = conn.SetWriteDeadline(deadline)

	stream := e.cfg.Transport != TransportUDP
	e.buf = e.buf[:0]
	idx, written, sent := 0, 0, 0
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				start := len(e.buf)
				if err := e.encode(lr, rl.Resource()); err != nil {
					e.buf = e.buf[:start]
					e.tel.HomerExporterRecordsDropped.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reasonOf(err))))
					e.logger.Warn("record cannot be sent as HEP; dropped", zap.String("event", lr.EventName()), zap.Error(err))
					idx++
					continue
				}
				if !stream {
					_, err := conn.Write(e.buf)
					e.buf = e.buf[:0]
					if err != nil {
						return e.failed(ctx, err, ld, idx, sent)
					}
					sent++
				} else if len(e.buf) >= flushSize {
					if _, err := conn.Write(e.buf); err != nil {
						return e.failed(ctx, err, ld, written, sent)
					}
					e.buf = e.buf[:0]
					sent += idx + 1 - written
					written = idx + 1
				}
				idx++
			}
		}
	}
	if stream && len(e.buf) > 0 {
		if _, err := conn.Write(e.buf); err != nil {
			return e.failed(ctx, err, ld, written, sent)
		}
		sent += idx - written
	}
	e.tel.HomerExporterPacketsSent.Add(ctx, int64(sent))
	return nil
}

// failed closes the connection and returns the error with the records from
// index from on, which were not written.
func (e *homerExporter) failed(ctx context.Context, err error, ld plog.Logs, from, sent int) error {
	e.tel.HomerExporterPacketsSent.Add(ctx, int64(sent))
	e.closeConn()
	err = fmt.Errorf("homer exporter: send to %s: %w", e.cfg.Endpoint, err)
	if from == 0 {
		return err
	}
	return consumererror.NewLogs(err, logsubset.From(ld, from))
}

// encode appends the HEP packet of one record to e.buf.
func (e *homerExporter) encode(lr plog.LogRecord, res pcommon.Resource) error {
	p := &e.pkt
	if err := logmodel.ToHEP(lr, p, &e.scratch); err != nil {
		return err
	}
	// Records that came in as HEP go out with exactly their own chunks;
	// the others (CDRs, say) get the configured identity of the node.
	if _, fromHEP := lr.Attributes().Get(logmodel.AttrHEPVersion); !fromHEP {
		if !p.Has(hep.HasCaptureID) {
			p.CaptureID = e.cfg.CaptureID
			p.Fields |= hep.HasCaptureID
		}
		if p.NodeName == nil {
			if e.cfg.NodeName != "" {
				p.NodeName = []byte(e.cfg.NodeName)
			} else if v, ok := res.Attributes().Get(logmodel.AttrServiceInstanceID); ok && v.Str() != "" {
				p.NodeName = []byte(v.Str())
			}
		}
	}
	if e.cfg.AuthKey != "" {
		p.AuthKey = []byte(e.cfg.AuthKey)
	}
	var err error
	e.buf, err = p.AppendV3(e.buf)
	return err
}

func reasonOf(err error) string {
	if errors.Is(err, hep.ErrOversized) {
		return "oversized"
	}
	return "bad_attributes"
}
