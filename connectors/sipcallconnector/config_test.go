package sipcallconnector

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/siphon-otel/siphon-otel/connectors/sipcallconnector/internal/metadata"
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

func TestConfigDefault(t *testing.T) {
	cfg := loadConfig(t, "")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, createDefaultConfig(), cfg)
	assert.NotContains(t, cfg.OutOfDialog.Methods, "OPTIONS", "keep-alive pings are off by default")
	assert.Contains(t, cfg.OutOfDialog.Methods, "REGISTER")
	assert.False(t, cfg.IncludeBody)
}

func TestConfigCustom(t *testing.T) {
	cfg := loadConfig(t, "custom")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, &Config{
		FlushInterval: 5 * time.Second, Linger: 10 * time.Second, CDRWait: 0, IdleTimeout: 3 * time.Minute, UnansweredTimeout: 20 * time.Second,
		MaxCalls: 5000, MaxCallDuration: 2 * time.Hour, MaxSpansPerCall: 100, IncludeBody: true,
		OutOfDialog: OutOfDialogConfig{Methods: []string{"REGISTER", "OPTIONS"}, MaxTransactions: 2000},
		Nodes:       []NodeConfig{{Name: "sbc-1", Addresses: []string{"10.0.0.10", "10.0.0.11:5060", "[2001:db8::1]:5061"}}},
		Media: MediaConfig{Enabled: true, Linger: 20 * time.Second, IdleTimeout: 2 * time.Minute, CallTimeout: time.Hour,
			MaxStreams: 1000, MaxCalls: 500},
	}, cfg)
}

// TestConfigMediaOff: a media block that is off is not checked.
func TestConfigMediaOff(t *testing.T) {
	cfg := loadConfig(t, "media_off")
	require.NoError(t, confmap.Validate(cfg))
	assert.False(t, cfg.Media.Enabled)
}

func TestConfigInvalid(t *testing.T) {
	for name, want := range map[string][]string{
		"zero_limits": {"flush_interval must be positive", "linger must be positive", "cdr_wait must not be negative",
			"max_calls must be at least 1", "max_spans_per_call must be at least 2", "out_of_dialog.max_transactions must be at least 1",
			"media.linger, media.idle_timeout and media.call_timeout must be positive",
			"media.max_streams and media.max_calls must be at least 1"},
		"dialog_method":     {"out_of_dialog.methods[1]: BYE belongs to an INVITE dialog"},
		"lower_case_method": {`out_of_dialog.methods[0]: "register" is not an upper-case SIP method`},
		"bad_nodes": {`nodes[0].addresses[0]: "not-an-ip" is neither an address nor an address:port`,
			`nodes[1]: "sbc-1" appears twice`, "nodes[1]: addresses is empty"},
	} {
		t.Run(name, func(t *testing.T) {
			err := confmap.Validate(loadConfig(t, name))
			require.Error(t, err)
			for _, w := range want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

// TestNodeAddressForms: configured addresses compare in the form captured
// ones are written in.
func TestNodeAddressForms(t *testing.T) {
	for in, want := range map[string]endpoint{
		"10.0.0.10": {addr: "10.0.0.10"}, "10.0.0.10:5060": {addr: "10.0.0.10", port: 5060},
		"[2001:db8::1]:5061": {addr: "2001:db8::1", port: 5061}, "2001:0db8::1": {addr: "2001:db8::1"},
		"::ffff:10.0.0.10": {addr: "10.0.0.10"},
	} {
		got, err := parseNodeAddress(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	assert.Equal(t, "[2001:db8::1]:5061", endpoint{addr: "2001:db8::1", port: 5061}.String())
}
