package hepreceiver

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/siphon-otel/siphon-otel/internal/logmodel"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver/internal/metadata"
)

// nodeKey identifies the node a packet came from; records of one node share
// a resource.
type nodeKey struct {
	id    uint32
	hasID bool
	name  string
}

func (k nodeKey) instanceID() string {
	switch {
	case k.name != "":
		return k.name
	case k.hasID:
		return strconv.FormatUint(uint64(k.id), 10)
	}
	return ""
}

// batcher collects the records of one transport and hands them to the
// pipeline when max records are waiting or when the oldest has waited
// timeout. The goroutine that fills a batch delivers it itself, so a slow
// or refusing pipeline holds up exactly the readers that feed it: TCP and
// TLS connections stop reading (backpressure), while UDP, which cannot push
// back, drops the batch and counts it (block false).
type batcher struct {
	transport string
	block     bool
	max       int
	timeout   time.Duration
	next      consumer.Logs
	obs       *receiverhelper.ObsReport
	tel       *transportTelemetry
	logger    *zap.Logger
	resource  func(pcommon.Map, nodeKey)
	stopping  <-chan struct{}

	mu        sync.Mutex
	logs      plog.Logs
	slots     map[nodeKey]plog.LogRecordSlice
	count     int
	timer     *time.Timer
	timerBusy atomic.Bool
}

func (b *batcher) init() {
	b.reset()
	b.timer = time.AfterFunc(time.Hour, b.onTimer)
	b.timer.Stop()
}

func (b *batcher) reset() {
	b.logs = plog.NewLogs()
	b.slots = make(map[nodeKey]plog.LogRecordSlice, 4)
	b.count = 0
}

// add moves lr (left empty, ready for reuse) into the batch, delivering
// the batch if it is full.
func (b *batcher) add(node nodeKey, lr plog.LogRecord) {
	b.mu.Lock()
	slot, ok := b.slots[node]
	if !ok {
		rl := b.logs.ResourceLogs().AppendEmpty()
		b.resource(rl.Resource().Attributes(), node)
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(metadata.ScopeName)
		slot = sl.LogRecords()
		b.slots[node] = slot
	}
	lr.MoveTo(slot.AppendEmpty())
	b.count++
	if b.count == 1 {
		b.timer.Reset(b.timeout)
	}
	if b.count < b.max {
		b.mu.Unlock()
		return
	}
	logs, n := b.take()
	b.mu.Unlock()
	b.deliver(logs, n)
}

// take removes the pending batch; the caller holds mu.
func (b *batcher) take() (plog.Logs, int) {
	logs, n := b.logs, b.count
	if n > 0 {
		b.reset()
	}
	return logs, n
}

// onTimer delivers partial batches. At most one timer goroutine delivers at
// a time; it keeps going while records keep waiting, so a timer that fires
// while it is busy loses nothing.
func (b *batcher) onTimer() {
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
		b.mu.Unlock()
		b.deliver(logs, n)
	}
}

// flush delivers whatever is pending; used at shutdown.
func (b *batcher) flush() {
	b.timer.Stop()
	b.mu.Lock()
	logs, n := b.take()
	b.mu.Unlock()
	if n > 0 {
		b.deliver(logs, n)
	}
}

func (b *batcher) deliver(logs plog.Logs, n int) {
	ctx := b.obs.StartLogsOp(context.Background())
	err := b.next.ConsumeLogs(ctx, logs)
	backoff := 5 * time.Millisecond
	for err != nil && b.block && !consumererror.IsPermanent(err) {
		b.tel.retry()
		select {
		case <-b.stopping:
			b.obs.EndLogsOp(ctx, "hep", n, err)
			b.tel.dropped("shutdown", n)
			b.logger.Error("HEP records dropped: pipeline refused them until shutdown", zap.String("transport", b.transport), zap.Int("records", n), zap.Error(err))
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
		err = b.next.ConsumeLogs(ctx, logs)
	}
	b.obs.EndLogsOp(ctx, "hep", n, err)
	if err == nil {
		return
	}
	reason := "pipeline_refused"
	if consumererror.IsPermanent(err) {
		reason = "permanent_error"
	}
	b.tel.dropped(reason, n)
	b.logger.Warn("HEP records dropped: pipeline refused them", zap.String("transport", b.transport), zap.String("reason", reason), zap.Int("records", n), zap.Error(err))
}

// resourceAttrs builds the function that fills a node's resource.
func resourceAttrs(cfg ResourceConfig) func(pcommon.Map, nodeKey) {
	return func(m pcommon.Map, node nodeKey) {
		m.PutStr(logmodel.AttrServiceName, cfg.ServiceName)
		id := node.instanceID()
		if id != "" {
			m.PutStr(logmodel.AttrServiceInstanceID, id)
		}
		for k, v := range cfg.Attributes {
			m.PutStr(k, v)
		}
		extra, ok := cfg.Nodes[id]
		if !ok && node.name != "" && node.hasID {
			extra = cfg.Nodes[strconv.FormatUint(uint64(node.id), 10)]
		}
		for k, v := range extra {
			m.PutStr(k, v)
		}
	}
}
