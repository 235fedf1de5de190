package sipcorrelationprocessor

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/siphon-otel/siphon-otel/internal/sipcorr"
)

// TestAttributeValuesMatchMetadata: the source labels the processor
// records are the enums metadata.yaml documents (mdatagen makes no
// constants for the attributes of telemetry metrics).
func TestAttributeValuesMatchMetadata(t *testing.T) {
	b, err := os.ReadFile("metadata.yaml")
	require.NoError(t, err)
	var md struct {
		Attributes map[string]struct {
			Enum []string `yaml:"enum"`
		} `yaml:"attributes"`
	}
	require.NoError(t, yaml.Unmarshal(b, &md))
	var all, sources []string
	for _, k := range sipcorr.Kinds() {
		all = append(all, k.String())
		if k < sipcorr.KindTable { // the sources, the only kinds counted malformed
			sources = append(sources, k.String())
		}
	}
	assert.Equal(t, all, md.Attributes["key_source"].Enum)
	assert.Equal(t, sources, md.Attributes["malformed_source"].Enum)
	assert.Equal(t, []string{"capacity", "expired"}, md.Attributes["eviction_reason"].Enum)
}
