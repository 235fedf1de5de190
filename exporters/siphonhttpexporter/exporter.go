package siphonhttpexporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/siphon-otel/siphon-otel/exporters/siphonhttpexporter/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/logexport"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/recordjson"
)

type httpExporter struct {
	cfg    *Config
	set    exporter.Settings
	logger *zap.Logger // rate-limited
	tel    *metadata.TelemetryBuilder
	client *http.Client
}

func newExporter(set exporter.Settings, cfg *Config) (*httpExporter, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("siphon_http exporter: telemetry: %w", err)
	}
	return &httpExporter{
		cfg: cfg, set: set, tel: tel,
		logger: logexport.SampledLogger(set.Logger),
	}, nil
}

func (e *httpExporter) start(ctx context.Context, host component.Host) error {
	client, err := e.cfg.ClientConfig.ToClient(ctx, host.GetExtensions(), e.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("siphon_http exporter: %w", err)
	}
	e.client = client
	return nil
}

func (e *httpExporter) shutdown(context.Context) error {
	if e.client != nil {
		e.client.CloseIdleConnections()
	}
	e.tel.Shutdown()
	return nil
}

// line is one rendered record and its index in the batch.
type line struct {
	idx  int
	json []byte
}

func (e *httpExporter) lines(ctx context.Context, ld plog.Logs) []line {
	var out []line
	for i, r := range record.All(ld) {
		b, err := recordjson.Append(nil, r.Log, r.Resource, e.cfg.Source)
		if err != nil {
			e.rejected(ctx, 0, 1)
			e.logger.Warn("record cannot be rendered; dropped", zap.String("event", r.Log.EventName()), zap.Error(err))
			continue
		}
		out = append(out, line{idx: i, json: b})
	}
	return out
}

// pushLogs sends the records in order. A record (or batch) the target
// refuses with a 4xx other than 429 is counted and skipped; on any other
// failure the records from that request on are handed back for retry, after
// the target's Retry-After when it sent one.
func (e *httpExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	lines := e.lines(ctx, ld)
	per := 1
	if e.cfg.Mode == ModeBatch {
		per = e.cfg.MaxRecordsPerRequest
	}
	for start := 0; start < len(lines); start += per {
		chunk := lines[start:min(start+per, len(lines))]
		err := e.post(ctx, chunk)
		var rej *rejectedError
		switch {
		case err == nil:
		case errors.As(err, &rej):
			e.rejected(ctx, rej.status, len(chunk))
			e.logger.Warn("records refused by the target; dropped", zap.Int("records", len(chunk)), zap.Error(err))
		default:
			// what was posted or dropped before this chunk is not resent
			err = logexport.Unsent(err, ld, chunk[0].idx)
			var ra *retryAfterError
			if errors.As(err, &ra) {
				return exporterhelper.NewThrottleRetry(err, ra.after)
			}
			return err
		}
	}
	return nil
}

func (e *httpExporter) rejected(ctx context.Context, status, n int) {
	e.tel.SiphonHTTPExporterRecordsRejected.Add(ctx, int64(n), metric.WithAttributes(attribute.Int("status_code", status)))
}

// rejectedError is a 4xx other than 429: resending will not help.
type rejectedError struct {
	status int
	body   string
}

func (r *rejectedError) Error() string {
	return fmt.Sprintf("siphon_http exporter: target refused the request: HTTP %d: %s", r.status, r.body)
}

// retryAfterError is a 429 or 503 that said when to come back.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (r *retryAfterError) Error() string { return r.err.Error() }
func (r *retryAfterError) Unwrap() error { return r.err }

func (e *httpExporter) body(chunk []line) ([]byte, string) {
	if e.cfg.Mode == ModeSingle {
		return chunk[0].json, "application/json"
	}
	var b bytes.Buffer
	if e.cfg.BatchFormat == FormatNDJSON {
		for _, l := range chunk {
			b.Write(l.json)
			b.WriteByte('\n')
		}
		return b.Bytes(), "application/x-ndjson"
	}
	b.WriteByte('[')
	for i, l := range chunk {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(l.json)
	}
	b.WriteByte(']')
	return b.Bytes(), "application/json"
}

func (e *httpExporter) post(ctx context.Context, chunk []line) error {
	body, contentType := e.body(chunk)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.Endpoint, bytes.NewReader(body))
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("siphon_http exporter: %w", err))
	}
	req.Header.Set("Content-Type", contentType)
	if e.cfg.AuthHeader != "" {
		req.Header.Set("Authorization", string(e.cfg.AuthHeader))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.tel.SiphonHTTPExporterRequests.Add(ctx, 1, metric.WithAttributes(attribute.Int("status_code", 0)))
		return fmt.Errorf("siphon_http exporter: POST %s: %w", e.cfg.Endpoint, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	_ = resp.Body.Close()
	e.tel.SiphonHTTPExporterRequests.Add(ctx, 1, metric.WithAttributes(attribute.Int("status_code", resp.StatusCode)))
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s == http.StatusTooManyRequests || s >= 500:
		err := fmt.Errorf("siphon_http exporter: POST %s: HTTP %d: %s", e.cfg.Endpoint, s, bytes.TrimSpace(msg))
		if after, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return &retryAfterError{err: err, after: after}
		}
		return err
	case s >= 400:
		return &rejectedError{status: s, body: string(bytes.TrimSpace(msg))}
	default: // 1xx, 3xx: not a success
		return fmt.Errorf("siphon_http exporter: POST %s: unexpected HTTP %d", e.cfg.Endpoint, s)
	}
}

// retryAfter parses a Retry-After value: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
