package sipcorrelationprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/siphon-otel/siphon-otel/internal/sipcorr"
	"github.com/siphon-otel/siphon-otel/processors/sipcorrelationprocessor/internal/metadata"
)

// NewFactory returns the sip_correlation processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(metadata.Type, createDefaultConfig,
		processor.WithLogs(createLogs, metadata.LogsStability))
}

func createDefaultConfig() component.Config {
	return &Config{
		Sources: sipcorr.DefaultSources(),
		// about 200 bytes each (BenchmarkTableMemory in internal/sipcorr)
		MaxCallIDs: 200_000,
		// longer than a call is silent: a call without session timer
		// refreshes has no message between its ACK and its BYE
		TTL: 2 * time.Hour,
	}
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p, err := newProcessor(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, p.processLogs,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithShutdown(p.shutdown))
}
