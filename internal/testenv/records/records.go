// Package records builds batches of records for component tests: SIPhon's
// sample CDR under chosen Call-IDs, turned into log records the way the
// siphon_cdr receiver does.
package records

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

// CDRs is one batch holding the sample CDR (fixture.CDRWithID) once per
// Call-ID in ids, received now.
func CDRs(t testing.TB, ids ...string) plog.Logs {
	t.Helper()
	return NodeCDRs(t, "", ids...)
}

// NodeCDRs is CDRs sent by node (the resource's service.instance.id; none
// when "").
func NodeCDRs(t testing.TB, node string, ids ...string) plog.Logs {
	t.Helper()
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	if node != "" {
		rl.Resource().Attributes().PutStr(record.AttrServiceInstanceID, node)
	}
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, id := range ids {
		b := fixture.CDRWithID(id)
		r, err := cdr.Parse(b)
		if err != nil {
			t.Fatalf("records: the sample CDR with Call-ID %q: %v", id, err)
		}
		cdrrecord.FromCDR(r, b, time.Now(), recs.AppendEmpty())
	}
	return ld
}
