package logbatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
)

// TestBatchesArriveInOrder: while the timer's partial batch is still in
// the pipeline, the next batch, filled by the reader, waits for it; a
// consumer that follows transactions across records sees them in the order
// they were added.
func TestBatchesArriveInOrder(t *testing.T) {
	for _, block := range []bool{false, true} {
		t.Run(map[bool]string{false: "datagrams", true: "streams"}[block], func(t *testing.T) {
			var (
				mu      sync.Mutex
				order   []int64
				calls   int
				entered = make(chan struct{})
				second  = make(chan struct{})
				release = make(chan struct{})
			)
			next, err := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error {
				mu.Lock()
				calls++
				call := calls
				mu.Unlock()
				switch call {
				case 1: // the timer's batch, held in the pipeline
					close(entered)
					<-release
				case 2:
					close(second)
				}
				mu.Lock()
				defer mu.Unlock()
				for _, rl := range ld.ResourceLogs().All() {
					for _, sl := range rl.ScopeLogs().All() {
						for _, lr := range sl.LogRecords().All() {
							order = append(order, lr.Attributes().AsRaw()["n"].(int64))
						}
					}
				}
				return nil
			})
			require.NoError(t, err)
			set := receivertest.NewNopSettings(component.MustNewType("test"))
			obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "test", ReceiverCreateSettings: set})
			require.NoError(t, err)
			b := New(Settings{Transport: "test", Format: "test", Block: block, Batch: Config{MaxSize: 2, Timeout: time.Millisecond},
				ScopeName: "test", Next: next, Obs: obs, Logger: zap.NewNop(),
				Retried: func() {}, Dropped: func(string, int) {}, Stopping: make(chan struct{})})
			add := func(n int64) {
				lr := plog.NewLogRecord()
				lr.Attributes().PutInt("n", n)
				b.Add("node", lr)
			}
			add(1)
			<-entered // the timer delivers [1] and is held
			done := make(chan struct{})
			go func() {
				defer close(done)
				add(2)
				add(3) // a full batch: [2 3]
			}()
			assert.Never(t, func() bool {
				select {
				case <-second:
					return true
				default:
					return false
				}
			}, 200*time.Millisecond, 5*time.Millisecond, "the second batch reached the pipeline while the first was in it")
			close(release)
			<-done
			b.Flush()
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, []int64{1, 2, 3}, order)
		})
	}
}
