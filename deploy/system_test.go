//go:build integration

package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
)

// These run the built collector and systemd-analyze (-tags integration).

// TestCollectorConfigsValidate runs the real otelcol-siphon's validate on
// the ConfigMaps' configs, with the pods' environment.
func TestCollectorConfigsValidate(t *testing.T) {
	bin := collector.Binary(t)
	objs := manifests(t)
	// the pods' environment as the kubelet makes it: downward API fields
	// with stand-in values, $(NAME) references to earlier variables expanded
	fieldValues := map[string]string{"status.hostIP": "192.0.2.10", "status.podIP": "192.0.2.20"}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	env := map[string]string{}
	for _, o := range objs {
		for _, c := range list(dig(o, "spec", "template", "spec", "containers")) {
			for _, e := range list(dig(c, "env")) {
				name := dig(e, "name").(string)
				if v, ok := dig(e, "value").(string); ok {
					env[name] = ref.ReplaceAllStringFunc(v, func(m string) string {
						if x, ok := env[m[2:len(m)-1]]; ok {
							return x
						}
						return m // the kubelet leaves an unknown reference as is
					})
				} else if f, ok := dig(e, "valueFrom", "fieldRef", "fieldPath").(string); ok {
					v, known := fieldValues[f]
					require.True(t, known, "%s: no stand-in for field %s", name, f)
					env[name] = v
				}
			}
		}
	}
	for _, o := range objs {
		if o.kind() != "ConfigMap" || dig(o, "metadata", "labels", "grafana_dashboard") != nil {
			continue
		}
		data, _ := asMap(dig(o, "data"))
		for key, content := range data {
			t.Run(o.name()+"/"+key, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), key)
				require.NoError(t, os.WriteFile(path, []byte(content.(string)), 0o600))
				out, err := testenv.Run(t, childproc.Spec{Path: bin, Args: []string{"validate", "--config", path}, Env: env})
				assert.NoError(t, err, out)
			})
		}
	}
}

// TestSystemdUnits: systemd-analyze verify accepts both units (with the
// binary path pointed at an executable) and rates their exposure "OK".
func TestSystemdUnits(t *testing.T) {
	analyze := testenv.Need(t, "systemd-analyze")
	units, _ := filepath.Glob("systemd/*.service")
	require.Len(t, units, 2)
	self, err := os.Executable()
	require.NoError(t, err)
	exec1 := regexp.MustCompile(`(?m)^ExecStart=\S+`)
	for _, u := range units {
		t.Run(filepath.Base(u), func(t *testing.T) {
			b, err := os.ReadFile(u)
			require.NoError(t, err)
			require.Regexp(t, `(?m)^ExecStart=/usr/local/bin/`+strings.TrimSuffix(filepath.Base(u), ".service")+` `, string(b))
			path := filepath.Join(t.TempDir(), filepath.Base(u))
			require.NoError(t, os.WriteFile(path, exec1.ReplaceAll(b, []byte("ExecStart="+self)), 0o644))
			out, err := testenv.Run(t, childproc.Spec{Path: analyze, Args: []string{"verify", path}})
			assert.NoError(t, err, out)
			assert.Empty(t, strings.TrimSpace(out), "no warnings")
			out, err = testenv.Run(t, childproc.Spec{Path: analyze, Args: []string{"security", "--offline=yes", "--threshold=20", path}})
			require.NoError(t, err, out)
			level := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`).FindStringSubmatch(out)
			require.NotNil(t, level, out)
			assert.Equal(t, "OK", level[2], "exposure %s", level[1])
		})
	}
}
