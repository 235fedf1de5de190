package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/siphon-otel/siphon-otel/distro"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
)

func TestGeneratedManifestsAreUpToDate(t *testing.T) {
	files, err := Generate(testenv.RepoRoot())
	require.NoError(t, err)
	require.Len(t, files, len(Generated))
	for _, name := range Generated {
		got, err := os.ReadFile(filepath.Join("kubernetes", name))
		require.NoError(t, err)
		assert.Equal(t, string(files[name]), string(got), "%s is stale: run go generate ./deploy/...", name)
	}
}

// object is one Kubernetes manifest, decoded loosely.
type object map[string]any

func (o object) kind() string { s, _ := o["kind"].(string); return s }
func (o object) name() string { s, _ := dig(o, "metadata", "name").(string); return s }

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := asMap(v)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// asMap reads a mapping; yaml.v3 decodes the nested mappings of an object
// as objects too.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case object:
		return m, true
	case map[string]any:
		return m, true
	}
	return nil, false
}

func list(v any) []any { l, _ := v.([]any); return l }

// manifests reads every document of every file kustomization.yaml lists.
func manifests(t *testing.T) []object {
	t.Helper()
	var kust object
	b, err := os.ReadFile("kubernetes/kustomization.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &kust))
	files, _ := filepath.Glob("kubernetes/*.yaml")
	var listed []string
	for _, r := range list(kust["resources"]) {
		listed = append(listed, "kubernetes/"+r.(string))
	}
	slices.Sort(listed)
	assert.Equal(t, slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, "kustomization.yaml") }), listed,
		"kustomization.yaml lists every manifest")
	var out []object
	for _, f := range listed {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o object
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
			if o == nil {
				continue
			}
			require.NotEmpty(t, o["apiVersion"], "%s: apiVersion", f)
			require.NotEmpty(t, o.kind(), "%s: kind", f)
			require.NotEmpty(t, o.name(), "%s: metadata.name of a %s", f, o.kind())
			out = append(out, o)
		}
	}
	return out
}

// selects reports whether every label of selector is in labels.
func selects(selector, labels any) bool {
	sel, _ := asMap(selector)
	lab, _ := asMap(labels)
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if lab[k] != v {
			return false
		}
	}
	return true
}

