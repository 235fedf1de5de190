package siphoncdrreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/siphon-otel/siphon-otel/internal/logbatch"
	"github.com/siphon-otel/siphon-otel/receivers/siphoncdrreceiver/internal/metadata"
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
	_, err := loadConfig(t, "")
	assert.ErrorContains(t, err, "at least one of http or syslog")

	cfg, err := loadConfig(t, "http_only")
	require.NoError(t, err)
	h := cfg.HTTP.Get()
	assert.Equal(t, "127.0.0.1:8082", h.NetAddr.Endpoint)
	assert.Equal(t, "/v1/cdr", h.Path)
	assert.Equal(t, "Bearer tok123", string(h.AuthHeader))
	assert.Equal(t, 10000, h.MaxRecordsPerRequest)
	assert.False(t, cfg.Syslog.HasValue())

	cfg, err = loadConfig(t, "all")
	require.NoError(t, err)
	h = cfg.HTTP.Get()
	assert.Equal(t, "0.0.0.0:8443", h.NetAddr.Endpoint)
	assert.Equal(t, "/cdr", h.Path)
	assert.Equal(t, 500, h.MaxRecordsPerRequest)
	assert.Equal(t, 10*time.Second, h.RetryAfter)
	assert.Equal(t, int64(1048576), h.MaxRequestBodySize)
	assert.Equal(t, "/etc/otelcol/cdr.crt", h.TLS.Get().CertFile)
	s := cfg.Syslog.Get()
	assert.Equal(t, "0.0.0.0:514", s.UDP.Get().Endpoint)
	assert.Equal(t, SyslogTCPConfig{Endpoint: "0.0.0.0:514", MaxConnections: 10, IdleTimeout: 10 * time.Minute}, *s.TCP.Get())
	assert.Equal(t, 16384, s.MaxMessageSize)
	assert.Equal(t, logbatch.Config{MaxSize: 100, Timeout: 10 * time.Millisecond}, cfg.Batch)
	assert.Equal(t, "sbc-1", cfg.Resource.Nodes["10.0.0.5"]["service.instance.id"])

	_, err = loadConfig(t, "bad_path")
	assert.ErrorContains(t, err, `http: path must start with /, got "cdr"`)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"http endpoint", func(c *Config) { c.HTTP.Get().NetAddr.Endpoint = "" }, "http: endpoint must be set"},
		{"http records", func(c *Config) { c.HTTP.Get().MaxRecordsPerRequest = 0 }, "max_records_per_request must be at least 1"},
		{"http retry", func(c *Config) { c.HTTP.Get().RetryAfter = 0 }, "retry_after must be at least 1s"},
		{"syslog none", func(c *Config) { c.Syslog = configoptional.Some(SyslogConfig{MaxMessageSize: 1024}) }, "syslog: at least one of udp or tcp"},
		{"syslog udp", func(c *Config) { c.Syslog.Get().UDP.Get().Endpoint = "" }, "syslog: udp: endpoint must be set"},
		{"syslog tcp", func(c *Config) { c.Syslog.Get().TCP.Get().MaxConnections = 0 }, "syslog: tcp: max_connections must be at least 1"},
		{"syslog idle", func(c *Config) { c.Syslog.Get().TCP.Get().IdleTimeout = -1 }, "syslog: tcp: idle_timeout must not be negative"},
		{"syslog size", func(c *Config) { c.Syslog.Get().MaxMessageSize = 100 }, "max_message_size must be between 512 and 1048576"},
		{"batch", func(c *Config) { c.Batch.MaxSize = 0 }, "batch: max_size must be at least 1"},
		{"timeout", func(c *Config) { c.Batch.Timeout = 0 }, "batch: timeout must be positive"},
		{"service", func(c *Config) { c.Resource.ServiceName = "" }, "resource: service_name must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.HTTP.GetOrInsertDefault()
			s := cfg.Syslog.GetOrInsertDefault()
			s.UDP.GetOrInsertDefault()
			s.TCP.GetOrInsertDefault()
			require.NoError(t, confmap.Validate(cfg))
			tt.mutate(cfg)
			assert.ErrorContains(t, confmap.Validate(cfg), tt.want)
		})
	}
}
