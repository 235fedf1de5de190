package cdr

import (
	"encoding/json"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// The CDR micro-benchmarks use SIPhon's own record (the shared fixture).
// Their baselines are the standard library doing the same job generically:
// encoding/json into a map (parse) and json.Marshal of that map (render).

func BenchmarkParse(b *testing.B) {
	raw := fixture(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineParseStdlib(b *testing.B) {
	raw := fixture(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkToLogRecord is parse plus the log record the receivers emit.
func BenchmarkToLogRecord(b *testing.B) {
	raw := fixture(b)
	now := time.Now()
	logs := plog.NewLogs()
	records := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 {
			records.RemoveIf(func(plog.LogRecord) bool { return true })
		}
		r, err := Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		ToLogRecord(r, raw, now, records.AppendEmpty())
	}
}

// BenchmarkRender renders the record from its attributes, as exporters do
// for records that did not arrive as SIPhon JSON.
func BenchmarkRender(b *testing.B) {
	raw := fixture(b)
	lr := record(b, raw)
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendJSON(buf[:0], lr, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineRenderStdlib(b *testing.B) {
	raw := fixture(b)
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

func BenchmarkRenderCSV(b *testing.B) {
	raw := fixture(b)
	lr := record(b, raw)
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
