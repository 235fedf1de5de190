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

// defaultIdleTimeout closes a TCP/TLS connection that brought no packet
// for this long. No HEP agent sends keep-alive packets on its own: heplify
// and captagent only turn on TCP keepalive (probes without data, which a
// reader never sees), Kamailio's siptrace and SIPhon send nothing but
// traffic. So traffic is what keeps a connection busy, and five minutes
// outlasts the quiet of any node that sees SIP at all (OPTIONS pings come
// every 30 to 60 s) and Kamailio's own 120 s lifetime of idle TCP
// connections, which the agents already cope with: they reconnect on their
// next send (the close is a reset, so that send fails rather than
// vanishes). Yet it frees, within five minutes, a slot held by a client
// that sends nothing.
const defaultIdleTimeout = 5 * time.Minute

func defaultTCP(endpoint string) TCPConfig {
	return TCPConfig{Endpoint: endpoint, MaxConnections: 1024, IdleTimeout: defaultIdleTimeout, OnGarbage: garbageResync}
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
