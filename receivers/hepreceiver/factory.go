package hepreceiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/logbatch"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver/internal/metadata"
)

// Default endpoints: 9060 is Homer's HEP port; loopback so that a default
// config never exposes a listener.
const (
	defaultEndpoint    = "127.0.0.1:9060"
	defaultTLSEndpoint = "127.0.0.1:9061"
)

// NewFactory returns the hep receiver factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func defaultTCP(endpoint string) TCPConfig {
	return TCPConfig{Endpoint: endpoint, MaxConnections: 1024, OnGarbage: garbageResync}
}

func createDefaultConfig() component.Config {
	return &Config{
		UDP:           configoptional.Default(UDPConfig{Endpoint: defaultEndpoint, ReadBufferSize: 4 << 20, Readers: 2}),
		TCP:           configoptional.Default(defaultTCP(defaultEndpoint)),
		TLS:           configoptional.Default(TLSConfig{TCPConfig: defaultTCP(defaultTLSEndpoint)}),
		MaxPacketSize: hep.MaxPacketLen,
		Batch:         logbatch.Config{MaxSize: 512, Timeout: 2 * time.Millisecond},
		Resource:      logbatch.DefaultResource(),
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(set, cfg.(*Config), next)
}
