package hepreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/siphon-otel/siphon-otel/internal/logbatch"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg, confmap.Validate(cfg)
}

func TestLoadConfig(t *testing.T) {
	t.Run("bare key enables nothing", func(t *testing.T) {
		_, err := loadConfig(t, "")
		assert.ErrorContains(t, err, "at least one of udp, tcp or tls")
	})
	t.Run("udp only takes the defaults", func(t *testing.T) {
		cfg, err := loadConfig(t, "udp_only")
		require.NoError(t, err)
		assert.Equal(t, UDPConfig{Endpoint: "127.0.0.1:9060", ReadBufferSize: 4 << 20, Readers: 2}, *cfg.UDP.Get())
		assert.False(t, cfg.TCP.HasValue())
		assert.False(t, cfg.TLS.HasValue())
		assert.Equal(t, 65535, cfg.MaxPacketSize)
		assert.Equal(t, logbatch.Config{MaxSize: 512, Timeout: 2 * time.Millisecond}, cfg.Batch)
		assert.Equal(t, "siphon", cfg.Resource.ServiceName)
	})
	t.Run("tcp only takes the defaults", func(t *testing.T) {
		cfg, err := loadConfig(t, "tcp_only")
		require.NoError(t, err)
		assert.Equal(t, TCPConfig{Endpoint: "127.0.0.1:9060", MaxConnections: 1024, IdleTimeout: 5 * time.Minute, OnGarbage: "resync"}, *cfg.TCP.Get())
		assert.False(t, cfg.UDP.HasValue())
	})
	t.Run("idle_timeout 0 never closes", func(t *testing.T) {
		cfg, err := loadConfig(t, "never_idle")
		require.NoError(t, err)
		assert.Zero(t, cfg.TCP.Get().IdleTimeout)
	})
	t.Run("every option", func(t *testing.T) {
		cfg, err := loadConfig(t, "all")
		require.NoError(t, err)
		tlsServer := configtls.NewDefaultServerConfig()
		tlsServer.CertFile = "/etc/otelcol/hep.crt"
		tlsServer.KeyFile = "/etc/otelcol/hep.key"
		tlsServer.ClientCAFile = "/etc/otelcol/nodes-ca.crt"
		want := &Config{
			UDP: configoptional.Some(UDPConfig{Endpoint: "0.0.0.0:9060", ReadBufferSize: 8 << 20, Readers: 4}),
			TCP: configoptional.Some(TCPConfig{Endpoint: "0.0.0.0:9060", MaxConnections: 200, IdleTimeout: 90 * time.Second, OnGarbage: "close"}),
			TLS: configoptional.Some(TLSConfig{
				TCPConfig:    TCPConfig{Endpoint: "0.0.0.0:9061", MaxConnections: 1024, IdleTimeout: 5 * time.Minute, OnGarbage: "resync"},
				ServerConfig: tlsServer,
			}),
			AuthKey:       "s3cret",
			MaxPacketSize: 16384,
			Batch:         logbatch.Config{MaxSize: 1000, Timeout: 5 * time.Millisecond},
			Resource: logbatch.ResourceConfig{
				ServiceName: "siphon-edge",
				Attributes:  map[string]string{"deployment.environment.name": "prod"},
				Nodes: map[string]map[string]string{
					"2001":  {"host.name": "sbc-1"},
					"sbc-2": {"host.name": "sbc-2.example.net"},
				},
			},
		}
		assert.Equal(t, want, cfg)
	})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"udp endpoint", func(c *Config) { c.UDP.Get().Endpoint = "" }, "udp: endpoint must be set"},
		{"udp readers", func(c *Config) { c.UDP.Get().Readers = 0 }, "udp: readers must be at least 1"},
		{"udp buffer", func(c *Config) { c.UDP.Get().ReadBufferSize = -1 }, "udp: read_buffer_size must not be negative"},
		{"tcp endpoint", func(c *Config) { c.TCP.Get().Endpoint = "" }, "tcp: endpoint must be set"},
		{"tcp connections", func(c *Config) { c.TCP.Get().MaxConnections = 0 }, "tcp: max_connections must be at least 1"},
		{"tcp idle", func(c *Config) { c.TCP.Get().IdleTimeout = -time.Second }, "tcp: idle_timeout must not be negative"},
		{"tcp garbage", func(c *Config) { c.TCP.Get().OnGarbage = "ignore" }, `tcp: on_garbage must be "resync" or "close", got "ignore"`},
		{"tls cert", func(c *Config) { c.TLS.GetOrInsertDefault() }, "tls: cert_file or cert_pem must be set"},
		{"tls key", func(c *Config) { c.TLS.GetOrInsertDefault().CertFile = "x" }, "tls: key_file or key_pem must be set"},
		{"packet size small", func(c *Config) { c.MaxPacketSize = 11 }, "max_packet_size must be between 12 and 65535, got 11"},
		{"packet size big", func(c *Config) { c.MaxPacketSize = 70000 }, "max_packet_size must be between 12 and 65535, got 70000"},
		{"batch size", func(c *Config) { c.Batch.MaxSize = 0 }, "batch: max_size must be at least 1"},
		{"batch timeout", func(c *Config) { c.Batch.Timeout = 0 }, "batch: timeout must be positive"},
		{"service name", func(c *Config) { c.Resource.ServiceName = "" }, "resource: service_name must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.UDP.GetOrInsertDefault()
			cfg.TCP.GetOrInsertDefault()
			require.NoError(t, confmap.Validate(cfg))
			tt.mutate(cfg)
			assert.ErrorContains(t, confmap.Validate(cfg), tt.want)
		})
	}
}
