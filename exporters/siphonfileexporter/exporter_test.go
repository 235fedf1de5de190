package siphonfileexporter

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/exporters/siphonfileexporter/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/rotfile"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/records"
	"github.com/siphon-otel/siphon-otel/internal/testenv/telemetry"
)

type harness struct {
	exp interface {
		ConsumeLogs(context.Context, plog.Logs) error
	}
	tel     *componenttest.Telemetry
	metrics *telemetry.Reader // the exporter's own, by their names in metadata.yaml
	cfg     *Config
}

func newFile(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Path = filepath.Join(t.TempDir(), "cdr.jsonl")
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	mutate(cfg)
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := exportertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	exp, err := NewFactory().CreateLogs(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	metrics, err := telemetry.NewReader(tel, "metadata.yaml")
	require.NoError(t, err)
	return &harness{exp: exp, tel: tel, metrics: metrics, cfg: cfg}
}

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
	def, err := load("")
	require.NoError(t, err)
	assert.Equal(t, "/var/log/siphon/cdr.jsonl", def.Path)
	assert.Equal(t, 100, def.RotateSizeMB)
	assert.Equal(t, FsyncBatch, def.Fsync)
	cfg, err := load("csv")
	require.NoError(t, err)
	assert.Equal(t, FormatCSV, cfg.Format)
	assert.True(t, cfg.Compress)
	assert.Equal(t, 30, cfg.MaxFiles)
	assert.Equal(t, FsyncRotate, cfg.Fsync)
	assert.Equal(t, record.SourceAttributes, cfg.Source)
	assert.Equal(t, []string{"billing_id", "trunk"}, cfg.CSV.ExtraColumns)
	assert.Equal(t, "file_storage/cdr", cfg.QueueConfig.Get().StorageID.String())
	_, err = load("bad")
	for _, want := range []string{`format must be json or csv, got "xml"`, `fsync must be never, rotate or batch, got "sometimes"`,
		`source: must be "body" or "attributes", got "nowhere"`, "compress and max_files need rotate_size_mb"} {
		assert.ErrorContains(t, err, want)
	}
}

func TestJSONLinesAreSIPhonBytes(t *testing.T) {
	h := newFile(t, func(*Config) {})
	ld := records.CDRs(t, "a84b4c76e66710@192.168.1.100")
	sip := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	sip.SetEventName(record.EventSIPMessage)
	sip.Body().SetStr("OPTIONS sip:x SIP/2.0\r\n\r\n")
	sip.Attributes().PutStr(record.AttrSIPCallID, "opt-1")
	require.NoError(t, h.exp.ConsumeLogs(context.Background(), ld))
	b, err := os.ReadFile(h.cfg.Path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Len(t, lines, 2)
	assert.Equal(t, string(fixture.CDR()), lines[0], "byte-identical to SIPhon's file backend")
	assert.True(t, json.Valid([]byte(lines[1])))
	assert.Contains(t, lines[1], `"event":"sip.message","call_id":"opt-1"`)
	assert.Equal(t, int64(2), h.metrics.Sum(t, "siphon_file_exporter_records_written"))
}

func TestSourceAttributesShowsProcessing(t *testing.T) {
	h := newFile(t, func(c *Config) { c.Source = record.SourceAttributes })
	ld := records.CDRs(t, "c1")
	lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	lr.Attributes().PutStr(record.AttrSIPFromURI, "sip:redacted@example.com") // as a processor would
	require.NoError(t, h.exp.ConsumeLogs(context.Background(), ld))
	b, err := os.ReadFile(h.cfg.Path)
	require.NoError(t, err)
	want := strings.Replace(string(fixture.CDRWithID("c1")), "sip:alice@example.com", "sip:redacted@example.com", 1)
	assert.Equal(t, want+"\n", string(b))
}

func TestCSV(t *testing.T) {
	h := newFile(t, func(c *Config) { c.Format, c.CSV.ExtraColumns = FormatCSV, []string{"trunk"} })
	ld := records.CDRs(t, "c1", "c2")
	ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty().SetEventName(record.EventSIPMessage)
	require.NoError(t, h.exp.ConsumeLogs(context.Background(), ld))
	b, err := os.ReadFile(h.cfg.Path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Len(t, lines, 3)
	assert.True(t, strings.HasPrefix(lines[0], "timestamp,call_id,"))
	assert.True(t, strings.HasSuffix(lines[0], ",trunk,extra"))
	assert.Contains(t, lines[1], ",c1,")
	assert.Contains(t, lines[2], `,carrier-a,"{""billing_id"":""B-12345""}"`)
	assert.Equal(t, int64(1), h.metrics.Sum(t, "siphon_file_exporter_records_dropped", attribute.String("reason", "not_cdr")))
}

func TestRotationAcrossBatches(t *testing.T) {
	h := newFile(t, func(c *Config) { c.RotateSizeMB, c.Compress, c.MaxFiles = 1, true, 2 })
	// ~500 bytes a record: 2100 per batch cross 1 MiB about once a batch
	const batches, per = 4, 2100
	for b := range batches {
		ids := make([]string, per)
		for i := range ids {
			ids[i] = fmt.Sprintf("call-%d-%d", b, i)
		}
		require.NoError(t, h.exp.ConsumeLogs(context.Background(), records.CDRs(t, ids...)))
	}
	rotations := h.metrics.Sum(t, "siphon_file_exporter_rotations")
	assert.GreaterOrEqual(t, rotations, int64(3))
	// the current file is below the limit, nothing is split across files
	st, err := os.Stat(h.cfg.Path)
	require.NoError(t, err)
	assert.Less(t, st.Size(), int64(1<<20))
	require.Eventually(t, func() bool {
		files, _ := rotfile.Rotated(h.cfg.Path)
		return len(files) == 2 && strings.HasSuffix(files[0], ".gz") && strings.HasSuffix(files[1], ".gz")
	}, 10*time.Second, 10*time.Millisecond, "compressed and pruned to max_files")
	f, err := os.Open(h.cfg.Path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		assert.True(t, json.Valid(sc.Bytes()))
	}
}

func TestConcurrentPushesWriteWholeLines(t *testing.T) {
	h := newFile(t, func(c *Config) {
		q := exporterhelper.NewDefaultQueueConfig()
		q.NumConsumers = 8
		q.WaitForResult = true
		c.QueueConfig = configoptional.Some(q)
	})
	done := make(chan error, 20)
	for g := range 20 {
		go func() {
			ids := make([]string, 100)
			for i := range ids {
				ids[i] = fmt.Sprintf("g%d-%d", g, i)
			}
			done <- h.exp.ConsumeLogs(context.Background(), records.CDRs(t, ids...))
		}()
	}
	for range 20 {
		require.NoError(t, <-done)
	}
	b, err := os.ReadFile(h.cfg.Path)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		r, err := cdr.Parse([]byte(line))
		require.NoError(t, err, line)
		seen[r.CallID()] = true
	}
	assert.Len(t, seen, 2000)
}
