package sipcorrelationprocessor

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/siphon-otel/siphon-otel/internal/sipcorr"
	"github.com/siphon-otel/siphon-otel/processors/sipcorrelationprocessor/internal/metadata"
)

type correlationProcessor struct {
	corr *sipcorr.Correlator
	tel  *metadata.TelemetryBuilder
	// the counters' attribute sets, made once
	bySource                 map[sipcorr.Kind]metric.MeasurementOption
	byCapacity, byExpiration metric.MeasurementOption
}

func newProcessor(set processor.Settings, cfg *Config) (*correlationProcessor, error) {
	corr, err := sipcorr.New(sipcorr.Config{Sources: cfg.Sources, MaxCallIDs: cfg.MaxCallIDs, TTL: cfg.TTL}, nil)
	if err != nil {
		return nil, fmt.Errorf("sip_correlation: %w", err)
	}
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	p := &correlationProcessor{corr: corr, tel: tel, bySource: map[sipcorr.Kind]metric.MeasurementOption{},
		byCapacity:   metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "capacity"))),
		byExpiration: metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "expired"))),
	}
	for _, k := range sipcorr.Kinds() {
		p.bySource[k] = metric.WithAttributeSet(attribute.NewSet(attribute.String("source", k.String())))
	}
	return p, nil
}

func (p *correlationProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	st := p.corr.Process(ld)
	for _, k := range sipcorr.Kinds() {
		if n := st.Records[k]; n > 0 {
			p.tel.SipCorrelationRecords.Add(ctx, n, p.bySource[k])
		}
		if n := st.Malformed[k]; n > 0 {
			p.tel.SipCorrelationMalformed.Add(ctx, n, p.bySource[k])
		}
	}
	if st.Late > 0 {
		p.tel.SipCorrelationRecordsLate.Add(ctx, st.Late)
	}
	if st.EvictedCapacity > 0 {
		p.tel.SipCorrelationTableEvictions.Add(ctx, st.EvictedCapacity, p.byCapacity)
	}
	if st.EvictedExpired > 0 {
		p.tel.SipCorrelationTableEvictions.Add(ctx, st.EvictedExpired, p.byExpiration)
	}
	if st.EntriesDelta != 0 {
		p.tel.SipCorrelationTableEntries.Add(ctx, st.EntriesDelta)
	}
	return ld, nil
}

func (p *correlationProcessor) shutdown(context.Context) error {
	p.tel.Shutdown()
	return nil
}
