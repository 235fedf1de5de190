package siphonsyslogexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/siphon-otel/siphon-otel/exporters/siphonsyslogexporter/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/record"
)

// NewFactory returns the siphon_syslog exporter factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(metadata.Type, createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability))
}

// The defaults are SIPhon's: UDP to 127.0.0.1:514, <134>1 ... siphon cdr.
func createDefaultConfig() component.Config {
	return &Config{
		Endpoint:      "127.0.0.1:514",
		Transport:     "udp",
		Format:        FormatRFC5424,
		Framing:       FramingOctetCounting,
		Facility:      "local0",
		Severity:      "info",
		AppName:       "cdr",
		Hostname:      "siphon",
		Source:        record.SourceBody,
		TimeoutConfig: exporterhelper.NewDefaultTimeoutConfig(),
		QueueConfig:   configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
		RetryConfig:   configretry.NewDefaultBackOffConfig(),
	}
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	e, err := newExporter(set, c)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, e.pushLogs,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithQueue(c.QueueConfig),
		exporterhelper.WithRetry(c.RetryConfig),
	)
}
