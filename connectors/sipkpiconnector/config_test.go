package sipkpiconnector

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/siphon-otel/siphon-otel/connectors/sipkpiconnector/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/sipscanner"
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

func TestConfigDefaultIsValid(t *testing.T) {
	cfg := loadConfig(t, "")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, createDefaultConfig(), cfg)
}

// TestConfigDefaultScanners: the default scanner list is the one sipproxy
// blocks; a configured list replaces it.
func TestConfigDefaultScanners(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, sipscanner.UserAgents(), cfg.Scanner.UserAgents)
	assert.Len(t, cfg.Scanner.UserAgents, 12)
	custom := loadConfig(t, "custom")
	assert.Equal(t, []string{"friendly-scanner"}, custom.Scanner.UserAgents)
}

func TestConfigCustom(t *testing.T) {
	cfg := loadConfig(t, "custom")
	require.NoError(t, confmap.Validate(cfg))
	none := "none"
	assert.Equal(t, []Dimension{
		{Name: "node", Attributes: []string{"service.instance.id"}},
		{Name: "transport", Attributes: []string{"cdr.transport", "network.transport"}},
		{Name: "trunk", Attributes: []string{"cdr.extra.trunk"}, Default: &none},
	}, cfg.Dimensions)
	assert.Equal(t, 200, cfg.MaxDimensionSets)
	assert.Equal(t, 5*time.Second, cfg.FlushInterval)
	assert.False(t, cfg.Exemplars.Enabled)
	assert.Equal(t, []float64{10, 60, 600}, cfg.Histograms.CallDuration)
	assert.Equal(t, TransactionsConfig{MaxEntries: 5000, Timeout: 3 * time.Minute, UnansweredTimeout: 35 * time.Second, Linger: 32 * time.Second}, cfg.Transactions)
	assert.Equal(t, FloodConfig{Methods: []string{"OPTIONS"}, Threshold: 20, Window: 5 * time.Second,
		ExcludeSources: []string{"10.0.0.1", "192.168.0.0/16"}}, cfg.Scanner.Flood)
	assert.Equal(t, []string{"friendly-scanner"}, cfg.Scanner.UserAgents)
	assert.Equal(t, DuplicatesConfig{MaxEntries: 2000, Window: 30 * time.Minute}, cfg.Duplicates)
	assert.Equal(t, MediaConfig{Enabled: true, Linger: 10 * time.Second, IdleTimeout: 45 * time.Second, CallTimeout: 2 * time.Hour,
		MaxStreams: 3000, MaxCalls: 4000}, cfg.Media)
}

// TestConfigMedia: the media block is on by default, its bounds checked
// only when it is on.
func TestConfigMedia(t *testing.T) {
	def := createDefaultConfig().(*Config).Media
	assert.True(t, def.Enabled)
	assert.Equal(t, 30*time.Second, def.Linger)
	assert.Equal(t, time.Minute, def.IdleTimeout)
	err := confmap.Validate(loadConfig(t, "bad_media"))
	assert.ErrorContains(t, err, "media.linger, media.idle_timeout and media.call_timeout must be positive")
	assert.ErrorContains(t, err, "media.max_streams and media.max_calls must be at least 1")
	off := loadConfig(t, "media_off")
	require.NoError(t, confmap.Validate(off))
	assert.False(t, off.Media.Enabled)
}

func TestConfigInvalid(t *testing.T) {
	for name, want := range map[string]string{
		"dup_dimension":      `"node" appears twice`,
		"reserved_dimension": `is a label the connector sets itself`,
		"bad_buckets":        `histograms.call_duration: bounds must be positive and increasing`,
		"bad_prefix":         `"not-an-ip" is neither an address nor a prefix`,
		"zero_limits":        `max_dimension_sets must be at least 1`,
		"bad_duplicates":     `duplicates.window must be positive`,
		"bad_media":          `media.max_streams and media.max_calls must be at least 1`,
		"bad_unanswered":     `transactions.unanswered_timeout (40s) must not exceed transactions.timeout (30s)`,
	} {
		t.Run(name, func(t *testing.T) {
			err := confmap.Validate(loadConfig(t, name))
			require.Error(t, err)
			assert.Contains(t, err.Error(), want)
		})
	}
	err := confmap.Validate(loadConfig(t, "zero_limits"))
	assert.ErrorContains(t, err, "transactions.max_entries must be at least 1")
	assert.ErrorContains(t, err, "scanner.flood.threshold must be at least 1")
}
