package sipcallconnector

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// TestTelemetryValuesMatchMetadata holds metadata.yaml to the connector's
// own telemetry: the values the code gives each attribute (the typed
// constants of telemetry.go, which the hooks take) are the attribute's enum,
// no more, no less. mdatagen generates no constants for the attributes of
// telemetry metrics, so the values are read from the source.
func TestTelemetryValuesMatchMetadata(t *testing.T) {
	b, err := os.ReadFile("metadata.yaml")
	require.NoError(t, err)
	var md struct {
		Attributes map[string]struct {
			NameOverride string   `yaml:"name_override"`
			Enum         []string `yaml:"enum"`
		} `yaml:"attributes"`
		Telemetry struct {
			Metrics map[string]struct {
				Attributes []string `yaml:"attributes"`
			} `yaml:"metrics"`
		} `yaml:"telemetry"`
	}
	require.NoError(t, yaml.Unmarshal(b, &md))
	declared := constsByType(t, "telemetry.go")
	for _, c := range []struct {
		metric, attr, typ string
		listed            []string
	}{
		{"sipcall_records", "records_outcome", "outcome", strs(outcomes)},
		{"sipcall_records_malformed", "malformed_reason", "malformed", strs(malformedReasons)},
		{"sipcall_spans", "span_kind", "spanKind", strs(spanKinds)},
		{"sipcall_evictions", "eviction_reason", "eviction", strs(evictions)},
		{"sipcall_state_entries", "state", "table", strs(tables)},
		{"sipcall_media_reports", "media_outcome", "mediaOutcome", strs(mediaOutcomes)},
		{"sipcall_media_streams", "media_outcome", "mediaOutcome", strs(mediaOutcomes)},
	} {
		assert.Contains(t, md.Telemetry.Metrics[c.metric].Attributes, c.attr, c.metric)
		enum := md.Attributes[c.attr].Enum
		require.NotEmpty(t, enum, c.attr)
		assert.ElementsMatch(t, enum, c.listed, "%s: metadata.yaml's enum and the code's list", c.attr)
		assert.ElementsMatch(t, declared[c.typ], c.listed, "%s: every %s constant is listed", c.attr, c.typ)
	}
}

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// constsByType returns the values of the typed string constants of a file,
// by type name.
func constsByType(t *testing.T, file string) map[string][]string {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	require.NoError(t, err)
	out := map[string][]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			typ, ok := vs.Type.(*ast.Ident)
			if !ok {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				require.True(t, ok, "a %s constant that is not a literal", typ.Name)
				s, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				out[typ.Name] = append(out[typ.Name], s)
			}
		}
	}
	return out
}
