package logexport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/record"
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
	for _, r := range record.All(odd) {
		lr := r.Log
		bodies = append(bodies, lr.Body().Str())
	}
	assert.Equal(t, []string{"0/0/1", "0/1/0", "0/1/2", "1/0/1", "1/1/0", "1/1/2"}, bodies)
}

func TestUnsentAndRetry(t *testing.T) {
	cause := errors.New("down")
	assert.Same(t, cause, Unsent(cause, sample(), 0), "nothing sent: the whole batch is retried as is")
	var le consumererror.Logs
	require.ErrorAs(t, Unsent(cause, sample(), 10), &le)
	assert.Equal(t, 2, le.Data().LogRecordCount())
	assert.ErrorIs(t, le, cause)
	require.ErrorAs(t, Retry(cause, sample(), func(i int) bool { return i%4 == 0 }), &le)
	assert.Equal(t, 3, le.Data().LogRecordCount())
}

func TestClientTLS(t *testing.T) {
	c, err := ClientTLS(context.Background(), configtls.ClientConfig{})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, c.MinVersion, uint16(tls.VersionTLS12))
	_, err = ClientTLS(context.Background(), configtls.ClientConfig{Config: configtls.Config{CAFile: "/nonexistent/ca.pem"}})
	assert.ErrorContains(t, err, "tls:")
}
