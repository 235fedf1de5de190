package homerexporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/siphon-otel/siphon-otel/exporters/homerexporter/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/logexport"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
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
}

func newExporter(set exporter.Settings, cfg *Config) (*homerExporter, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("homer exporter: telemetry: %w", err)
	}
	e := &homerExporter{
		cfg: cfg, set: set, tel: tel,
		logger: logexport.SampledLogger(set.Logger),
	}
	e.conn = &sendconn.Conn{
		Transport: cfg.Transport, Endpoint: cfg.Endpoint, Timeout: cfg.Timeout, Logger: e.logger,
		Sent: func(n int) { tel.HomerExporterPacketsSent.Add(context.Background(), int64(n)) },
		Lost: func(reason string, n int) {
			tel.HomerExporterRecordsDropped.Add(context.Background(), int64(n), metric.WithAttributes(attribute.String("reason", reason)))
		},
		Dialed: func(ok bool) { tel.HomerExporterConnects.Add(context.Background(), 1, outcome(ok)) },
	}
	return e, nil
}

func (e *homerExporter) start(ctx context.Context, _ component.Host) error {
	if e.cfg.Transport == TransportTLS {
		tlsCfg, err := logexport.ClientTLS(ctx, e.cfg.TLS)
		if err != nil {
			return fmt.Errorf("homer exporter: %w", err)
		}
		e.conn.TLS = tlsCfg
	}
	return nil
}

func (e *homerExporter) shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.conn.Close(ctx)
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
	err := e.conn.SendLogs(ctx, ld, func(dst []byte, r record.Item) ([]byte, bool) {
		out, err := e.encode(dst, r.Log, r.Resource)
		if err != nil {
			e.tel.HomerExporterRecordsDropped.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reasonOf(err))))
			e.logger.Warn("record cannot be sent as HEP; dropped", zap.String("event", r.Log.EventName()), zap.Error(err))
			return dst, false
		}
		return out, true
	})
	if err != nil {
		return fmt.Errorf("homer exporter: %w", err)
	}
	return nil
}

// encode appends the HEP packet of one record to dst.
func (e *homerExporter) encode(dst []byte, lr plog.LogRecord, res pcommon.Resource) ([]byte, error) {
	p := &e.pkt
	if err := heprecord.ToHEP(lr, p, &e.scratch, e.cfg.KeepCompressedPayload); err != nil {
		return dst, err
	}
	// Records that came in as HEP go out with exactly their own chunks;
	// the others (CDRs, say) get the configured identity of the node.
	if _, fromHEP := lr.Attributes().Get(record.AttrHEPVersion); !fromHEP {
		if !p.Has(hep.HasCaptureID) {
			p.CaptureID = e.cfg.CaptureID
			p.Fields |= hep.HasCaptureID
		}
		if p.NodeName == nil {
			if e.cfg.NodeName != "" {
				p.NodeName = []byte(e.cfg.NodeName)
			} else if v, ok := res.Attributes().Get(record.AttrServiceInstanceID); ok && v.Str() != "" {
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
