package sipcorrelationprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/siphon-otel/siphon-otel/internal/sipcorr"
	"github.com/siphon-otel/siphon-otel/processors/sipcorrelationprocessor/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		want *Config
		err  []string // each a part of the error; none: valid
	}{
		{name: "", want: &Config{
			Sources:    []sipcorr.Source{{Header: "X-CID"}, {Header: "P-Charging-Vector"}, {Header: "Session-ID"}, {HEPCorrelationID: true}},
			MaxCallIDs: 200_000, TTL: 2 * time.Hour,
		}},
		{name: "custom", want: &Config{
			// a configured list replaces the default one
			Sources:    []sipcorr.Source{{Header: "X-Leg-Of"}, {Header: "X-Ref", Regex: "^call=([^;]+)"}, {HEPCorrelationID: true}},
			MaxCallIDs: 5000, TTL: 30 * time.Minute,
		}},
		{name: "none", want: &Config{Sources: []sipcorr.Source{}, MaxCallIDs: 200_000, TTL: 2 * time.Hour}},
		{name: "bad_sources", err: []string{
			"sources[0]: regex: error parsing regexp",
			`sources[1]: header "X Bad" is not a SIP header name`,
			"sources[2]: hep_correlation_id takes no header or regex",
		}},
		{name: "bad_bounds", err: []string{"max_call_ids must be at least 1", "ttl must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := loadConfig(t, tt.name)
			err := confmap.Validate(cfg)
			if len(tt.err) == 0 {
				require.NoError(t, err)
				assert.Equal(t, tt.want, cfg)
				return
			}
			require.Error(t, err)
			for _, e := range tt.err {
				assert.Contains(t, err.Error(), e)
			}
		})
	}
}
