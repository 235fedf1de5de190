package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/siphon-otel/siphon-otel/connectors/sipcallconnector"
	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipflow"
)

var update = flag.Bool("update", false, "rewrite testdata: the generated span fixtures and every golden ladder")

var base = time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)

// generated are span fixtures made by the real sipcall connector from
// recorded calls (sipflow: caller A, proxy P, callee B), written as the
// file exporter writes them, a batch a line. -update writes them again.
var generated = map[string]func(t *testing.T) []plog.Logs{
	// answered through P; P's 200 to A retransmitted (A's ACK came late);
	// the callee hangs up
	"answered": func(t *testing.T) []plog.Logs {
		ld := sipflow.Logs("sbc-1")
		f := sipflow.New(t, ld, base, "call-answered")
		f.Invite(0)
		f.Answer(0.2, sipflow.AddrB, 180, "tt-b")
		f.Answer(2.4, sipflow.AddrB, 200, "tt-b")
		f.Response(2.9, sipflow.AddrP, sipflow.AddrA, 200, "INVITE", 1, sipflow.Branch(f.CallID, "a", 1, "INVITE"), "tt-b")
		f.ACK2xx(3.0, 1, "tt-b")
		f.InDialog(12.5, "BYE", 1, "tt-b", false)
		sipflow.CDR(t, ld, base, f.CallID, 200, 0, 2.4, 12.55, "callee", "")
		return []plog.Logs{ld}
	},
	// busy: the non-2xx's ACK is in the INVITE's transaction, hop by hop
	"busy": func(t *testing.T) []plog.Logs {
		ld := sipflow.Logs("sbc-1")
		f := sipflow.New(t, ld, base, "call-busy")
		f.Invite(0)
		f.Answer(0.3, sipflow.AddrB, 486, "tt-b")
		f.ACKFailure(0.31, "tt-b")
		return []plog.Logs{ld}
	},
	// a B2BUA (P) with two Call-IDs, the b-leg naming the a-leg (its
	// correlation id, as sip_correlation writes it from X-CID)
	"b2bua": func(t *testing.T) []plog.Logs {
		ld := sipflow.Logs("b2bua-1")
		a := sipflow.New(t, ld, base, "leg-a")
		b := sipflow.New(t, ld, base, "leg-b")
		a.CorrelationID, b.CorrelationID = "leg-a", "leg-a"
		ha, hb := sipflow.Branch("leg-a", "a", 1, "INVITE"), sipflow.Branch("leg-b", "b", 1, "INVITE")
		a.Request(0, sipflow.AddrA, sipflow.AddrP, "INVITE", 1, ha, "", "")
		a.Response(0.001, sipflow.AddrP, sipflow.AddrA, 100, "INVITE", 1, ha, "")
		b.Request(0.002, sipflow.AddrP, sipflow.AddrB, "INVITE", 1, hb, "", "")
		b.Response(0.5, sipflow.AddrB, sipflow.AddrP, 180, "INVITE", 1, hb, "tb")
		a.Response(0.501, sipflow.AddrP, sipflow.AddrA, 180, "INVITE", 1, ha, "ta")
		b.Response(1.5, sipflow.AddrB, sipflow.AddrP, 200, "INVITE", 1, hb, "tb")
		a.Response(1.501, sipflow.AddrP, sipflow.AddrA, 200, "INVITE", 1, ha, "ta")
		a.Request(1.6, sipflow.AddrA, sipflow.AddrP, "ACK", 1, sipflow.Branch("leg-a", "a", 1, "ACK"), "ta", "")
		b.Request(1.601, sipflow.AddrP, sipflow.AddrB, "ACK", 1, sipflow.Branch("leg-b", "b", 1, "ACK"), "tb", "")
		hby, hbyb := sipflow.Branch("leg-a", "a", 2, "BYE"), sipflow.Branch("leg-b", "b", 2, "BYE")
		a.Request(5, sipflow.AddrA, sipflow.AddrP, "BYE", 2, hby, "ta", "")
		a.Response(5.001, sipflow.AddrP, sipflow.AddrA, 200, "BYE", 2, hby, "ta")
		b.Request(5.002, sipflow.AddrP, sipflow.AddrB, "BYE", 2, hbyb, "tb", "")
		b.Request(5.502, sipflow.AddrP, sipflow.AddrB, "BYE", 2, hbyb, "tb", "") // P retransmits
		b.Response(5.6, sipflow.AddrB, sipflow.AddrP, 200, "BYE", 2, hbyb, "tb")
		return []plog.Logs{ld}
	},
}

