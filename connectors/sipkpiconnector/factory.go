package sipkpiconnector

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"

	"github.com/siphon-otel/siphon-otel/connectors/sipkpiconnector/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/record"
)

// NewFactory returns the sipkpi connector factory.
func NewFactory() connector.Factory {
	return connector.NewFactory(
		metadata.Type,
		createDefaultConfig,
		connector.WithLogsToMetrics(createLogsToMetrics, metadata.LogsToMetricsStability),
	)
}

// defaultScannerUserAgents are User-Agent substrings of SIP scanning tools
// seen in the wild (SIPVicious and its forks, sipcli, VaxSIP, iWar ...).
var defaultScannerUserAgents = []string{
	"friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipscan", "vaxsipuseragent",
	"iwar", "sundayddr", "pplsip", "sivus", "smap", "nmap",
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
		Transactions: TransactionsConfig{MaxEntries: 100_000, Timeout: 5 * time.Minute, Linger: 32 * time.Second},
		Duplicates:   DuplicatesConfig{MaxEntries: 100_000, Window: 15 * time.Minute},
		Scanner: ScannerConfig{
			UserAgents: defaultScannerUserAgents,
			Flood:      FloodConfig{Methods: []string{"OPTIONS", "REGISTER"}, Threshold: 100, Window: 10 * time.Second},
			MaxSources: 10_000,
		},
	}
}

func createLogsToMetrics(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Metrics) (connector.Logs, error) {
	return newConnector(set, cfg.(*Config), next)
}
