package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/proxy/calls"
	"github.com/siphon-otel/siphon-otel/proxy/registrar"
)

type src struct {
	reg      *registrar.Registrar
	draining bool
	calls    []calls.Call
	g        *prometheus.Registry
}

func (s *src) Uptime() time.Duration           { return 42 * time.Second }
func (s *src) Draining() bool                  { return s.draining }
func (s *src) Registrar() *registrar.Registrar { return s.reg }
func (s *src) ActiveCalls() []calls.Call       { return s.calls }
func (s *src) Gatherer() prometheus.Gatherer   { return s.g }

func newAPI(t *testing.T, token string, protect bool) (*API, *src) {
	t.Helper()
	g := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "siphon_requests_total", Help: "x"}, []string{"method"})
	g.MustRegister(c)
	c.WithLabelValues("INVITE").Add(3)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "siphon_request_duration_seconds", Help: "x"})
	g.MustRegister(h)
	h.Observe(0.5)
	s := &src{reg: registrar.New(), g: g}
	a := New(s, token, protect)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	s.calls = []calls.Call{{CallID: "c1", FromURI: "sip:alice@example.com", ToURI: "sip:bob@example.com", State: "answered", Start: now.Add(-1500 * time.Millisecond)}}
	return a, s
}

func do(a *API, method, path, auth string) (int, string, http.Header) {
	req := httptest.NewRequest(method, path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body), rec.Header()
}

// TestRoutes checks every route's status and exact JSON (SIPhon's key
// order and number formatting).
func TestRoutes(t *testing.T) {
	a, s := newAPI(t, "", false)
	s.reg.Update("sip:bob@example.com", []registrar.Binding{{URI: "sip:bob@127.0.0.1:5070", Expires: 3600, Q: 1}, {URI: "sip:bob@127.0.0.1:5072", Expires: 3600, Q: 0.5}}, "r1", 1, "127.0.0.1:5070", "udp", "ua")
	a.now = time.Now

	tests := []struct {
		method, path string
		code         int
		body         string // exact, or "" to only check the status
		contains     string
	}{
		{"GET", "/admin/health", 200, `{"status":"ok","uptime_seconds":42}`, ""},
		{"GET", "/admin/ready", 200, `{"status":"ready"}`, ""},
		{"GET", "/admin/stats", 200, `{"uptime_seconds":42,"registrations_active":2}`, ""},
		{"GET", "/admin/registrations", 200, "", `[{"aor":"sip:bob@example.com","uri":"sip:bob@127.0.0.1:5070","q":1.0,"expires_remaining":`},
		{"GET", "/admin/registrations/bob@example.com", 200, "", `{"aor":"sip:bob@example.com","contacts":[{"uri":"sip:bob@127.0.0.1:5070","q":1.0,"expires_remaining":3600},{"uri":"sip:bob@127.0.0.1:5072","q":0.5,"expires_remaining":3600}]}`},
		{"GET", "/admin/registrations/sip:nobody@example.com", 404, `{"error":"not found","aor":"sip:nobody@example.com"}`, ""},
		{"GET", "/admin/calls", 200, "", `"call_id":"c1","from_uri":"sip:alice@example.com","to_uri":"sip:bob@example.com","state":"answered"`},
		{"GET", "/admin/metrics.json", 200, "", `"siphon_requests_total{method=\"INVITE\"}":3.0`},
		{"GET", "/admin/metrics.json", 200, "", `"siphon_request_duration_seconds_count":1,"siphon_request_duration_seconds_sum":0.5`},
		{"GET", "/metrics", 200, "", `siphon_requests_total{method="INVITE"} 3`},
		{"DELETE", "/admin/registrations/bob@example.com", 200, `{"status":"removed","aor":"sip:bob@example.com"}`, ""},
		{"DELETE", "/admin/registrations/bob@example.com", 404, `{"error":"not found","aor":"sip:bob@example.com"}`, ""},
		{"GET", "/admin/stats", 200, `{"uptime_seconds":42,"registrations_active":0}`, ""},
		{"GET", "/admin/nothing", 404, "", ""},
		{"POST", "/admin/health", 405, "", ""},
	}
	for _, tt := range tests {
		code, body, _ := do(a, tt.method, tt.path, "")
		assert.Equal(t, tt.code, code, "%s %s: %s", tt.method, tt.path, body)
		if tt.body != "" {
			assert.Equal(t, tt.body, body, "%s %s", tt.method, tt.path)
		}
		if tt.contains != "" {
			assert.Contains(t, body, tt.contains, "%s %s", tt.method, tt.path)
		}
	}
	s.draining = true
	code, body, _ := do(a, "GET", "/admin/ready", "")
	assert.Equal(t, 503, code)
	assert.Equal(t, `{"status":"draining"}`, body)
	code, _, _ = do(a, "GET", "/admin/health", "")
	assert.Equal(t, 200, code, "health stays 200 while draining")
}

func TestAuth(t *testing.T) {
	const good = "Bearer s3cret"
	tests := []struct {
		name    string
		protect bool
		method  string
		path    string
		auth    string
		code    int
	}{
		{"read open", false, "GET", "/admin/stats", "", 200},
		{"metrics open", false, "GET", "/metrics", "", 200},
		{"delete needs token", false, "DELETE", "/admin/registrations/x@y", "", 401},
		{"delete wrong token", false, "DELETE", "/admin/registrations/x@y", "Bearer nope", 401},
		{"delete token case", false, "DELETE", "/admin/registrations/x@y", "bearer s3cret", 401},
		{"delete token", false, "DELETE", "/admin/registrations/x@y", good, 404},
		{"protected read", true, "GET", "/admin/stats", "", 401},
		{"protected health", true, "GET", "/admin/health", "", 401},
		{"protected metrics", true, "GET", "/metrics", "", 401},
		{"protected metrics.json", true, "GET", "/admin/metrics.json", "Bearer s3cre", 401},
		{"protected read with token", true, "GET", "/admin/stats", good, 200},
		{"protected metrics with token", true, "GET", "/metrics", good, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := newAPI(t, "s3cret", tt.protect)
			code, body, h := do(a, tt.method, tt.path, tt.auth)
			require.Equal(t, tt.code, code, body)
			if code == 401 {
				assert.Equal(t, `{"error":"unauthorized"}`, body)
				assert.Equal(t, "Bearer", h.Get("WWW-Authenticate"))
			}
		})
	}
}
