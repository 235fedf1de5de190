package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/siphon-otel/siphon-otel/internal/calltrace"
)

// TestRun: what the command prints and its exit code, for every way a
// call is named and every way reading it fails.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "not-otlp.jsonl")
	require.NoError(t, os.WriteFile(notJSON, []byte("{\"resourceSpans\":[]}\nthis is no JSON\n"), 0o600))
	// the busy call's root span alone: a call, but no transaction to draw
	noTx := filepath.Join(dir, "root-only.jsonl")
	b, err := os.ReadFile(filepath.Join("testdata", "busy.jsonl"))
	require.NoError(t, err)
	var un ptrace.JSONUnmarshaler
	var roots []ptrace.Traces
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		td, err := un.UnmarshalTraces(line)
		require.NoError(t, err)
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				ss.Spans().RemoveIf(func(s ptrace.Span) bool { return s.Name() != nameCall })
			}
		}
		roots = append(roots, td)
	}
	writeSpanFile(t, noTx, roots)
	// a loopback port nobody listens on
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	busy := filepath.Join("testdata", "busy.jsonl")
	busyTrace := calltrace.TraceID("call-busy").String()
	for _, tt := range []struct {
		name     string
		args     []string
		code     int
		out, err string // substrings
		noOut    bool
	}{
		{"by Call-ID", []string{"--file", busy, "call-busy"}, exitOK, "486 Busy Here", "", false},
		{"by trace id", []string{"--file", busy, busyTrace}, exitOK, "Call-ID    call-busy", "", false},
		{"by trace id in capitals", []string{"--file", busy, "--trace", strings.ToUpper(busyTrace)}, exitOK, "busy (486", "", false},
		{"by --call-id", []string{"--file", busy, "--call-id", "call-busy", "--width", "60"}, exitOK, "T2", "", false},
		{"the span tree", []string{"--file", busy, "--tree", "call-busy"}, exitOK, "SIP call internal", "", false},
		{"no colour when not a terminal", []string{"--file", busy, "call-busy"}, exitOK, "│", "", false},
		{"colour asked for", []string{"--file", busy, "--color", "always", "call-busy"}, exitOK, "\x1b[31m", "", false},
		{"unknown Call-ID", []string{"--file", busy, "no-such-call"}, exitNotFound, "", "Call-ID no-such-call in testdata/busy.jsonl: not found", true},
		{"unknown trace id", []string{"--file", busy, strings.Repeat("ab", 16)}, exitNotFound, "", "not found", true},
		{"file missing", []string{"--file", filepath.Join(dir, "none.jsonl"), "x"}, exitSource, "", "span file: open", true},
		{"file not OTLP JSON", []string{"--file", notJSON, "x"}, exitSource, "", "line 2: not OTLP JSON", true},
		{"a trace without transactions", []string{"--file", noTx, busyTrace}, exitSource, "", "no SIP transaction spans", true},
		{"Jaeger unreachable", []string{"--jaeger", closed, "--timeout", "5s", "call-busy"}, exitSource, "", "connection refused", true},
		{"Jaeger unreachable by trace id", []string{"--jaeger", closed, "--timeout", "5s", busyTrace}, exitSource, "", "jaeger: GET /api/traces/", true},
		{"no source", []string{"call-busy"}, exitUsage, "", "one source", true},
		{"two sources", []string{"--file", busy, "--jaeger", closed, "call-busy"}, exitUsage, "", "one source", true},
		{"no call", []string{"--file", busy}, exitUsage, "", "name the call", true},
		{"two calls", []string{"--file", busy, "a", "b"}, exitUsage, "", "one call at a time", true},
		{"call named twice", []string{"--file", busy, "--call-id", "a", "b"}, exitUsage, "", "give the call once", true},
		{"bad trace id", []string{"--file", busy, "--trace", "xyz"}, exitUsage, "", "not 32 hex digits", true},
		{"Jaeger not a URL", []string{"--jaeger", "127.0.0.1:16686", "call-busy"}, exitUsage, "", "http:// or https://", true},
		{"too narrow", []string{"--file", busy, "--width", "20", "call-busy"}, exitUsage, "", "at least 40", true},
		{"bad colour", []string{"--file", busy, "--color", "pink", "call-busy"}, exitUsage, "", "auto, always or never", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tt.args, &out, &errb)
			assert.Equal(t, tt.code, code, "stderr: %s", errb.String())
			assert.Contains(t, out.String(), tt.out)
			assert.Contains(t, errb.String(), tt.err)
			if tt.noOut {
				assert.Empty(t, out.String(), "nothing drawn on failure")
			}
			if tt.code == exitOK && !strings.Contains(strings.Join(tt.args, " "), "always") {
				assert.NotContains(t, out.String(), "\x1b[", "no escape sequences")
			}
		})
	}
}
