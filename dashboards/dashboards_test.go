package dashboards

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/siphon-otel/siphon-otel/connectors/sipkpiconnector"
	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/proxy/metrics"
)

func files(t *testing.T) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob("*.json")
	require.NoError(t, err)
	out := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		require.NoError(t, err)
		out[n] = b
	}
	return out
}

func TestFilesAreGenerated(t *testing.T) {
	got := files(t)
	want := All()
	require.Len(t, got, len(want), "every JSON file here comes from dashboards.All()")
	for name, d := range want {
		b, err := d.JSON()
		require.NoError(t, err)
		assert.Equal(t, string(b), string(got[name]), "%s is stale: run go generate ./dashboards", name)
	}
}

// TestSchema decodes every dashboard strictly with the Grafana Foundation
// SDK (types generated from Grafana's own schema, v12): unknown fields,
// wrong types and missing required fields fail, panel options included.
func TestSchema(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for name, b := range files(t) {
		t.Run(name, func(t *testing.T) {
			var d dashboard.Dashboard
			require.NoError(t, cogErr(d.UnmarshalJSONStrict(b)))
			require.NoError(t, cogErr(d.Validate()))
			assert.Equal(t, uint16(SchemaVersion), d.SchemaVersion)
			require.NotNil(t, d.Uid)
			assert.Contains(t, d.Tags, "siphon")
		})
	}
}

// cogErr turns the SDK's typed-nil error list into a plain nil.
func cogErr(err error) error {
	if be, ok := err.(cog.BuildErrors); ok && len(be) == 0 {
		return nil
	}
	return err
}

type rawDashboard struct {
	Templating struct {
		List []struct {
			Type, Name string
			Query      any
		} `json:"list"`
	} `json:"templating"`
	Panels []rawPanel `json:"panels"`
}

type rawPanel struct {
	Type, Title string
	Datasource  map[string]string `json:"datasource"`
	Targets     []struct {
		Datasource map[string]string `json:"datasource"`
		Expr       string            `json:"expr"`
		Exemplar   bool              `json:"exemplar"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Links []struct{ URL string } `json:"links"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

func decode(t *testing.T, b []byte) rawDashboard {
	var d rawDashboard
	require.NoError(t, json.Unmarshal(b, &d))
	return d
}

// TestDatasourceIsAVariable: no datasource UID is hard-coded anywhere.
func TestDatasourceIsAVariable(t *testing.T) {
	uid := regexp.MustCompile(`"uid":\s*"([^"]*)"`)
	for name, b := range files(t) {
		d := decode(t, b)
		require.NotEmpty(t, d.Templating.List, name)
		assert.Equal(t, "datasource", d.Templating.List[0].Type, name)
		assert.Equal(t, "datasource", d.Templating.List[0].Name, name)
		for _, m := range uid.FindAllStringSubmatch(string(b), -1) {
			if m[1] == "${datasource}" || m[1] == "-- Grafana --" {
				continue
			}
			// the dashboard's own uid is the only other one
			var top struct{ UID string }
			require.NoError(t, json.Unmarshal(b, &top))
			assert.Equal(t, top.UID, m[1], "%s: hard-coded uid %q", name, m[1])
		}
		for _, p := range d.Panels {
			if p.Type == "row" {
				continue
			}
			assert.Equal(t, "${datasource}", p.Datasource["uid"], "%s: %s", name, p.Title)
			for _, tg := range p.Targets {
				assert.Equal(t, "${datasource}", tg.Datasource["uid"], "%s: %s", name, p.Title)
			}
		}
	}
}

func TestVariables(t *testing.T) {
	want := map[string][]string{
		"siphon-fleet-overview.json":   {"datasource", "job", "instance", "node", "homer_url"},
		"siphon-call-quality.json":     {"datasource", "node", "transport", "codec", "homer_url", "jaeger_url"},
		"siphon-node.json":             {"datasource", "job", "instance", "node", "homer_url"},
		"otelcol-siphon-pipeline.json": {"datasource", "job", "instance"},
	}
	for name, b := range files(t) {
		var got []string
		for _, v := range decode(t, b).Templating.List {
			got = append(got, v.Name)
		}
		assert.Equal(t, want[name], got, name)
	}
}

// metricNames returns the metric names a PromQL expression selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	require.NoError(t, err, expr)
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			require.NotEmpty(t, vs.Name, "a selector without a metric name in %s", expr)
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

// coreTelemetry are the collector core's own metrics the dashboards use, as
// otelcol-siphon's telemetry endpoint (text format, no _total suffix)
// serves them at v0.159.0.
var coreTelemetry = []string{
	"otelcol_receiver_accepted_log_records", "otelcol_receiver_refused_log_records",
	"otelcol_exporter_sent_log_records", "otelcol_exporter_send_failed_log_records",
	"otelcol_exporter_enqueue_failed_log_records", "otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity",
	"otelcol_processor_memory_limiter_refused_log_records",
	"otelcol_process_memory_rss", "otelcol_process_cpu_seconds", "otelcol_process_runtime_heap_alloc_bytes",
	"otelcol_process_uptime",
}

// known builds the set of metric names a panel may use: what the distro
// produces, SIPhon's documented series, sipproxy's series and the recording
// rules of alerts/.
func known(t *testing.T) map[string]string {
	t.Helper()
	k := map[string]string{"up": "prometheus"}
	// SIPhon's documented series (a real node's exposition).
	for name, f := range siphonFamilies(t) {
		addFamily(k, name, f.GetType() == dto.MetricType_HISTOGRAM, "siphon")
	}
	// sipproxy's series (SIPhon's names; histograms by base name) and the Go
	// and process collectors it also serves.
	set := metrics.New()
	hist := map[string]bool{"siphon_request_duration_seconds": true, "siphon_transaction_duration_seconds": true}
	for _, n := range set.Names() {
		addFamily(k, n, hist[n], "sipproxy")
	}
	mfs, err := set.Registry.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		addFamily(k, mf.GetName(), mf.GetType().String() == "HISTOGRAM", "sipproxy")
	}
	// the sipkpi connector, as the prometheus exporter names it.
	for _, m := range sipkpiconnector.Metrics() {
		addFamily(k, promName(m), m.Histogram, "sipkpi")
	}
	// the collector's own telemetry: our components' metadata, and core.
	mds, err := filepath.Glob("../*/*/metadata.yaml")
	require.NoError(t, err)
	for _, p := range mds {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		var md struct {
			Telemetry struct {
				Metrics map[string]any `yaml:"metrics"`
			} `yaml:"telemetry"`
		}
		require.NoError(t, yaml.Unmarshal(b, &md))
		for n := range md.Telemetry.Metrics {
			k["otelcol_"+n] = p
		}
	}
	for _, n := range coreTelemetry {
		k[n] = "collector core"
	}
	// recording rules.
	rules, err := filepath.Glob("../alerts/*.rules.yml")
	require.NoError(t, err)
	for _, p := range rules {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		var rf struct {
			Groups []struct {
				Rules []struct{ Record string } `yaml:"rules"`
			} `yaml:"groups"`
		}
		require.NoError(t, yaml.Unmarshal(b, &rf))
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					k[r.Record] = "alerts"
				}
			}
		}
	}
	return k
}

