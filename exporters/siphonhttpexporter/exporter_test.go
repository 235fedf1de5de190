package siphonhttpexporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/exporters/siphonhttpexporter/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/records"
	"github.com/siphon-otel/siphon-otel/internal/testenv/telemetry"
)

// target is a billing endpoint that records what it gets and answers with
// whatever respond says.
type target struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   [][]byte
	times    []time.Time
	respond  func(n int, body []byte) (int, http.Header)
}

func newTarget(t *testing.T, respond func(n int, body []byte) (int, http.Header)) *target {
	tg := &target{respond: respond}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rd io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			rd = zr
		}
		body, _ := io.ReadAll(rd)
		tg.mu.Lock()
		n := len(tg.requests)
		tg.requests = append(tg.requests, r)
		tg.bodies = append(tg.bodies, body)
		tg.times = append(tg.times, time.Now())
		tg.mu.Unlock()
		status, hdr := http.StatusOK, http.Header{}
		if tg.respond != nil {
			status, hdr = tg.respond(n, body)
		}
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"status":"x"}`))
	}))
	t.Cleanup(tg.Close)
	return tg
}

// callIDs lists the Call-IDs of every record the target accepted (2xx).
func (tg *target) accepted(t *testing.T, ok func(n int) bool) []string {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	var ids []string
	for n, b := range tg.bodies {
		if !ok(n) {
			continue
		}
		for _, obj := range splitBody(t, b) {
			r, err := cdr.Parse(obj)
			require.NoError(t, err)
			ids = append(ids, r.CallID())
		}
	}
	return ids
}

func splitBody(t *testing.T, b []byte) [][]byte {
	b = bytes.TrimSpace(b)
	if b[0] == '[' {
		var arr []json.RawMessage
		require.NoError(t, json.Unmarshal(b, &arr))
		out := make([][]byte, len(arr))
		for i := range arr {
			out[i] = arr[i]
		}
		return out
	}
	return bytes.Split(b, []byte("\n"))
}

type harness struct {
	exp     exporter.Logs
	tel     *componenttest.Telemetry
	metrics *telemetry.Reader // the exporter's own, by their names in metadata.yaml
}

func newHTTP(t *testing.T, url string, mutate func(*Config)) *harness {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = url
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.InitialInterval = 10 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 50 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = 20 * time.Second
	mutate(cfg)
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := exportertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	exp, err := NewFactory().CreateLogs(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, exp.Shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	metrics, err := telemetry.NewReader(tel, "metadata.yaml")
	require.NoError(t, err)
	return &harness{exp: exp, tel: tel, metrics: metrics}
}

func all(int) bool { return true }

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	load := func(name string) (*Config, error) {
		cfg := createDefaultConfig().(*Config)
		sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
		require.NoError(t, err)
		require.NoError(t, sub.Unmarshal(cfg))
		return cfg, confmap.Validate(cfg)
	}
	_, err = load("")
	assert.ErrorContains(t, err, `endpoint must be an http or https URL, got ""`)
	cfg, err := load("batch")
	require.NoError(t, err)
	assert.Equal(t, ModeBatch, cfg.Mode)
	assert.Equal(t, FormatNDJSON, cfg.BatchFormat)
	assert.Equal(t, "Bearer tok123", string(cfg.AuthHeader))
	assert.Equal(t, 200, cfg.MaxRecordsPerRequest)
	assert.Equal(t, "gzip", string(cfg.Compression))
	assert.Equal(t, "/etc/otelcol/billing-ca.pem", cfg.TLS.CAFile)
	assert.Equal(t, int64(100), cfg.QueueConfig.Get().Batch.Get().MinSize)
	_, err = load("bad")
	for _, want := range []string{`endpoint must be an http or https URL, got "ftp://x"`, `mode must be single or batch, got "stream"`,
		`batch_format must be json_array or ndjson, got "xml"`, "max_records_per_request must be at least 1",
		`source: must be "body" or "attributes", got "guess"`} {
		assert.ErrorContains(t, err, want)
	}
}

func TestSingleModeIsWhatSIPhonSends(t *testing.T) {
	tg := newTarget(t, nil)
	h := newHTTP(t, tg.URL+"/v1/cdr", func(c *Config) { c.AuthHeader = "Bearer tok123" })
	require.NoError(t, h.exp.ConsumeLogs(context.Background(), records.CDRs(t, "a84b4c76e66710@192.168.1.100", "c2", "c3")))
	require.Len(t, tg.requests, 3)
	for i, r := range tg.requests {
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "/v1/cdr", r.URL.Path)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		assert.Equal(t, "Bearer tok123", r.Header.Get("Authorization"))
		assert.Empty(t, r.Header.Get("Content-Encoding"))
		if i == 0 {
			assert.Equal(t, string(fixture.CDR()), string(tg.bodies[0]), "SIPhon's record, byte for byte")
		}
	}
	assert.Equal(t, []string{"a84b4c76e66710@192.168.1.100", "c2", "c3"}, tg.accepted(t, all))
}

func TestBatchModes(t *testing.T) {
	for _, format := range []string{FormatJSONArray, FormatNDJSON} {
		t.Run(format, func(t *testing.T) {
			tg := newTarget(t, nil)
			h := newHTTP(t, tg.URL, func(c *Config) {
				c.Mode, c.BatchFormat, c.MaxRecordsPerRequest, c.Compression = ModeBatch, format, 2, "gzip"
				c.Headers.Set("X-Tenant", "acme")
			})
			require.NoError(t, h.exp.ConsumeLogs(context.Background(), records.CDRs(t, "1", "2", "3", "4", "5")))
			require.Len(t, tg.requests, 3, "split at max_records_per_request")
			for _, r := range tg.requests {
				assert.Equal(t, "gzip", r.Header.Get("Content-Encoding"))
				assert.Equal(t, "acme", r.Header.Get("X-Tenant"))
				if format == FormatNDJSON {
					assert.Equal(t, "application/x-ndjson", r.Header.Get("Content-Type"))
				} else {
					assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
				}
			}
			assert.Equal(t, []string{"1", "2", "3", "4", "5"}, tg.accepted(t, all))
		})
	}
}

func TestClientErrorsAreCountedNotRetried(t *testing.T) {
	tg := newTarget(t, func(n int, body []byte) (int, http.Header) {
		if bytes.Contains(body, []byte(`"call_id":"bad"`)) {
			return http.StatusUnprocessableEntity, nil
		}
		return http.StatusOK, nil
	})
	h := newHTTP(t, tg.URL, func(*Config) {})
	require.NoError(t, h.exp.ConsumeLogs(context.Background(), records.CDRs(t, "ok1", "bad", "ok2")))
	assert.Len(t, tg.requests, 3, "no retry of the refused record")
	assert.Equal(t, int64(1), h.metrics.Sum(t, "siphon_http_exporter_records_rejected", attribute.Int("status_code", 422)))
	assert.Equal(t, int64(2), h.metrics.Sum(t, "siphon_http_exporter_requests", attribute.Int("status_code", 200)))
}

func TestServerErrorRetriesOnlyTheRest(t *testing.T) {
	failed := false
	tg := newTarget(t, func(n int, body []byte) (int, http.Header) {
		if n == 2 && !failed { // the third request fails once
			failed = true
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, nil
	})
	h := newHTTP(t, tg.URL, func(*Config) {})
	ids := []string{"1", "2", "3", "4", "5"}
	require.NoError(t, h.exp.ConsumeLogs(context.Background(), records.CDRs(t, ids...)))
	assert.Equal(t, ids, tg.accepted(t, func(n int) bool { return n != 2 }), "each record accepted once, in order")
	assert.Len(t, tg.requests, 6)
}

func TestRetryAfterIsHonoured(t *testing.T) {
	tg := newTarget(t, func(n int, _ []byte) (int, http.Header) {
		if n == 0 {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}
		}
		return http.StatusOK, nil
	})
	h := newHTTP(t, tg.URL, func(*Config) {})
	require.NoError(t, h.exp.ConsumeLogs(context.Background(), records.CDRs(t, "1")))
	require.Len(t, tg.times, 2)
	// the backoff alone would retry after 10 ms; the server asked for 1 s
	assert.GreaterOrEqual(t, tg.times[1].Sub(tg.times[0]), time.Second)
	assert.Equal(t, int64(1), h.metrics.Sum(t, "siphon_http_exporter_requests", attribute.Int("status_code", 429)))
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 3, 6, 14, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"30": 30 * time.Second, "0": 0, "Fri, 06 Mar 2026 14:00:10 GMT": 10 * time.Second, "Fri, 06 Mar 2026 13:00:00 GMT": 0,
	} {
		got, ok := retryAfter(v, now)
		assert.True(t, ok, v)
		assert.Equal(t, want, got, v)
	}
	for _, v := range []string{"", "soon", "-5"} {
		_, ok := retryAfter(v, now)
		assert.False(t, ok, v)
	}
}

func TestOutageThenRecovery(t *testing.T) {
	var mu sync.Mutex
	down := true
	tg := newTarget(t, func(int, []byte) (int, http.Header) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusOK, nil
	})
	h := newHTTP(t, tg.URL, func(c *Config) { c.Mode = ModeBatch })
	done := make(chan error, 1)
	go func() { done <- h.exp.ConsumeLogs(context.Background(), records.CDRs(t, "a", "b", "c")) }()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.GreaterOrEqual(c, h.metrics.Sum(c, "siphon_http_exporter_requests", attribute.Int("status_code", 503)), int64(3))
	}, 10*time.Second, time.Millisecond)
	mu.Lock()
	down = false
	mu.Unlock()
	require.NoError(t, <-done)
	last := len(tg.requests) - 1
	assert.Equal(t, []string{"a", "b", "c"}, tg.accepted(t, func(n int) bool { return n == last }))
}

func TestTargetDownIsRetryable(t *testing.T) {
	h := newHTTP(t, "http://127.0.0.1:1/cdr", func(c *Config) { c.RetryConfig.Enabled = false })
	err := h.exp.ConsumeLogs(context.Background(), records.CDRs(t, "x"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connection refused")
	assert.False(t, consumererror.IsPermanent(err))
	assert.Equal(t, int64(1), h.metrics.Sum(t, "siphon_http_exporter_requests", attribute.Int("status_code", 0)))
}
