// Package logbatch is the receiver side of "never lose accepted data": it
// collects log records per sending node into batches and hands them to the
// pipeline when a batch is full or its oldest record has waited long enough.
//
// The goroutine that fills a batch delivers it itself, so a slow or
// refusing pipeline holds up exactly the readers that feed it. With Block
// (stream transports), a refused batch is retried with backoff while those
// readers stop reading, which turns into TCP backpressure towards the
// senders. Without it (datagrams, which cannot push back), a refused batch is
// dropped and counted.
package logbatch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
)

// Settings configure a Batcher.
type Settings struct {
	Transport string // for logs and obsreport
	Format    string // obsreport format, e.g. "hep"
	Block     bool   // retry refused batches (backpressure) instead of dropping
	Batch     Config
	ScopeName string
	Next      consumer.Logs
	Obs       *receiverhelper.ObsReport
	Logger    *zap.Logger
	// Resource fills the resource attributes of a node's records.
	Resource ResourceConfig
	// Retried is called for each retry of a refused batch (Block only).
	Retried func()
	// Dropped is called with a reason and a count for records given up:
	// "pipeline_refused", "permanent_error" or "shutdown".
	Dropped func(reason string, n int)
	// Stopping, when closed, ends retries: the batch is dropped as "shutdown".
	Stopping <-chan struct{}
}

// Batcher collects the records of one transport.
type Batcher struct {
	s  Settings
	mu sync.Mutex
	// delivering is held by the goroutine handing a batch to the pipeline,
	// taken before mu is released: batches arrive in the order they were
	// filled. Without it the timer's partial batch and the reader's next,
	// full one raced, and a consumer that follows transactions (sipkpi)
	// saw a response before its request.
	delivering sync.Mutex
	logs       plog.Logs
	slots      map[string]plog.LogRecordSlice
	count      int
	timer      *time.Timer
	timerBusy  atomic.Bool
}

// New returns a Batcher; it holds no goroutine until records arrive.
func New(s Settings) *Batcher {
	b := &Batcher{s: s}
	b.reset()
	b.timer = time.AfterFunc(time.Hour, b.onTimer)
	b.timer.Stop()
	return b
}

func (b *Batcher) reset() {
	b.logs = plog.NewLogs()
	b.slots = make(map[string]plog.LogRecordSlice, 4)
	b.count = 0
}

// Add moves lr (left empty, ready for reuse) into node's part of the batch,
// and delivers the batch if it is full.
func (b *Batcher) Add(node string, lr plog.LogRecord) {
	b.mu.Lock()
	slot, ok := b.slots[node]
	if !ok {
		rl := b.logs.ResourceLogs().AppendEmpty()
		b.s.Resource.Fill(rl.Resource().Attributes(), node)
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(b.s.ScopeName)
		slot = sl.LogRecords()
		b.slots[node] = slot
	}
	lr.MoveTo(slot.AppendEmpty())
	b.count++
	if b.count == 1 {
		b.timer.Reset(b.s.Batch.Timeout)
	}
	if b.count < b.s.Batch.MaxSize {
		b.mu.Unlock()
		return
	}
	logs, n := b.take()
	b.delivering.Lock()
	b.mu.Unlock()
	b.deliver(logs, n)
	b.delivering.Unlock()
}

// take removes the pending batch; the caller holds mu.
func (b *Batcher) take() (plog.Logs, int) {
	logs, n := b.logs, b.count
	if n > 0 {
		b.reset()
	}
	return logs, n
}

// onTimer delivers partial batches. At most one timer goroutine delivers at
// a time; it keeps going while records keep waiting, so a timer that fires
// while it is busy loses nothing.
func (b *Batcher) onTimer() {
	if !b.timerBusy.CompareAndSwap(false, true) {
		return
	}
	for {
		b.mu.Lock()
		logs, n := b.take()
		if n == 0 {
			b.timerBusy.Store(false)
			b.mu.Unlock()
			return
		}
		b.delivering.Lock()
		b.mu.Unlock()
		b.deliver(logs, n)
		b.delivering.Unlock()
	}
}

// Flush delivers whatever is pending; for shutdown, after the readers ended.
func (b *Batcher) Flush() {
	b.timer.Stop()
	b.mu.Lock()
	logs, n := b.take()
	b.delivering.Lock()
	b.mu.Unlock()
	defer b.delivering.Unlock()
	if n > 0 {
		b.deliver(logs, n)
	}
}

func (b *Batcher) deliver(logs plog.Logs, n int) {
	ctx := b.s.Obs.StartLogsOp(context.Background())
	err := b.s.Next.ConsumeLogs(ctx, logs)
	backoff := 5 * time.Millisecond
	for err != nil && b.s.Block && !consumererror.IsPermanent(err) {
		b.s.Retried()
		select {
		case <-b.s.Stopping:
			b.s.Obs.EndLogsOp(ctx, b.s.Format, n, err)
			b.s.Dropped("shutdown", n)
			b.s.Logger.Error("records dropped: the pipeline refused them until shutdown",
				zap.String("transport", b.s.Transport), zap.Int("records", n), zap.Error(err))
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
		err = b.s.Next.ConsumeLogs(ctx, logs)
	}
	b.s.Obs.EndLogsOp(ctx, b.s.Format, n, err)
	if err == nil {
		return
	}
	reason := "pipeline_refused"
	if consumererror.IsPermanent(err) {
		reason = "permanent_error"
	}
	b.s.Dropped(reason, n)
	b.s.Logger.Warn("records dropped: the pipeline refused them", zap.String("transport", b.s.Transport),
		zap.String("reason", reason), zap.Int("records", n), zap.Error(err))
}
