package siphonfileexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/siphon-otel/siphon-otel/exporters/siphonfileexporter/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/logexport"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/internal/record/recordjson"
	"github.com/siphon-otel/siphon-otel/internal/rotfile"
)

type fileExporter struct {
	cfg    *Config
	logger *zap.Logger // rate-limited
	tel    *metadata.TelemetryBuilder
	csv    *cdrrecord.CSV

	mu   sync.Mutex // pushes write one file
	w    *rotfile.Writer
	line []byte
}

func newExporter(set exporter.Settings, cfg *Config) (*fileExporter, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("siphon_file exporter: telemetry: %w", err)
	}
	e := &fileExporter{
		cfg: cfg, tel: tel,
		logger: logexport.SampledLogger(set.Logger),
	}
	if cfg.Format == FormatCSV {
		e.csv = &cdrrecord.CSV{ExtraColumns: cfg.CSV.ExtraColumns}
	}
	return e, nil
}

func (e *fileExporter) start(context.Context, component.Host) error {
	fsync := map[string]rotfile.Fsync{FsyncNever: rotfile.FsyncNever, FsyncRotate: rotfile.FsyncRotate, FsyncBatch: rotfile.FsyncFlush}[e.cfg.Fsync]
	var header []byte
	if e.csv != nil {
		header = e.csv.AppendHeader(nil)
	}
	w, err := rotfile.Open(rotfile.Options{
		Path: e.cfg.Path, MaxBytes: int64(e.cfg.RotateSizeMB) << 20, Compress: e.cfg.Compress,
		MaxFiles: e.cfg.MaxFiles, Fsync: fsync, Header: header,
		OnError: func(err error) { e.logger.Error("rotated file housekeeping failed", zap.Error(err)) },
		OnRotate: func(name string) {
			e.tel.SiphonFileExporterRotations.Add(context.Background(), 1)
			e.logger.Info("file rotated", zap.String("rotated", name))
		},
	})
	if err != nil {
		return fmt.Errorf("siphon_file exporter: %w", err)
	}
	e.w = w
	return nil
}

func (e *fileExporter) shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var err error
	if e.w != nil {
		err = e.w.Close()
		e.w = nil
	}
	e.tel.Shutdown()
	return err
}

// pushLogs appends one line per record, then flushes (and fsyncs, with
// fsync: batch) before returning, so that an acknowledged batch is in the
// file. A failed write returns an error and the batch is retried whole:
// delivery is at least once.
func (e *fileExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.w == nil {
		return errors.New("siphon_file exporter: not started")
	}
	written := 0
	for _, r := range record.All(ld) {
		line, reason, err := e.render(r)
		if err != nil {
			e.tel.SiphonFileExporterRecordsDropped.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
			e.logger.Warn("record cannot be written as "+e.cfg.Format+"; dropped", zap.String("event", r.Log.EventName()), zap.Error(err))
			continue
		}
		if err := e.w.Write(line); err != nil {
			return fmt.Errorf("siphon_file exporter: %w", err)
		}
		written++
	}
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("siphon_file exporter: %w", err)
	}
	e.tel.SiphonFileExporterRecordsWritten.Add(ctx, int64(written))
	return nil
}

func (e *fileExporter) render(r record.Item) ([]byte, string, error) {
	var err error
	if e.csv != nil {
		e.line, err = e.csv.AppendRow(e.line[:0], r.Log)
		if errors.Is(err, cdrrecord.ErrNotCDR) {
			return nil, "not_cdr", err
		}
		return e.line, "render_error", err
	}
	e.line, err = recordjson.Append(e.line[:0], r.Log, r.Resource, e.cfg.Source)
	if err != nil {
		return nil, "render_error", err
	}
	e.line = append(e.line, '\n')
	return e.line, "", nil
}
