package siphonsyslogexporter

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/siphon-otel/siphon-otel/exporters/siphonsyslogexporter/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/logexport"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/recordjson"
	"github.com/siphon-otel/siphon-otel/internal/sendconn"
	"github.com/siphon-otel/siphon-otel/internal/syslogmsg"
)

// maxDatagram is the largest UDP payload over IPv4.
const maxDatagram = 65507

type syslogExporter struct {
	cfg    *Config
	logger *zap.Logger // rate-limited
	tel    *metadata.TelemetryBuilder
	pri    int

	mu   sync.Mutex // one connection, one buffer
	conn *sendconn.Conn
	json []byte
	msg  []byte
}

func newExporter(set exporter.Settings, cfg *Config) (*syslogExporter, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("siphon_syslog exporter: telemetry: %w", err)
	}
	e := &syslogExporter{
		cfg: cfg, tel: tel, pri: cfg.priority(),
		logger: logexport.SampledLogger(set.Logger),
	}
	e.conn = &sendconn.Conn{
		Transport: cfg.Transport, Endpoint: cfg.Endpoint, Timeout: cfg.Timeout, Logger: e.logger,
		Sent: func(n int) { tel.SiphonSyslogExporterMessagesSent.Add(context.Background(), int64(n)) },
		Lost: func(reason string, n int) {
			tel.SiphonSyslogExporterRecordsDropped.Add(context.Background(), int64(n), metric.WithAttributes(attribute.String("reason", reason)))
		},
		Dialed: func(ok bool) {
			v := "failure"
			if ok {
				v = "success"
			}
			tel.SiphonSyslogExporterConnects.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", v)))
		},
	}
	return e, nil
}

func (e *syslogExporter) start(ctx context.Context, _ component.Host) error {
	if e.cfg.Transport == "tls" {
		tlsCfg, err := logexport.ClientTLS(ctx, e.cfg.TLS)
		if err != nil {
			return fmt.Errorf("siphon_syslog exporter: %w", err)
		}
		e.conn.TLS = tlsCfg
	}
	return nil
}

func (e *syslogExporter) shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.conn.Close(ctx)
	e.mu.Unlock()
	e.tel.Shutdown()
	return nil
}

// pushLogs sends one syslog message per record; on a failure the records
// not yet written are handed back for retry.
func (e *syslogExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.conn.SendLogs(ctx, ld, func(dst []byte, r record.Item) ([]byte, bool) {
		msg, reason, err := e.message(r)
		if err != nil {
			e.tel.SiphonSyslogExporterRecordsDropped.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
			e.logger.Warn("record cannot be sent as syslog; dropped", zap.String("event", r.Log.EventName()), zap.Error(err))
			return dst, false
		}
		if !e.conn.Stream() {
			return append(dst, msg...), true
		}
		if e.cfg.Framing == FramingNewline {
			return append(append(dst, msg...), '\n'), true
		}
		return syslogmsg.AppendOctetCounted(dst, msg), true
	})
	if err != nil {
		return fmt.Errorf("siphon_syslog exporter: %w", err)
	}
	return nil
}

// message renders one record's syslog message (without framing).
func (e *syslogExporter) message(r record.Item) ([]byte, string, error) {
	var err error
	e.json, err = recordjson.Append(e.json[:0], r.Log, r.Resource, e.cfg.Source)
	if err != nil {
		return nil, "render_error", err
	}
	t := r.Log.Timestamp().AsTime()
	if e.cfg.Format == FormatRFC3164 {
		e.msg = syslogmsg.Append3164(e.msg[:0], e.pri, t.UTC(), e.cfg.Hostname, e.cfg.AppName, e.json)
	} else {
		e.msg = syslogmsg.Append5424(e.msg[:0], e.pri, cdr.FormatTime(t), e.cfg.Hostname, e.cfg.AppName, "", "", e.json)
	}
	if !e.conn.Stream() && len(e.msg) > maxDatagram {
		return nil, "oversized", fmt.Errorf("message of %d bytes does not fit a UDP datagram", len(e.msg))
	}
	return e.msg, "", nil
}
