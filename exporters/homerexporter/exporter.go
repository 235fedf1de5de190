package homerexporter

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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
	"github.com/siphon-otel/siphon-otel/internal/sendconn"
)

type homerExporter struct {
	cfg    *Config
	set    exporter.Settings
	logger *zap.Logger // rate-limited
	tel    *metadata.TelemetryBuilder

	// mu serialises pushes: one connection, one encoding buffer.
	mu      sync.Mutex
	conn    *sendconn.Conn
	pkt     hep.Packet
	scratch bytes.Buffer
	records []record
}

// record is one log record of a batch with its resource.
type record struct {
	lr  plog.LogRecord
	res pcommon.Resource
}

func newExporter(set exporter.Settings, cfg *Config) (*homerExporter, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("homer exporter: telemetry: %w", err)
	}
	e := &homerExporter{
		cfg: cfg, set: set, tel: tel,
		logger: set.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return zapcore.NewSamplerWithOptions(c, 10*time.Second, 1, 0)
		})),
	}
	e.conn = &sendconn.Conn{
		Transport: cfg.Transport, Endpoint: cfg.Endpoint, Timeout: cfg.Timeout, Logger: e.logger,
		Unreachable: func(bool) { // a datagram lost at a closed port, written or not
			tel.HomerExporterRecordsDropped.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", "port_unreachable")))
		},
		Dialed: func(ok bool) { tel.HomerExporterConnects.Add(context.Background(), 1, outcome(ok)) },
	}
	return e, nil
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
		e.conn.TLS = tlsCfg
	}
	return nil
}

func (e *homerExporter) shutdown(context.Context) error {
	e.mu.Lock()
	e.conn.Close()
	e.mu.Unlock()
	e.tel.Shutdown()
	return nil
}

func outcome(ok bool) metric.MeasurementOption {
	v := "failure"
	if ok {
		v = "success"
	}
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", v)))
}

// pushLogs sends every record as one HEP packet. On a send failure it
// returns the records not yet written, so only those are retried.
func (e *homerExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.records = e.records[:0]
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				e.records = append(e.records, record{lr, rl.Resource()})
			}
		}
	}
	sent, from, err := e.conn.Send(ctx, len(e.records), func(dst []byte, i int) ([]byte, bool) {
		r := e.records[i]
		out, err := e.encode(dst, r.lr, r.res)
		if err != nil {
			e.tel.HomerExporterRecordsDropped.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reasonOf(err))))
			e.logger.Warn("record cannot be sent as HEP; dropped", zap.String("event", r.lr.EventName()), zap.Error(err))
			return dst, false
		}
		return out, true
	})
	e.tel.HomerExporterPacketsSent.Add(ctx, int64(sent))
	if err == nil {
		return nil
	}
	err = fmt.Errorf("homer exporter: %w", err)
	if from == 0 {
		return err
	}
	return consumererror.NewLogs(err, logsubset.From(ld, from))
}

// encode appends the HEP packet of one record to dst.
func (e *homerExporter) encode(dst []byte, lr plog.LogRecord, res pcommon.Resource) ([]byte, error) {
	p := &e.pkt
	if err := logmodel.ToHEP(lr, p, &e.scratch); err != nil {
		return dst, err
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
	return p.AppendV3(dst)
}

func reasonOf(err error) string {
	if errors.Is(err, hep.ErrOversized) {
		return "oversized"
	}
	return "bad_attributes"
}
