// Package prometheus runs a real Prometheus server (Debian's `prometheus`) on
// loopback for tests and queries it through its HTTP API.
package prometheus

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// Server is a running Prometheus.
type Server struct {
	URL string // http://127.0.0.1:port
}

// Options configure Start.
type Options struct {
	// Config is the prometheus.yml text.
	Config string
	// Flags are added to the command line (feature flags, remote write).
	Flags []string
}

// readyTimeout is how long Prometheus may take to start.
const readyTimeout = 30 * time.Second

// Start runs Prometheus with the config until the test ends and waits
// until it is ready. Its log is printed if the test fails.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(opts.Config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := ports.Addr(t)
	args := append([]string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--log.level=info"}, opts.Flags...)
	p := testenv.Start(t, childproc.Spec{Path: "prometheus", Args: args, Log: filepath.Join(dir, "prometheus.log")})
	s := &Server{URL: "http://" + addr}
	testenv.WaitReady(t, p, readyTimeout, childproc.HTTPOK(s.URL+"/-/ready"))
	return s
}

// Sample is one element of an instant vector.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// client bounds every API call.
var client = &http.Client{Timeout: 10 * time.Second}

func (s *Server) get(path string, q url.Values, out any) error {
	resp, err := client.Get(s.URL + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("prometheus: %s: %w (%s)", path, err, b)
	}
	if env.Status != "success" {
		return fmt.Errorf("prometheus: %s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// Query evaluates an instant query now.
func (s *Server) Query(expr string) ([]Sample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := s.get("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus: %s: result type %s, want vector", expr, data.ResultType)
	}
	out := make([]Sample, 0, len(data.Result))
	for _, r := range data.Result {
		str, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus: %s: value %v: %w", expr, r.Value[1], err)
		}
		out = append(out, Sample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// Exemplar is one stored exemplar.
type Exemplar struct {
	SeriesLabels map[string]string
	Labels       map[string]string
	Value        float64
}

// Exemplars returns the exemplars of the series a query selects over the
// last window.
func (s *Server) Exemplars(expr string, window time.Duration) ([]Exemplar, error) {
	now := time.Now()
	var data []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels map[string]string `json:"labels"`
			Value  string            `json:"value"`
		} `json:"exemplars"`
	}
	q := url.Values{"query": {expr}, "start": {strconv.FormatInt(now.Add(-window).Unix(), 10)},
		"end": {strconv.FormatInt(now.Add(time.Minute).Unix(), 10)}}
	if err := s.get("/api/v1/query_exemplars", q, &data); err != nil {
		return nil, err
	}
	var out []Exemplar
	for _, d := range data {
		for _, e := range d.Exemplars {
			v, _ := strconv.ParseFloat(e.Value, 64)
			out = append(out, Exemplar{SeriesLabels: d.SeriesLabels, Labels: e.Labels, Value: v})
		}
	}
	return out, nil
}

// Rules returns the rule groups' health as reported by /api/v1/rules:
// rule name -> health ("ok", "err", "unknown") and last error.
func (s *Server) Rules() (map[string][2]string, error) {
	var data struct {
		Groups []struct {
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := s.get("/api/v1/rules", url.Values{}, &data); err != nil {
		return nil, err
	}
	out := map[string][2]string{}
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			out[r.Name] = [2]string{r.Health, r.LastError}
		}
	}
	return out, nil
}

// Alert is one active alert (pending or firing).
type Alert struct {
	Labels map[string]string
	State  string
}

// Alerts returns the active alerts.
func (s *Server) Alerts() ([]Alert, error) {
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if err := s.get("/api/v1/alerts", url.Values{}, &data); err != nil {
		return nil, err
	}
	out := make([]Alert, 0, len(data.Alerts))
	for _, a := range data.Alerts {
		out = append(out, Alert{Labels: a.Labels, State: a.State})
	}
	return out, nil
}

// WaitValue polls expr until it returns exactly one sample whose value
// satisfies ok and returns that value; after 60 s the test fails with the
// last result (what says what was awaited).
func (s *Server) WaitValue(t testing.TB, what, expr string, ok func(float64) bool) float64 {
	t.Helper()
	var last []Sample
	var err error
	deadline := time.Now().Add(60 * time.Second)
	for {
		last, err = s.Query(expr)
		if err == nil && len(last) == 1 && ok(last[0].Value) {
			return last[0].Value
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s: last result %v, err %v", what, expr, last, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
