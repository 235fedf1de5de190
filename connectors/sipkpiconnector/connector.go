package sipkpiconnector

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/siphon-otel/siphon-otel/connectors/sipkpiconnector/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/periodic"
	"github.com/siphon-otel/siphon-otel/internal/record"
)

// kpiConnector consumes logs and emits cumulative metrics every
// metrics_flush_interval. Because the metrics are cumulative, a flush the
// next consumer refuses loses nothing: the next flush carries the totals.
type kpiConnector struct {
	cfg    *Config
	logger *zap.Logger
	next   consumer.Metrics
	tel    *metadata.TelemetryBuilder
	now    func() time.Time

	mu  sync.Mutex
	kpi *kpi

	flushes *periodic.Loop // nil until Start
}

func newConnector(set connector.Settings, cfg *Config, next consumer.Metrics) (*kpiConnector, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	c := &kpiConnector{cfg: cfg, logger: set.Logger, next: next, tel: tel, now: time.Now, kpi: newKPI(cfg)}
	bg := context.Background()
	// The attribute sets are made once per value (a few states and
	// reasons), not for every transaction added and evicted. The kpi calls
	// these under c.mu, which guards the maps too.
	reasons, states, evictions := attrCache[string]{}, attrCache[string]{}, attrCache[[2]string]{}
	c.kpi.invalid = func(reason string) {
		tel.SipkpiRecordsInvalid.Add(bg, 1, reasons.get(reason, func() attribute.Set { return attribute.NewSet(attribute.String("reason", reason)) }))
	}
	c.kpi.overflow = func() { tel.SipkpiDimensionOverflows.Add(bg, 1) }
	c.kpi.evicted = func(state, reason string) {
		tel.SipkpiStateEvictions.Add(bg, 1, evictions.get([2]string{state, reason}, func() attribute.Set {
			return attribute.NewSet(attribute.String("state", state), attribute.String("reason", reason))
		}))
	}
	c.kpi.entries = func(state string, d int64) {
		tel.SipkpiStateEntries.Add(bg, d, states.get(state, func() attribute.Set { return attribute.NewSet(attribute.String("state", state)) }))
	}
	c.kpi.mediaReport = func(outcome string, n int64) {
		tel.SipkpiMediaReports.Add(bg, n, metric.WithAttributes(attribute.String("outcome", outcome)))
	}
	return c, nil
}

// attrCache holds the measurement option of each attribute set by key.
type attrCache[K comparable] map[K]metric.MeasurementOption

func (a attrCache[K]) get(key K, set func() attribute.Set) metric.MeasurementOption {
	o, ok := a[key]
	if !ok {
		o = metric.WithAttributeSet(set())
		a[key] = o
	}
	return o
}

func (c *kpiConnector) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

func (c *kpiConnector) Start(context.Context, component.Host) error {
	c.flushes = periodic.Start(c.cfg.FlushInterval, func() { c.flush(context.Background()) })
	return nil
}

// Shutdown stops the timer and emits the final totals.
func (c *kpiConnector) Shutdown(ctx context.Context) error {
	if !c.flushes.Stop() {
		return nil
	}
	c.flushes = nil
	// a stream still open ends now: cut short, it still counts
	c.mu.Lock()
	c.kpi.endMedia(c.now())
	c.mu.Unlock()
	if err := c.flush(ctx); err != nil {
		c.logger.Warn("sipkpi: final flush refused", zap.Error(err))
	}
	c.tel.Shutdown()
	return nil
}

func (c *kpiConnector) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	now := c.now()
	counts := map[string]int64{}
	c.mu.Lock()
	for _, r := range record.All(ld) {
		lr, res := r.Log, r.Resource.Attributes()
		at := lr.Timestamp().AsTime()
		if lr.Timestamp() == 0 {
			at = lr.ObservedTimestamp().AsTime()
		}
		if lr.Timestamp() == 0 && lr.ObservedTimestamp() == 0 {
			at = now
		}
		switch lr.EventName() {
		case record.EventCDR:
			counts[c.kpi.cdr(res, lr, at, now)]++
			c.kpi.mediaRecord(res, lr, at, now)
		case record.EventSIPMessage:
			c.kpi.message(res, lr.Attributes(), at, now)
			c.kpi.mediaRecord(res, lr, at, now)
			counts["sip_message"]++
		case eventRTCP:
			c.kpi.mediaRecord(res, lr, at, now)
			counts["hep_rtcp"]++
		default:
			counts["ignored"]++
		}
	}
	c.kpi.reportMedia()
	c.mu.Unlock()
	for reason, n := range counts {
		c.tel.SipkpiRecords.Add(context.Background(), n, metric.WithAttributes(attribute.String("reason", reason)))
	}
	return nil
}

// collect expires old state and returns the current totals.
func (c *kpiConnector) collect() pmetric.Metrics {
	now := c.now()
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(metadata.ScopeName)
	c.mu.Lock()
	c.kpi.expire(now)
	c.kpi.st.emit(sm, now)
	c.mu.Unlock()
	return md
}

func (c *kpiConnector) flush(ctx context.Context) error {
	md := c.collect()
	if md.MetricCount() == 0 {
		return nil
	}
	err := c.next.ConsumeMetrics(ctx, md)
	if err != nil {
		c.logger.Warn("sipkpi: metrics refused; the next flush carries the totals", zap.Error(err))
	}
	return err
}
