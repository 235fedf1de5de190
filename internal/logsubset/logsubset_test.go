package logsubset

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/plog"
)

func sample() plog.Logs {
	ld := plog.NewLogs()
	for r := range 2 {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutInt("r", int64(r))
		for s := range 2 {
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(fmt.Sprint("scope", s))
			for i := range 3 {
				sl.LogRecords().AppendEmpty().Body().SetStr(fmt.Sprintf("%d/%d/%d", r, s, i))
			}
		}
	}
	return ld
}

func TestFrom(t *testing.T) {
	tail := From(sample(), 5)
	assert.Equal(t, 7, tail.LogRecordCount())
	first := tail.ResourceLogs().At(0)
	assert.Equal(t, map[string]any{"r": int64(0)}, first.Resource().Attributes().AsRaw())
	assert.Equal(t, "scope1", first.ScopeLogs().At(0).Scope().Name())
	assert.Equal(t, "0/1/2", first.ScopeLogs().At(0).LogRecords().At(0).Body().Str())
	assert.Equal(t, 2, tail.ResourceLogs().Len())
	assert.Equal(t, 0, From(sample(), 12).LogRecordCount())
	assert.Equal(t, 12, From(sample(), 0).LogRecordCount())
}

func TestPick(t *testing.T) {
	odd := Pick(sample(), func(i int) bool { return i%2 == 1 })
	var bodies []string
	for _, rl := range odd.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				bodies = append(bodies, lr.Body().Str())
			}
		}
	}
	assert.Equal(t, []string{"0/0/1", "0/1/0", "0/1/2", "1/0/1", "1/1/0", "1/1/2"}, bodies)
}
