// Package alerts holds no Go code: its tests check what promtool cannot:
// that every alert is documented and has both a firing and a silent unit
// test, and every recording rule a test; promtool_test.go (-tags
// integration) runs promtool over the rules and their unit tests.
package alerts

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []Rule `yaml:"rules"`
	} `yaml:"groups"`
}

// Rule is one recording or alerting rule.
type Rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name       string `yaml:"name"`
		AlertTests []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				Labels      map[string]string `yaml:"exp_labels"`
				Annotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		ExprTests []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

func ruleFiles(t *testing.T) []string {
	files, err := filepath.Glob("*.rules.yml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

// LoadRules reads every rule of alerts/*.rules.yml.
func loadRules(t *testing.T) []Rule {
	var rules []Rule
	for _, f := range ruleFiles(t) {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var rf ruleFile
		require.NoError(t, yaml.Unmarshal(b, &rf), f)
		for _, g := range rf.Groups {
			rules = append(rules, g.Rules...)
		}
	}
	return rules
}

func TestEveryAlertIsDocumented(t *testing.T) {
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		t.Run(r.Alert, func(t *testing.T) {
			assert.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"], "severity")
			for _, a := range []string{"summary", "description", "runbook"} {
				assert.NotEmpty(t, strings.TrimSpace(r.Annotations[a]), a)
			}
		})
	}
}

func TestEveryRuleHasUnitTests(t *testing.T) {
	files, err := filepath.Glob("tests/*.test.yml")
	require.NoError(t, err)
	firing, silent := map[string]bool{}, map[string]bool{}
	var exprs []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var tf testFile
		require.NoError(t, yaml.Unmarshal(b, &tf), f)
		for _, tc := range tf.Tests {
			for _, at := range tc.AlertTests {
				if len(at.ExpAlerts) == 0 {
					silent[at.Alertname] = true
					continue
				}
				firing[at.Alertname] = true
				for _, e := range at.ExpAlerts {
					assert.NotEmpty(t, e.Annotations["runbook"], "%s: %s at %s checks no annotations", f, at.Alertname, at.EvalTime)
				}
			}
			for _, e := range tc.ExprTests {
				exprs = append(exprs, e.Expr)
			}
		}
	}
	for _, r := range loadRules(t) {
		switch {
		case r.Alert != "":
			assert.True(t, firing[r.Alert], "%s has no unit test where it fires", r.Alert)
			assert.True(t, silent[r.Alert], "%s has no unit test where it stays silent", r.Alert)
		case r.Record != "":
			assert.True(t, slices.ContainsFunc(exprs, func(e string) bool { return strings.Contains(e, r.Record) }),
				"recording rule %s has no promql_expr_test", r.Record)
		}
	}
}
