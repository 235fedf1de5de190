package sipkpiconnector

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"

	"github.com/siphon-otel/siphon-otel/connectors/sipkpiconnector/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/sipscanner"
)

// NewFactory returns the sipkpi connector factory.
func NewFactory() connector.Factory {
	return connector.NewFactory(
		metadata.Type,
		createDefaultConfig,
		connector.WithLogsToMetrics(createLogsToMetrics, metadata.LogsToMetricsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Dimensions:       []Dimension{{Name: "node", Attributes: []string{record.AttrServiceInstanceID}}},
		MaxDimensionSets: 1000,
		FlushInterval:    15 * time.Second,
		Exemplars:        ExemplarsConfig{Enabled: true},
		Histograms: HistogramsConfig{
			CallDuration: []float64{5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200},
			Setup:        []float64{0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60},
		},
		Transactions: TransactionsConfig{MaxEntries: 100_000, Timeout: 5 * time.Minute, UnansweredTimeout: 40 * time.Second, Linger: 32 * time.Second},
		Duplicates:   DuplicatesConfig{MaxEntries: 100_000, Window: 15 * time.Minute},
		Media:        defaultMediaConfig(),
		Scanner: ScannerConfig{
			// the tools sipproxy blocks, so that its blocks and these
			// detections agree
			UserAgents: sipscanner.UserAgents(),
			Flood:      FloodConfig{Methods: []string{"OPTIONS", "REGISTER"}, Threshold: 100, Window: 10 * time.Second},
			MaxSources: 10_000,
		},
	}
}

func createLogsToMetrics(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Metrics) (connector.Logs, error) {
	return newConnector(set, cfg.(*Config), next)
}