// promName is a sipkpi metric's name as the prometheus exporter serves it
// (without the _bucket/_sum/_count of a histogram).
func promName(m sipkpiconnector.Metric) string {
	name := strings.ReplaceAll(m.Name, ".", "_")
	if m.Unit == "s" {
		name += "_seconds"
	}
	if !m.Histogram {
		name += "_total"
	}
	return name
}

func addFamily(k map[string]string, name string, histogram bool, from string) {
	if histogram {
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			k[name+s] = from
		}
		return
	}
	k[name] = from
}

// panelQueries lists every PromQL expression of a dashboard file.
func panelQueries(t *testing.T, b []byte) map[string][]string {
	out := map[string][]string{}
	for _, p := range decode(t, b).Panels {
		for _, tg := range p.Targets {
			out[p.Title] = append(out[p.Title], tg.Expr)
		}
	}
	return out
}

func TestEveryQueryParsesAndUsesKnownMetrics(t *testing.T) {
	k := known(t)
	n := 0
	for name, b := range files(t) {
		for title, exprs := range panelQueries(t, b) {
			for _, e := range exprs {
				n++
				for _, m := range metricNames(t, e) {
					_, ok := k[m]
					assert.True(t, ok, "%s / %s: %s is neither produced by the distro, a documented SIPhon series nor a recording rule", name, title, m)
				}
			}
		}
		for _, v := range decode(t, b).Templating.List {
			if v.Type == "query" {
				q := v.Query.(map[string]any)["query"].(string)
				inner := strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")")
				sel := inner[:strings.LastIndex(inner, ",")]
				for _, m := range metricNames(t, sel) {
					_, ok := k[m]
					assert.True(t, ok, "%s: variable %s uses unknown %s", name, v.Name, m)
				}
			}
		}
	}
	assert.Greater(t, n, 80, "queries checked")
}

// TestNodeDashboardShowsEverySIPhonSeries: the deep dive covers every series
// of a SIPhon node's exposition.
func TestNodeDashboardShowsEverySIPhonSeries(t *testing.T) {
	b, err := os.ReadFile("siphon-node.json")
	require.NoError(t, err)
	used := map[string]bool{}
	for _, exprs := range panelQueries(t, b) {
		for _, e := range exprs {
			for _, m := range metricNames(t, e) {
				used[m] = true
				used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")] = true
			}
		}
	}
	for _, name := range siphonFamilies(t).Names() {
		if strings.HasPrefix(name, "siphon_") {
			assert.True(t, used[name], "siphon-node.json has no panel for %s", name)
		}
	}
}

