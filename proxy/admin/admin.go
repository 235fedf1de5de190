// Package admin serves SIPhon's admin API
// (docs/siphon-formats.md#admin-api): health, readiness, stats,
// registrations, and the metrics, with bearer-token auth.
package admin

import (
	"crypto/subtle"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/proxy/calls"
	"github.com/siphon-otel/siphon-otel/proxy/registrar"
)

// Source is what the API reports on.
type Source interface {
	Uptime() time.Duration
	Draining() bool
	Registrar() *registrar.Registrar
	ActiveCalls() []calls.Call
	Gatherer() prometheus.Gatherer
}

// API is the admin HTTP handler.
type API struct {
	src          Source
	token        []byte
	protectReads bool
	mux          *http.ServeMux
	now          func() time.Time
}

// New builds the handler. With a token, mutating requests need
// "Authorization: Bearer <token>"; protectReads extends that to reads and
// /metrics.
func New(src Source, token string, protectReads bool) *API {
	a := &API{src: src, protectReads: protectReads, mux: http.NewServeMux(), now: time.Now}
	if token != "" {
		a.token = []byte("Bearer " + token)
	}
	a.mux.HandleFunc("GET /admin/health", a.health)
	a.mux.HandleFunc("GET /admin/ready", a.ready)
	a.mux.HandleFunc("GET /admin/stats", a.stats)
	a.mux.HandleFunc("GET /admin/registrations", a.registrations)
	a.mux.HandleFunc("GET /admin/registrations/{aor...}", a.registration)
	a.mux.HandleFunc("DELETE /admin/registrations/{aor...}", a.deregister)
	a.mux.HandleFunc("GET /admin/calls", a.calls)
	a.mux.HandleFunc("GET /admin/metrics.json", a.metricsJSON)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(src.Gatherer(), promhttp.HandlerOpts{}))
	return a
}

// ServeHTTP checks auth and routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mutating := r.Method != http.MethodGet && r.Method != http.MethodHead
	if a.token != nil && (mutating || a.protectReads) &&
		subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), a.token) != 1 {
		w.Header().Set("WWW-Authenticate", "Bearer")
		write(w, http.StatusUnauthorized, obj("error", str("unauthorized")))
		return
	}
	a.mux.ServeHTTP(w, r)
}

// The API writes its JSON by hand so that it matches SIPhon's serde output
// (key order, 1.0 for a float q).

func obj(pairs ...any) []byte {
	b := []byte{'{'}
	for i := 0; i+1 < len(pairs); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = cdr.AppendString(b, pairs[i].(string))
		b = append(b, ':')
		b = append(b, pairs[i+1].([]byte)...)
	}
	return append(b, '}')
}

func str(s string) []byte    { return cdr.AppendString(nil, s) }
func num(n int64) []byte     { return strconv.AppendInt(nil, n, 10) }
func float(f float64) []byte { return cdr.AppendFloat(nil, f) }
func arr(items [][]byte) []byte {
	b := []byte{'['}
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}

func write(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (a *API) uptime() []byte { return num(int64(a.src.Uptime().Seconds())) }

func (a *API) health(w http.ResponseWriter, _ *http.Request) {
	write(w, http.StatusOK, obj("status", str("ok"), "uptime_seconds", a.uptime()))
}

func (a *API) ready(w http.ResponseWriter, _ *http.Request) {
	if a.src.Draining() {
		write(w, http.StatusServiceUnavailable, obj("status", str("draining")))
		return
	}
	write(w, http.StatusOK, obj("status", str("ready")))
}

func (a *API) stats(w http.ResponseWriter, _ *http.Request) {
	write(w, http.StatusOK, obj("uptime_seconds", a.uptime(), "registrations_active", num(int64(a.src.Registrar().Count()))))
}

func (a *API) remaining(c registrar.Contact) []byte {
	return num(int64(math.Max(0, math.Ceil(c.Expires.Sub(a.now()).Seconds()))))
}

func (a *API) registrations(w http.ResponseWriter, _ *http.Request) {
	all := a.src.Registrar().All()
	aors := make([]string, 0, len(all))
	for aor := range all {
		aors = append(aors, aor)
	}
	sort.Strings(aors)
	items := [][]byte{}
	for _, aor := range aors {
		for _, c := range all[aor] {
			items = append(items, obj("aor", str(aor), "uri", str(c.URI), "q", float(c.Q), "expires_remaining", a.remaining(c)))
		}
	}
	write(w, http.StatusOK, arr(items))
}

func aorOf(r *http.Request) string {
	aor := r.PathValue("aor")
	if !strings.HasPrefix(aor, "sip:") && !strings.HasPrefix(aor, "sips:") {
		aor = "sip:" + aor
	}
	return registrar.AoR(aor)
}

func (a *API) registration(w http.ResponseWriter, r *http.Request) {
	aor := aorOf(r)
	cs := a.src.Registrar().Lookup(aor)
	if len(cs) == 0 {
		write(w, http.StatusNotFound, obj("error", str("not found"), "aor", str(aor)))
		return
	}
	items := make([][]byte, 0, len(cs))
	for _, c := range cs {
		items = append(items, obj("uri", str(c.URI), "q", float(c.Q), "expires_remaining", a.remaining(c)))
	}
	write(w, http.StatusOK, obj("aor", str(aor), "contacts", arr(items)))
}

func (a *API) deregister(w http.ResponseWriter, r *http.Request) {
	aor := aorOf(r)
	if !a.src.Registrar().Remove(aor) {
		write(w, http.StatusNotFound, obj("error", str("not found"), "aor", str(aor)))
		return
	}
	write(w, http.StatusOK, obj("status", str("removed"), "aor", str(aor)))
}

func (a *API) calls(w http.ResponseWriter, _ *http.Request) {
	items := [][]byte{}
	for _, c := range a.src.ActiveCalls() {
		items = append(items, obj("call_id", str(c.CallID), "from_uri", str(c.FromURI), "to_uri", str(c.ToURI),
			"state", str(c.State), "timestamp_start", str(cdr.FormatTime(c.Start)),
			"duration_secs", float(float64(a.now().Sub(c.Start).Milliseconds())/1000)))
	}
	write(w, http.StatusOK, arr(items))
}

// metricsJSON is the metrics page as {"name": value} for untyped readers;
// labelled series are "name{k=\"v\"}" keys, histograms give _count and _sum.
func (a *API) metricsJSON(w http.ResponseWriter, _ *http.Request) {
	families, err := a.src.Gatherer().Gather()
	if err != nil {
		write(w, http.StatusInternalServerError, obj("error", str(err.Error())))
		return
	}
	var pairs []any
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName() + labels(m.GetLabel())
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				pairs = append(pairs, name, float(m.GetCounter().GetValue()))
			case dto.MetricType_GAUGE:
				pairs = append(pairs, name, float(m.GetGauge().GetValue()))
			case dto.MetricType_HISTOGRAM:
				pairs = append(pairs, f.GetName()+"_count"+labels(m.GetLabel()), num(int64(m.GetHistogram().GetSampleCount())),
					f.GetName()+"_sum"+labels(m.GetLabel()), float(m.GetHistogram().GetSampleSum()))
			case dto.MetricType_SUMMARY:
				pairs = append(pairs, f.GetName()+"_count"+labels(m.GetLabel()), num(int64(m.GetSummary().GetSampleCount())))
			}
		}
	}
	write(w, http.StatusOK, obj(pairs...))
}

func labels(ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.GetName() + `="` + l.GetValue() + `"`)
	}
	b.WriteByte('}')
	return b.String()
}
