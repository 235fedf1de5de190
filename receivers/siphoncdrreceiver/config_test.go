package siphoncdrreceiver

import (
	"net/netip"
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
	assert.Equal(t, 1000, h.MaxRecordsPerRequest)
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
	assert.Equal(t, []string{"10.0.0.0/8", "192.168.1.7"}, s.AllowedSources)
	assert.Equal(t, []string{"10.0.0.0/8"}, h.AllowedSources)
	assert.Equal(t, int64(8<<20), h.MaxInFlightBytes)
	assert.Equal(t, 20*time.Second, h.ReadTimeout)
	tls := s.TLS.Get()
	assert.Equal(t, SyslogTCPConfig{Endpoint: "0.0.0.0:6514", MaxConnections: 256, IdleTimeout: time.Minute}, tls.SyslogTCPConfig)
	assert.Equal(t, "/etc/otelcol/ca.crt", tls.ClientCAFile)
	assert.Equal(t, logbatch.Config{MaxSize: 100, Timeout: 10 * time.Millisecond}, cfg.Batch)
	assert.Equal(t, "sbc-1", cfg.Resource.Nodes["10.0.0.5"]["service.instance.id"])

	_, err = loadConfig(t, "bad_path")
	assert.ErrorContains(t, err, `http: path must start with /, got "cdr"`)
}

// TestDefaultsAreBounded: every listener bounds by default what a sender
// may hold (README, "Limits and security").
func TestDefaultsAreBounded(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	h := cfg.HTTP.GetOrInsertDefault()
	assert.Equal(t, 10*time.Second, h.ReadHeaderTimeout)
	assert.Equal(t, 30*time.Second, h.ReadTimeout, "headers and body")
	assert.Equal(t, 60*time.Second, h.WriteTimeout)
	assert.Equal(t, time.Minute, h.IdleTimeout)
	assert.Equal(t, int64(2_048_000), h.MaxRequestBodySize, "1000 records of 2 KiB")
	assert.Equal(t, int64(h.MaxRecordsPerRequest)*2048, h.MaxRequestBodySize)
	assert.Equal(t, int64(64<<20), h.MaxInFlightBytes)
	assert.Equal(t, []string{"", "gzip", "zlib", "deflate"}, h.CompressionAlgorithms)
	s := cfg.Syslog.GetOrInsertDefault()
	for name, stream := range map[string]*SyslogTCPConfig{"tcp": s.TCP.GetOrInsertDefault(), "tls": &s.TLS.GetOrInsertDefault().SyslogTCPConfig} {
		assert.Equal(t, time.Minute, stream.IdleTimeout, name)
		assert.Equal(t, 256, stream.MaxConnections, name)
	}
	assert.Equal(t, "127.0.0.1:6514", s.TLS.Get().Endpoint)
	assert.Equal(t, 64<<10, s.MaxMessageSize)
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
		{"http read timeout", func(c *Config) { c.HTTP.Get().ReadTimeout = 0 }, "http: read_timeout must be positive, got 0s"},
		{"http header timeout", func(c *Config) { c.HTTP.Get().ReadHeaderTimeout = 0 }, "http: read_header_timeout must be positive"},
		{"http body size", func(c *Config) { c.HTTP.Get().MaxRequestBodySize = 0 }, "http: max_request_body_size must be at least 1"},
		{"http in flight", func(c *Config) { c.HTTP.Get().MaxInFlightBytes = 4 << 20 }, "http: max_in_flight_bytes (4194304) must hold one request of max_request_body_size with max_records_per_request records: at least 5632000"},
		{"http sources", func(c *Config) { c.HTTP.Get().AllowedSources = []string{"10.0.0.0/33"} }, `http: allowed_sources: "10.0.0.0/33" is neither a CIDR nor an IP address`},
		{"syslog none", func(c *Config) { c.Syslog = configoptional.Some(SyslogConfig{MaxMessageSize: 1024}) }, "syslog: at least one of udp, tcp or tls"},
		{"syslog udp", func(c *Config) { c.Syslog.Get().UDP.Get().Endpoint = "" }, "syslog: udp: endpoint must be set"},
		{"syslog tcp", func(c *Config) { c.Syslog.Get().TCP.Get().MaxConnections = 0 }, "syslog: tcp: max_connections must be at least 1"},
		{"syslog idle", func(c *Config) { c.Syslog.Get().TCP.Get().IdleTimeout = -1 }, "syslog: tcp: idle_timeout must not be negative"},
		{"syslog tls endpoint", func(c *Config) { c.Syslog.Get().TLS.Get().Endpoint = "" }, "syslog: tls: endpoint must be set"},
		{"syslog tls cert", func(c *Config) { c.Syslog.Get().TLS.Get().CertFile = "" }, "syslog: tls: cert_file or cert_pem must be set"},
		{"syslog tls key", func(c *Config) { c.Syslog.Get().TLS.Get().KeyFile = "" }, "syslog: tls: key_file or key_pem must be set"},
		{"syslog sources", func(c *Config) { c.Syslog.Get().AllowedSources = []string{"10.0.0.1", "nowhere"} }, `syslog: allowed_sources: "nowhere" is neither a CIDR nor an IP address`},
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
			tls := s.TLS.GetOrInsertDefault()
			tls.CertFile, tls.KeyFile = "/etc/otelcol/cdr.crt", "/etc/otelcol/cdr.key"
			require.NoError(t, confmap.Validate(cfg))
			tt.mutate(cfg)
			assert.ErrorContains(t, confmap.Validate(cfg), tt.want)
		})
	}
}

func TestParseSources(t *testing.T) {
	got, err := parseSources([]string{"10.0.0.0/8", " 192.168.1.7 ", "2001:db8::/32", "::ffff:172.16.0.0/108", "10.1.2.3/8"})
	require.NoError(t, err)
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"10.200.0.1", true}, {"::ffff:10.0.0.1", true}, {"11.0.0.1", false},
		{"192.168.1.7", true}, {"192.168.1.8", false},
		{"2001:db8::5", true}, {"2001:db9::5", false},
		{"172.16.5.5", true}, {"172.32.0.1", false},
	} {
		assert.Equal(t, tt.want, got.allows(netip.MustParseAddr(tt.addr)), tt.addr)
	}
	var none sources
	assert.True(t, none.allows(netip.MustParseAddr("203.0.113.9")), "empty: every source")
}
