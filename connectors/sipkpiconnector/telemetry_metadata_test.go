package sipkpiconnector

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/siphon-otel/siphon-otel/internal/callmedia"
	"github.com/siphon-otel/siphon-otel/internal/lru"
)

// TestTelemetryAttributeValuesMatchMetadata holds metadata.yaml to the
// connector's own telemetry: every value the code gives the state and reason
// attributes is in the attribute's enum, and every enum value is one the code
// gives. mdatagen generates no constants for the attributes of telemetry
// metrics (only for those of a component's metrics: section), so the values
// are read from the source: the string literals passed to the hooks that feed
// the telemetry (kpi.entries, kpi.evicted, kpi.invalid), the reasons the
// lru tables pass to their eviction callbacks (lru.Reasons, lru.Map.Remove),
// and the outcomes counted per record in ConsumeLogs (counts[...], kpi.cdr's
// results).
func TestTelemetryAttributeValuesMatchMetadata(t *testing.T) {
	md := loadTelemetryMetadata(t)
	used := telemetryValuesInSource(t)

	for _, c := range []struct {
		metric, attr, values string
	}{
		{"sipkpi_state_entries", "state", "state"},
		{"sipkpi_state_evictions", "state", "state"},
		{"sipkpi_state_evictions", "reason", "eviction reason"},
		{"sipkpi_records_invalid", "reason", "invalid reason"},
		{"sipkpi_records", "reason", "record outcome"},
	} {
		enum := md.enum(t, c.metric, c.attr)
		got := used[c.values]
		require.NotEmpty(t, got, "no %s found in the source: the test no longer knows where the code sets it", c.values)
		for _, v := range got {
			assert.Contains(t, enum, v, "%s: the code sets %s=%q, missing from the enum in metadata.yaml", c.metric, c.attr, v)
		}
		for _, v := range enum {
			assert.Contains(t, got, v, "%s: metadata.yaml declares %s=%q, which the code never sets", c.metric, c.attr, v)
		}
	}
}

// TestMediaOutcomesMatchMetadata: the outcome values of
// sipkpi_media_reports are callmedia's outcomes, as metadata.yaml lists
// them.
func TestMediaOutcomesMatchMetadata(t *testing.T) {
	md := loadTelemetryMetadata(t)
	assert.ElementsMatch(t, callmedia.Outcomes(), md.enum(t, "sipkpi_media_reports", "outcome"))
}

type telemetryMetadata struct {
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

func loadTelemetryMetadata(t *testing.T) *telemetryMetadata {
	b, err := os.ReadFile("metadata.yaml")
	require.NoError(t, err)
	var md telemetryMetadata
	require.NoError(t, yaml.Unmarshal(b, &md))
	return &md
}

// enum returns the enum of the attribute that metric records under the name
// attr (after name_override).
func (md *telemetryMetadata) enum(t *testing.T, metric, attr string) []string {
	m, ok := md.Telemetry.Metrics[metric]
	require.True(t, ok, "metadata.yaml has no telemetry metric %s", metric)
	for _, key := range m.Attributes {
		a, ok := md.Attributes[key]
		require.True(t, ok, "metadata.yaml: %s uses undeclared attribute %s", metric, key)
		name := key
		if a.NameOverride != "" {
			name = a.NameOverride
		}
		if name == attr {
			require.NotEmpty(t, a.Enum, "metadata.yaml: attribute %s of %s has no enum", key, metric)
			return a.Enum
		}
	}
	require.Failf(t, "attribute not declared", "metadata.yaml: %s has no attribute recorded as %s", metric, attr)
	return nil
}

// telemetryValuesInSource collects the attribute values the package's
// non-test sources pass to its telemetry, by kind.
func telemetryValuesInSource(t *testing.T) map[string][]string {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	used := map[string][]string{}
	add := func(kind string, e ast.Expr, what string) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			t.Errorf("%s: %s is not a string literal: the value cannot be checked against metadata.yaml", fset.Position(e.Pos()), what)
			return
		}
		v, err := strconv.Unquote(lit.Value)
		require.NoError(t, err)
		if !slices.Contains(used[kind], v) {
			used[kind] = append(used[kind], v)
		}
	}
	var cdrResults []ast.Expr // kpi.cdr's return values: the outcome of a counted CDR
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if n.Name.Name == "cdr" && n.Recv != nil && n.Body != nil {
					ast.Inspect(n.Body, func(m ast.Node) bool {
						if r, ok := m.(*ast.ReturnStmt); ok && len(r.Results) == 1 {
							cdrResults = append(cdrResults, r.Results[0])
						}
						return !isFuncLit(m)
					})
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				switch sel.Sel.Name {
				case "entries", "evicted": // (state, ...)
					if len(n.Args) >= 1 {
						add("state", n.Args[0], sel.Sel.Name+"'s state")
					}
				case "invalid": // (reason)
					if len(n.Args) == 1 {
						add("invalid reason", n.Args[0], "invalid's reason")
					}
				case "Remove": // lru.Map.Remove(key, reason)
					if len(n.Args) == 2 {
						add("eviction reason", n.Args[1], "lru.Map.Remove's reason")
					}
				}
			case *ast.IndexExpr:
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "counts" {
					if call, ok := n.Index.(*ast.CallExpr); ok {
						if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "cdr" {
							return true // its results are collected from kpi.cdr
						}
					}
					add("record outcome", n.Index, "a counts key")
				}
			}
			return true
		})
	}
	// the reasons the tables give themselves (capacity, expired)
	for _, r := range lru.Reasons() {
		if !slices.Contains(used["eviction reason"], r) {
			used["eviction reason"] = append(used["eviction reason"], r)
		}
	}
	require.NotEmpty(t, cdrResults, "kpi.cdr not found")
	for _, r := range cdrResults {
		add("record outcome", r, "a result of kpi.cdr")
	}
	return used
}

func isFuncLit(n ast.Node) bool {
	_, ok := n.(*ast.FuncLit)
	return ok
}
