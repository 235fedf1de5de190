package sipcallconnector

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"

	"github.com/siphon-otel/siphon-otel/connectors/sipcallconnector/internal/metadata"
)

// NewFactory returns the sipcall connector factory.
func NewFactory() connector.Factory {
	return connector.NewFactory(
		metadata.Type,
		createDefaultConfig,
		connector.WithLogsToTraces(createLogsToTraces, metadata.LogsToTracesStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		FlushInterval:     time.Second,
		Linger:            32 * time.Second,
		CDRWait:           time.Minute,
		IdleTimeout:       5 * time.Minute,
		UnansweredTimeout: 40 * time.Second,
		MaxCalls:          100_000,
		MaxCallDuration:   4 * time.Hour,
		MaxSpansPerCall:   500,
		OutOfDialog: OutOfDialogConfig{
			// OPTIONS is off: keep-alive pings are noise for most operators
			Methods: []string{"REGISTER", "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER", "INFO"},
			// some 1,500 transactions a second, each held for linger (32 s)
			// after its final response
			MaxTransactions: 50_000,
		},
		Media: defaultMediaConfig(),
	}
}

func createLogsToTraces(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Traces) (connector.Logs, error) {
	return newConnector(set, cfg.(*Config), next)
}
