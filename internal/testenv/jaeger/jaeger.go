// Package jaeger runs a real Jaeger v2 (jaegertracing/jaeger cmd/jaeger,
// built by `make jaeger` from tools/jaeger and named by $JAEGER) for the
// tests: in-memory storage, OTLP in over gRPC and HTTP, the query service's
// HTTP API, every listener on a loopback port of package ports. Traces are
// read back through the query API with internal/jaegerapi.
package jaeger

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/jaegerapi"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// EnvBinary names the variable that points at the jaeger binary; the
// Makefile sets it for the tiers that run Jaeger.
const EnvBinary = "JAEGER"

// Binary returns the path of jaeger from $JAEGER. The tests do not build
// it: building takes minutes and belongs to make.
func Binary(t testing.TB) string {
	t.Helper()
	p := os.Getenv(EnvBinary)
	if p == "" {
		t.Fatalf("%s is not set: run `make jaeger`, then %s=%s go test -tags integration ...",
			EnvBinary, EnvBinary, filepath.Join(testenv.RepoRoot(), ".tools", "bin", "jaeger"))
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s=%s: %v (run `make jaeger`)", EnvBinary, p, err)
	}
	return p
}

// readyTimeout is how long Jaeger may take to start.
const readyTimeout = 60 * time.Second

// Server is a running Jaeger.
type Server struct {
	*childproc.Process
	OTLPGRPC string // host:port of OTLP/gRPC
	OTLPHTTP string // host:port of OTLP/HTTP
	QueryURL string // http://host:port of the query service (API and UI)
	api      *jaegerapi.Client
}

// Start runs Jaeger until the test ends and waits until its query API
// answers.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{OTLPGRPC: ports.Addr(t), OTLPHTTP: ports.Addr(t)}
	query := ports.Addr(t)
	s.QueryURL = "http://" + query
	s.api = &jaegerapi.Client{QueryURL: s.QueryURL}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(cfg, []byte(jaegerapi.Config(query, ports.Addr(t), s.OTLPGRPC, s.OTLPHTTP)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Process = testenv.Start(t, childproc.Spec{Name: "jaeger", Path: Binary(t), Args: []string{"--config", cfg},
		Dir: dir, Log: filepath.Join(dir, "jaeger.log")})
	testenv.WaitReady(t, s.Process, readyTimeout, childproc.HTTPOK(s.QueryURL+"/api/services"))
	return s
}

// collectorOverlay is an overlay for otelcol-siphon's shipped configs
// (config.yaml, gateway.yaml): sipcall's waits made short, so that a span
// leaves a second after its transaction completed and a root a second after
// its call ended once its CDR came, 5 s without one.
const collectorOverlay = `connectors:
  sipcall:
    flush_interval: 200ms
    linger: 1s
    cdr_wait: 5s
`

// Collector returns what makes a collector on a shipped config send its call
// traces here: an overlay (a path, for collector.Options.Overlays) and the
// environment that selects the shipped OTLP exporter and points it at s.
func (s *Server) Collector(t testing.TB) (overlay string, env map[string]string) {
	t.Helper()
	overlay = filepath.Join(t.TempDir(), "fast-traces.yaml")
	if err := os.WriteFile(overlay, []byte(collectorOverlay), 0o600); err != nil {
		t.Fatal(err)
	}
	return overlay, map[string]string{"SIPHON_TRACES_EXPORTER": "otlp_grpc/traces", "SIPHON_TRACES_ENDPOINT": s.OTLPGRPC}
}

// The query API's model, as the tests name it.
type (
	Span  = jaegerapi.Span
	Log   = jaegerapi.Log
	Trace = jaegerapi.Trace
)

// ErrNotFound is a trace the query service does not have.
var ErrNotFound = jaegerapi.ErrNotFound

// Trace returns a trace by its id (hex) as stored (jaegerapi.Client.Trace).
func (s *Server) Trace(id string) (Trace, error) { return s.api.Trace(context.Background(), id) }

// Search returns the traces of service whose spans have the tags
// (jaegerapi.Client.Search).
func (s *Server) Search(service string, tags map[string]string, lookback time.Duration, limit int) ([]Trace, error) {
	return s.api.Search(context.Background(), service, tags, lookback, limit)
}

// Services returns the services Jaeger has spans of.
func (s *Server) Services() ([]string, error) { return s.api.Services(context.Background()) }