// siphonFamilies are the metric families of a SIPhon node's /metrics page.
func siphonFamilies(t *testing.T) exposition.Families {
	t.Helper()
	f, err := exposition.Parse(bytes.NewReader(fixture.Metrics()))
	require.NoError(t, err)
	require.NotEmpty(t, f)
	return f
}

// TestCallPanelsLinkToCalls: call panels show exemplars and link to the
// calls of their time range in Homer and in Jaeger; the datasource
// provisioning turns an exemplar's trace_id into a link to the call's trace
// in a tracing datasource it provisions (Jaeger, Tempo), and its Call-ID
// (remote write) into a Homer link.
func TestCallPanelsLinkToCalls(t *testing.T) {
	b, err := os.ReadFile("siphon-call-quality.json")
	require.NoError(t, err)
	withExemplars := 0
	for _, p := range decode(t, b).Panels {
		ex := slices.ContainsFunc(p.Targets, func(tg struct {
			Datasource map[string]string `json:"datasource"`
			Expr       string            `json:"expr"`
			Exemplar   bool              `json:"exemplar"`
		}) bool {
			return tg.Exemplar
		})
		if !ex {
			continue
		}
		withExemplars++
		require.Len(t, p.FieldConfig.Defaults.Links, 2, p.Title)
		assert.Contains(t, p.FieldConfig.Defaults.Links[0].URL, "${homer_url}", p.Title)
		assert.Contains(t, p.FieldConfig.Defaults.Links[1].URL, "${jaeger_url}/search?service=siphon&operation=SIP%20call", p.Title)
	}
	assert.GreaterOrEqual(t, withExemplars, 10)

	ds, err := os.ReadFile("provisioning/datasource.yaml")
	require.NoError(t, err)
	var prov struct {
		Datasources []struct {
			Type     string
			UID      string `yaml:"uid"`
			JSONData struct {
				Exemplars []struct {
					Name          string `yaml:"name"`
					URL           string `yaml:"url"`
					DatasourceUID string `yaml:"datasourceUid"`
				} `yaml:"exemplarTraceIdDestinations"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	require.NoError(t, yaml.Unmarshal(ds, &prov))
	byUID := map[string]string{} // uid -> type
	for _, d := range prov.Datasources {
		byUID[d.UID] = d.Type
	}
	require.Equal(t, "prometheus", prov.Datasources[0].Type)
	tracing := map[string]bool{}
	homer := 0
	for _, e := range prov.Datasources[0].JSONData.Exemplars {
		switch e.Name {
		case "trace_id": // the label the prometheus exporter gives an exemplar's trace id
			typ := byUID[e.DatasourceUID]
			assert.Contains(t, []string{"jaeger", "tempo"}, typ, "trace_id links to a provisioned tracing datasource: %s", e.DatasourceUID)
			tracing[typ] = true
		case "sip_call_id":
			assert.Contains(t, e.URL, "call_id=${__value.raw}")
			homer++
		default:
			t.Errorf("exemplar label %s is not one sipkpi sets", e.Name)
		}
	}
	assert.Equal(t, map[string]bool{"jaeger": true, "tempo": true}, tracing)
	assert.Equal(t, 1, homer)
}

// TestMediaClassesAreMediaq: every media_quality_class value a dashboard
// or a rule selects is a class mediaq.ClassOf gives (a typo would select
// nothing and show a share of 0).
func TestMediaClassesAreMediaq(t *testing.T) {
	classes := map[string]bool{}
	for c := mediaq.ClassUnknown; c <= mediaq.ClassBad; c++ {
		classes[c.String()] = true
	}
	var exprs []string
	for _, b := range files(t) {
		for _, es := range panelQueries(t, b) {
			exprs = append(exprs, es...)
		}
	}
	rules, err := filepath.Glob("../alerts/*.rules.yml")
	require.NoError(t, err)
	for _, p := range rules {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		var rf struct {
			Groups []struct {
				Rules []struct{ Expr string } `yaml:"rules"`
			} `yaml:"groups"`
		}
		require.NoError(t, yaml.Unmarshal(b, &rf))
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				exprs = append(exprs, r.Expr)
			}
		}
	}
	n := 0
	for _, expr := range exprs {
		e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
		require.NoError(t, err, expr)
		parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			for _, m := range vs.LabelMatchers {
				if m.Name != "media_quality_class" {
					continue
				}
				for _, v := range strings.Split(m.Value, "|") {
					n++
					assert.True(t, classes[v], "%s: media_quality_class %q is no mediaq class", expr, v)
				}
			}
			return nil
		})
	}
	assert.Greater(t, n, 10, "class values checked")
}
