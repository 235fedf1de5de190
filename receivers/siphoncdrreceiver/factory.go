package siphoncdrreceiver

import (
	"context"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/logbatch"
	"github.com/siphon-otel/siphon-otel/receivers/siphoncdrreceiver/internal/metadata"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
)

// Defaults listen on loopback; 5514 because 514 needs privileges.
const (
	defaultHTTPEndpoint   = "127.0.0.1:8082"
	defaultSyslogEndpoint = "127.0.0.1:5514"
	defaultPath           = "/v1/cdr"
)

// NewFactory returns the siphon_cdr receiver factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = defaultHTTPEndpoint
	return &Config{
		HTTP: configoptional.Default(HTTPConfig{
			ServerConfig: server, Path: defaultPath, MaxRecordsPerRequest: 10000, RetryAfter: 5 * time.Second,
		}),
		Syslog: configoptional.Default(SyslogConfig{
			UDP:            configoptional.Default(SyslogUDPConfig{Endpoint: defaultSyslogEndpoint, ReadBufferSize: 4 << 20}),
			TCP:            configoptional.Default(SyslogTCPConfig{Endpoint: defaultSyslogEndpoint, MaxConnections: 256}),
			MaxMessageSize: 64 << 10,
		}),
		Batch:    logbatch.Config{MaxSize: 512, Timeout: 5 * time.Millisecond},
		Resource: logbatch.DefaultResource(),
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(set, cfg.(*Config), next)
}