// TestManifestsReferToEachOther parses every manifest and checks what a
// cluster would only find at run time: the ConfigMaps and Secrets pods
// mount, the config files they start with, the ports Services and
// monitors name, the Deployment the autoscaler scales, the environment the
// collectors' configs need.
func TestManifestsReferToEachOther(t *testing.T) {
	objs := manifests(t)
	byKind := map[string]map[string]object{}
	for _, o := range objs {
		if byKind[o.kind()] == nil {
			byKind[o.kind()] = map[string]object{}
		}
		require.NotContains(t, byKind[o.kind()], o.name(), "%s %s defined twice", o.kind(), o.name())
		byKind[o.kind()][o.name()] = o
	}
	type pod struct {
		owner      string
		labels     any
		containers []any
		spec       any
	}
	var pods []pod
	for _, kind := range []string{"Deployment", "DaemonSet", "StatefulSet"} {
		for name, o := range byKind[kind] {
			tmpl := dig(o, "spec", "template")
			assert.True(t, selects(dig(o, "spec", "selector", "matchLabels"), dig(tmpl, "metadata", "labels")),
				"%s %s: its selector matches its pod template", kind, name)
			pods = append(pods, pod{kind + "/" + name, dig(tmpl, "metadata", "labels"), list(dig(tmpl, "spec", "containers")), dig(tmpl, "spec")})
		}
	}
	require.Len(t, pods, 2, "the gateway Deployment and the agent DaemonSet")
	envRef := regexp.MustCompile(`\$\{env:([A-Z0-9_]+)(:-[^}]*)?\}`)
	for _, p := range pods {
		mounts := map[string]string{} // volume name -> ConfigMap
		for _, v := range list(dig(p.spec, "volumes")) {
			if cm, ok := dig(v, "configMap", "name").(string); ok {
				require.Contains(t, byKind["ConfigMap"], cm, "%s mounts ConfigMap %s", p.owner, cm)
				mounts[dig(v, "name").(string)] = cm
			}
		}
		for _, c := range p.containers {
			env := map[string]bool{}
			for _, e := range list(dig(c, "env")) {
				env[dig(e, "name").(string)] = true
			}
			// the config file it starts with is a key of a mounted ConfigMap,
			// and every ${env:X} without a default in it is set
			args := list(dig(c, "args"))
			i := slices.Index(args, any("--config"))
			require.True(t, i >= 0 && i+1 < len(args), "%s: --config <file> in %v", p.owner, args)
			cfgPath := args[i+1].(string)
			// health_check reports a failed component only with the gate
			assert.Contains(t, args, any(distro.HealthGate), p.owner)
			found := false
			for _, vm := range list(dig(c, "volumeMounts")) {
				cm, ok := mounts[dig(vm, "name").(string)]
				if !ok || !strings.HasPrefix(cfgPath, dig(vm, "mountPath").(string)+"/") {
					continue
				}
				data, _ := asMap(dig(byKind["ConfigMap"][cm], "data"))
				content, ok := data[filepath.Base(cfgPath)].(string)
				require.True(t, ok, "%s: %s is not in ConfigMap %s", p.owner, cfgPath, cm)
				found = true
				for _, m := range envRef.FindAllStringSubmatch(content, -1) {
					if m[2] == "" {
						assert.True(t, env[m[1]], "%s: %s has no default in %s and is not set", p.owner, m[1], cfgPath)
					}
				}
			}
			assert.True(t, found, "%s: %s is mounted from a ConfigMap", p.owner, cfgPath)
			ports := map[string]bool{}
			for _, port := range list(dig(c, "ports")) {
				ports[dig(port, "name").(string)] = true
			}
			for _, probe := range []string{"readinessProbe", "livenessProbe"} {
				assert.True(t, ports[fmt.Sprint(dig(c, probe, "httpGet", "port"))], "%s: %s names a port", p.owner, probe)
			}
		}
	}
	// a pod's named port, for Services and monitors
	hasPort := func(labels any, name string) bool {
		for _, p := range pods {
			if !selects(labels, p.labels) {
				continue
			}
			for _, c := range p.containers {
				for _, port := range list(dig(c, "ports")) {
					if dig(port, "name") == name {
						return true
					}
				}
			}
		}
		return false
	}
	for name, svc := range byKind["Service"] {
		sel := dig(svc, "spec", "selector")
		for _, port := range list(dig(svc, "spec", "ports")) {
			assert.True(t, hasPort(sel, fmt.Sprint(dig(port, "targetPort"))), "Service %s: target port %v on its pods", name, dig(port, "targetPort"))
		}
	}
	for name, sm := range byKind["ServiceMonitor"] {
		for _, ep := range list(dig(sm, "spec", "endpoints")) {
			ok := false
			for _, svc := range byKind["Service"] {
				if selects(dig(sm, "spec", "selector", "matchLabels"), dig(svc, "metadata", "labels")) {
					for _, port := range list(dig(svc, "spec", "ports")) {
						ok = ok || dig(port, "name") == dig(ep, "port")
					}
				}
			}
			assert.True(t, ok, "ServiceMonitor %s: a Service with port %v", name, dig(ep, "port"))
		}
	}
	for name, pm := range byKind["PodMonitor"] {
		for _, ep := range list(dig(pm, "spec", "podMetricsEndpoints")) {
			assert.True(t, hasPort(dig(pm, "spec", "selector", "matchLabels"), fmt.Sprint(dig(ep, "port"))), "PodMonitor %s: port %v", name, dig(ep, "port"))
		}
	}
	for name, hpa := range byKind["HorizontalPodAutoscaler"] {
		ref := dig(hpa, "spec", "scaleTargetRef")
		assert.Contains(t, byKind[dig(ref, "kind").(string)], dig(ref, "name"), "HPA %s scales something defined", name)
	}
	for name, pdb := range byKind["PodDisruptionBudget"] {
		ok := false
		for _, p := range pods {
			ok = ok || selects(dig(pdb, "spec", "selector", "matchLabels"), p.labels)
		}
		assert.True(t, ok, "PodDisruptionBudget %s selects pods", name)
	}
	// the agents find the gateways through the headless Service
	agentEnv := map[string]any{}
	for _, c := range list(dig(byKind["DaemonSet"]["siphon-agent"], "spec", "template", "spec", "containers")) {
		for _, e := range list(dig(c, "env")) {
			agentEnv[dig(e, "name").(string)] = dig(e, "value")
		}
	}
	svc := fmt.Sprint(agentEnv["SIPHON_GATEWAY_SERVICE"])
	headless := byKind["Service"][strings.Split(svc, ".")[0]]
	require.NotNil(t, headless, "SIPHON_GATEWAY_SERVICE %s is a Service", svc)
	assert.Equal(t, "None", dig(headless, "spec", "clusterIP"), "one address per gateway pod")
	assert.Contains(t, svc, "."+byKindNamespace(t)+".svc", "in the namespace kustomization.yaml sets")

	// the PrometheusRule carries every group of alerts/
	rule := byKind["PrometheusRule"]["siphon"]
	require.NotNil(t, rule)
	n := 0
	for _, f := range []string{"../alerts/siphon-kpi.rules.yml", "../alerts/siphon-alerts.rules.yml"} {
		var doc struct{ Groups []any }
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, yaml.Unmarshal(b, &doc))
		n += len(doc.Groups)
	}
	assert.Len(t, list(dig(rule, "spec", "groups")), n)
	// one dashboard ConfigMap per dashboard
	dashboards, _ := filepath.Glob("../dashboards/*.json")
	count := 0
	for _, cm := range byKind["ConfigMap"] {
		if dig(cm, "metadata", "labels", "grafana_dashboard") == "1" {
			count++
		}
	}
	assert.Equal(t, len(dashboards), count)
}

