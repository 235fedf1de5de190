package homerexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/siphon-otel/siphon-otel/exporters/homerexporter/internal/metadata"
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
	def, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, createDefaultConfig(), def)
	assert.Equal(t, "udp", def.Transport)
	assert.Equal(t, "127.0.0.1:9060", def.Endpoint)
	assert.False(t, def.KeepCompressedPayload, "payloads go plain in chunk 0x0f unless asked")

	cfg, err := loadConfig(t, "tls")
	require.NoError(t, err)
	assert.Equal(t, "homer.example.net:9061", cfg.Endpoint)
	assert.Equal(t, TransportTLS, cfg.Transport)
	assert.Equal(t, "/etc/otelcol/homer-ca.pem", cfg.TLS.CAFile)
	assert.Equal(t, "/etc/otelcol/client.pem", cfg.TLS.CertFile)
	assert.Equal(t, uint32(2001), cfg.CaptureID)
	assert.Equal(t, "otelcol-siphon", cfg.NodeName)
	assert.Equal(t, "s3cret", string(cfg.AuthKey))
	assert.True(t, cfg.KeepCompressedPayload)
	assert.Equal(t, 3*time.Second, cfg.Timeout)
	q := cfg.QueueConfig.Get()
	require.NotNil(t, q)
	assert.Equal(t, int64(5000), q.QueueSize)
	assert.Equal(t, component.MustNewIDWithName("file_storage", "homer"), *q.StorageID)
	assert.Zero(t, cfg.RetryConfig.MaxElapsedTime)
	assert.True(t, cfg.RetryConfig.Enabled)

	_, err = loadConfig(t, "bad_transport")
	assert.ErrorContains(t, err, `transport must be udp, tcp or tls, got "sctp"`)
	_, err = loadConfig(t, "bad_endpoint")
	assert.ErrorContains(t, err, `endpoint "homer" must be host:port`)
}

func TestValidateTLSOnlyWithTLS(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.TLS.CAFile = "/x.pem"
	assert.ErrorContains(t, cfg.Validate(), "tls settings are set but transport is not tls")
	cfg.Transport = TransportTLS
	assert.NoError(t, cfg.Validate())
}
