package sipcallconnector

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/siphon-otel/siphon-otel/connectors/sipcallconnector/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/periodic"
	"github.com/siphon-otel/siphon-otel/internal/record"
)

// callConnector consumes logs and emits spans: a transaction's when it
// completed linger ago, a call's root when it ended (linger, cdr_wait), all
// from the flush timer; a call evicted by a bound goes at once.
type callConnector struct {
	cfg    *Config
	logger *zap.Logger
	next   consumer.Traces
	tel    *metadata.TelemetryBuilder
	// now is the connector's clock, for linger and expiry only: span times
	// are capture times.
	now func() time.Time

	mu       sync.Mutex
	tr       *tracer
	outcomes map[outcome]metric.AddOption

	flushes *periodic.Loop // nil until Start
}

func newConnector(set connector.Settings, cfg *Config, next consumer.Traces) (*callConnector, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	c := &callConnector{cfg: cfg, logger: set.Logger, next: next, tel: tel, now: time.Now}
	bg := context.Background()
	// the attribute sets are made once: these run for every span and state change
	malformedOpts := options(malformedReasons, "reason")
	spanOpts := options(spanKinds, "span")
	evictionOpts := options(evictions, "reason")
	tableOpts := options(tables, "state")
	mediaOpts := options(mediaOutcomes, "outcome")
	c.tr = newTracer(cfg, hooks{
		malformed:          func(r malformed) { tel.SipcallRecordsMalformed.Add(bg, 1, malformedOpts[r]) },
		spans:              func(k spanKind, n int64) { tel.SipcallSpans.Add(bg, n, spanOpts[k]) },
		evicted:            func(r eviction) { tel.SipcallEvictions.Add(bg, 1, evictionOpts[r]) },
		entries:            func(s table, d int64) { tel.SipcallStateEntries.Add(bg, d, tableOpts[s]) },
		cdrWithoutMessages: func() { tel.SipcallCdrsWithoutMessages.Add(bg, 1) },
		mediaReports:       func(o mediaOutcome) { tel.SipcallMediaReports.Add(bg, 1, mediaOpts[o]) },
		mediaStreams:       func(o mediaOutcome) { tel.SipcallMediaStreams.Add(bg, 1, mediaOpts[o]) },
	})
	c.outcomes = options(outcomes, "outcome")
	return c, nil
}

// options makes the measurement option of each value of a telemetry
// attribute.
func options[T ~string](values []T, key string) map[T]metric.AddOption {
	out := make(map[T]metric.AddOption, len(values))
	for _, v := range values {
		out[v] = metric.WithAttributeSet(attribute.NewSet(attribute.String(key, string(v))))
	}
	return out
}

func (c *callConnector) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

func (c *callConnector) Start(context.Context, component.Host) error {
	c.flushes = periodic.Start(c.cfg.FlushInterval, func() { c.flush(context.Background()) })
	return nil
}

// Shutdown stops the timer and emits what is complete: completed
// transactions and ended calls, without waiting for linger.
func (c *callConnector) Shutdown(ctx context.Context) error {
	if !c.flushes.Stop() {
		return nil
	}
	c.flushes = nil
	c.mu.Lock()
	c.tr.shutdown(c.now())
	td := c.tr.take()
	c.mu.Unlock()
	c.send(ctx, td)
	c.tel.Shutdown()
	return nil
}

func (c *callConnector) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	now := c.now()
	counts := map[outcome]int64{}
	c.mu.Lock()
	for _, r := range record.All(ld) {
		switch r.Log.EventName() {
		case record.EventSIPMessage:
			counts[c.tr.message(r.Resource, r.Log, now)]++
			c.tr.mediaRecord(r.Log, now) // after: a BYE's X-RTP-Stat finds its call
		case record.EventCDR:
			counts[c.tr.cdr(r.Resource, r.Log, now)]++
			c.tr.mediaRecord(r.Log, now)
		default:
			counts[c.tr.mediaRecord(r.Log, now)]++
		}
	}
	td := c.tr.take() // of calls evicted by a bound
	c.mu.Unlock()
	for o, n := range counts {
		c.tel.SipcallRecords.Add(ctx, n, c.outcomes[o])
	}
	c.send(ctx, td)
	// the logs were consumed whatever became of their spans: a refusal
	// downstream is counted, not handed back to be sent again
	return nil
}

// flush emits what is due at the connector's clock.
func (c *callConnector) flush(ctx context.Context) {
	c.mu.Lock()
	c.tr.sweep(c.now())
	td := c.tr.take()
	c.mu.Unlock()
	c.send(ctx, td)
}

func (c *callConnector) send(ctx context.Context, td ptrace.Traces) {
	n := td.SpanCount()
	if n == 0 {
		return
	}
	if err := c.next.ConsumeTraces(ctx, td); err != nil {
		c.tel.SipcallSpansRefused.Add(ctx, int64(n))
		c.logger.Warn("sipcall: spans refused by the next consumer", zap.Int("spans", n), zap.Error(err))
	}
}
