package cdrrecord

import (
	"encoding/json"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

// The micro-benchmarks use SIPhon's own record (the shared fixture); the
// render baseline is json.Marshal of the record decoded into a map.

// BenchmarkFromCDR is parse plus the log record the receivers emit.
func BenchmarkFromCDR(b *testing.B) {
	raw := fixture.CDR()
	now := time.Now()
	logs := plog.NewLogs()
	records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 {
			records.RemoveIf(func(plog.LogRecord) bool { return true })
		}
		r, err := cdr.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		FromCDR(r, raw, now, records.AppendEmpty())
	}
}

// BenchmarkRender renders the record from its attributes, as exporters do
// for records that did not arrive as SIPhon JSON.
func BenchmarkRender(b *testing.B) {
	raw := fixture.CDR()
	lr := logRecord(b, raw)
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendJSON(buf[:0], lr, record.SourceAttributes); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderCSV(b *testing.B) {
	raw := fixture.CDR()
	lr := logRecord(b, raw)
	var c CSV
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = c.AppendRow(buf[:0], lr); err != nil {
			b.Fatal(err)
		}
	}
}
func BenchmarkBaselineRenderStdlib(b *testing.B) {
	raw := fixture.CDR()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}
