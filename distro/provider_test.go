package distro

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

// The provider is plain Go and runs in the unit suite; the other tests of
// this package run the built collector (-tags integration).

func shipped(t *testing.T) []string {
	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

func TestEmbeddedConfigsAreTheShippedFiles(t *testing.T) {
	assert.Equal(t, shipped(t), Names())
	for _, name := range Names() {
		want, err := os.ReadFile(name)
		require.NoError(t, err)
		got, err := Config(name)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := Config("nope.yaml")
	assert.ErrorContains(t, err, `no embedded config "nope.yaml" (have: agent.yaml, call-traces.yaml, cdr-billing.yaml, cdr-file.yaml, cdr-kafka.yaml, config.yaml, gateway.yaml, homer-relay.yaml, kpi-remote-write.yaml, siphon-fleet.yaml)`)

	p := NewFactory().Create(confmap.ProviderSettings{})
	assert.Equal(t, "siphon", p.Scheme())
	r, err := p.Retrieve(context.Background(), "siphon:config.yaml", nil)
	require.NoError(t, err)
	conf, err := r.AsConf()
	require.NoError(t, err)
	assert.True(t, conf.IsSet("receivers::hep::udp::endpoint"))
	_, err = p.Retrieve(context.Background(), "file:config.yaml", nil)
	assert.Error(t, err)
	require.NoError(t, p.Shutdown(context.Background()))
}
