package cdr

import (
	"encoding/json"
	"testing"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

// The CDR parse benchmarks use SIPhon's own record (the shared fixture);
// their baseline is encoding/json decoding it into a map. Rendering is
// measured in record/cdrrecord.

func BenchmarkParse(b *testing.B) {
	raw := fixture.CDR()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseValidInto is the receiver's parse of a validated request's
// records: one Record reused.
func BenchmarkParseValidInto(b *testing.B) {
	raw := fixture.CDR()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var r Record
	for b.Loop() {
		if err := ParseValidInto(&r, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBaselineParseStdlib(b *testing.B) {
	raw := fixture.CDR()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			b.Fatal(err)
		}
	}
}