// spansOf runs the records through the sipcall connector on its default
// config; its shutdown lets every ended call's spans leave.
func spansOf(t *testing.T, lds []plog.Logs) []ptrace.Traces {
	t.Helper()
	f := sipcallconnector.NewFactory()
	sink := new(consumertest.TracesSink)
	c, err := f.CreateLogsToTraces(context.Background(), connectortest.NewNopSettings(component.MustNewType("sipcall")), f.CreateDefaultConfig(), sink)
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	for _, ld := range lds {
		require.NoError(t, c.ConsumeLogs(context.Background(), ld))
	}
	require.NoError(t, c.Shutdown(context.Background()))
	require.NotEmpty(t, sink.AllTraces(), "the connector made spans")
	return sink.AllTraces()
}

// writeSpanFile writes batches as the file exporter does: OTLP JSON, one a line.
func writeSpanFile(t *testing.T, path string, tds []ptrace.Traces) {
	t.Helper()
	var buf bytes.Buffer
	var m ptrace.JSONMarshaler
	for _, td := range tds {
		b, err := m.MarshalTraces(td)
		require.NoError(t, err)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

func TestGeneratedFixtures(t *testing.T) {
	for name, gen := range generated {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name+".jsonl")
			if *update {
				writeSpanFile(t, path, spansOf(t, gen(t)))
			}
			// the fixture is what the connector makes today: a change of
			// the span model shows here first
			want := filepath.Join(t.TempDir(), "now.jsonl")
			writeSpanFile(t, want, spansOf(t, gen(t)))
			for _, p := range []string{path, want} {
				_, err := os.Stat(p)
				require.NoError(t, err)
			}
			got, err := fromFile(path, query{callID: "call-" + name})
			if name == "b2bua" {
				got, err = fromFile(path, query{callID: "leg-a"})
			}
			require.NoError(t, err)
			now, err := fromFile(want, query{traceID: got.trace.ID})
			require.NoError(t, err)
			assert.Equal(t, draw(mustLayout(t, now), 80, false), draw(mustLayout(t, got), 80, false))
		})
	}
}

func mustLayout(t *testing.T, f found) *ladder {
	t.Helper()
	l, err := layout(f)
	require.NoError(t, err)
	return l
}

// TestLadder draws span files (generated ones, and one a real sipp call
// through sipproxy and otelcol-siphon wrote) at several widths, by trace
// id and by Call-ID, against golden files.
func TestLadder(t *testing.T) {
	for _, tt := range []struct {
		golden string
		file   string
		q      query
		width  int
	}{
		{"answered-80", "answered", query{callID: "call-answered"}, 80},
		{"answered-120", "answered", query{traceID: calltrace.TraceID("call-answered").String()}, 120},
		{"answered-50", "answered", query{callID: "call-answered"}, 50},
		{"busy-80", "busy", query{callID: "call-busy"}, 80},
		{"b2bua-80", "b2bua", query{callID: "leg-a"}, 80},
		// the b-leg's Call-ID finds the same trace
		{"b2bua-80", "b2bua", query{callID: "leg-b"}, 80},
		{"b2bua-100", "b2bua", query{traceID: calltrace.TraceID("leg-a").String()}, 100},
	} {
		t.Run(tt.golden+"/"+tt.q.String(), func(t *testing.T) {
			f, err := fromFile(filepath.Join("testdata", tt.file+".jsonl"), tt.q)
			require.NoError(t, err)
			got := draw(mustLayout(t, f), tt.width, false)
			for i, line := range strings.Split(got, "\n") {
				assert.LessOrEqual(t, len([]rune(line)), tt.width, "line %d fits: %q", i+1, line)
			}
			golden := filepath.Join("testdata", tt.golden+".txt")
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.Equal(t, string(want), got)
		})
	}
}
