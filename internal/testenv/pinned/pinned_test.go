package pinned

import (
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/record"
)

func logs(bodies ...string) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, s := range bodies {
		lrs.AppendEmpty().Body().SetStr(s)
	}
	lrs.AppendEmpty().Body().SetEmptyBytes().FromRaw([]byte{0x80, 0xc8})
	return ld
}

// body is a fresh, large allocation: not a constant, not a tiny object the
// runtime could batch with a live one.
func body(s string) string { return strings.Repeat(s, 200) }

func TestAliveCountsKeptBodies(t *testing.T) {
	ld := logs(body("a"), body("b"), body("c"))
	b := Watch(ld)
	assert.Equal(t, 3, b.Len(), "string bodies only")
	kept := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(1).Body().Str()[10:20]
	ld = plog.Logs{}
	assert.Equal(t, []string{body("b")}, b.Reachable(), "a slice of one body keeps that body")
	runtime.KeepAlive(kept)
	kept = ""
	assert.Empty(t, b.Reachable())
}

// TestCalls: the workload has every kind of record, as many as it says.
func TestCalls(t *testing.T) {
	ld := Calls(t, 4)
	kinds := map[string]int{}
	for _, it := range record.All(ld) {
		kinds[it.Log.EventName()]++
	}
	// per call: 7 setup messages, 1 PUBLISH, b-leg, scanner INVITE, OPTIONS;
	// 4 BYE messages for odd calls; rtpengine's 6 RTCP reports (JSON)
	assert.Equal(t, 4*11+2*4, kinds[record.EventSIPMessage])
	assert.Equal(t, 4+2, kinds[record.EventCDR], "a REGISTER CDR each, an INVITE CDR per ended call")
	assert.Equal(t, 4*6, kinds["hep.rtcp"])
	assert.Equal(t, 4*11+2*4+4+2+4*6, Watch(ld).Len(), "every body is text")
}