func byKindNamespace(t *testing.T) string {
	var kust object
	b, err := os.ReadFile("kubernetes/kustomization.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &kust))
	return kust["namespace"].(string)
}

// TestContainerfile: every COPY --from names an earlier stage, both
// binaries have a target, and the build uses the Makefile's distro target.
func TestContainerfile(t *testing.T) {
	b, err := os.ReadFile("Containerfile")
	require.NoError(t, err)
	stages := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 4 && f[0] == "FROM" && strings.EqualFold(f[2], "AS"):
			stages[f[3]] = true
		case len(f) >= 2 && f[0] == "COPY" && strings.HasPrefix(f[1], "--from="):
			assert.True(t, stages[strings.TrimPrefix(f[1], "--from=")], "COPY %s: an earlier stage", f[1])
		}
	}
	assert.True(t, stages["otelcol-siphon"] && stages["sipproxy"], "a target per binary: %v", stages)
	assert.Contains(t, string(b), "make distro")
	assert.Contains(t, string(b), "./proxy/cmd/sipproxy")
}

// TestCollectorUnitPassesHealthGate: the systemd unit runs the collector with
// the gate without which health_check ignores a failed component.
func TestCollectorUnitPassesHealthGate(t *testing.T) {
	b, err := os.ReadFile("systemd/otelcol-siphon.service")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^ExecStart=\S+ `+regexp.QuoteMeta(distro.HealthGate)+` `, string(b))
	c, err := os.ReadFile("Containerfile")
	require.NoError(t, err)
	assert.Contains(t, string(c), `ENTRYPOINT ["/otelcol-siphon", "`+distro.HealthGate+`"]`)
}
