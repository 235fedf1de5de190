//go:build integration

package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/siphon-otel/siphon-otel/demo/callgen"
	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/jaeger"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipproxy"
	"github.com/siphon-otel/siphon-otel/proxy/rtpengine"
)

// TestDemo runs the whole demo (real otelcol-siphon on its default config,
// real sipproxy, the call generator, the Homer stand-in) for a few seconds,
// stops it as Ctrl-C does, and checks that every call is accounted for
// everywhere: one CDR each, in the KPIs, every SIP message and CDR relayed
// to Homer, nothing dropped, clean exits. With rtpengine-daemon installed
// (make test installs it) the calls' media went through it and its RTCP
// reached the collector (checkMedia); without, the demo said so and ran
// without media.
func TestDemo(t *testing.T) {
	state := t.TempDir()
	at := Ports{ProxySIP: ports.Port(t), ProxyMetrics: ports.Port(t), ProxyAdmin: ports.Port(t), HEP: ports.Port(t),
		CDRHTTP: ports.Port(t), CDRSyslog: ports.Port(t), Health: ports.Port(t), Telemetry: ports.Port(t), KPI: ports.Port(t), Homer: ports.Port(t),
		// media ports of their own, apart from the other tests' engines
		// (30000-31699): a call takes four, held 30 s past its delete
		RTPEngineNG: ports.Port(t), RTPEngineCLI: ports.Port(t), MediaMin: 31700, MediaMax: 32699}
	mix := map[callgen.Outcome]int{}
	for o := range callgen.DefaultMix {
		mix[o] = 1 // every outcome about equally often: all of them show up
	}
	at.JaegerQuery, at.JaegerQueryGRPC, at.JaegerOTLP, at.JaegerOTLPHTTP = ports.Port(t), ports.Port(t), ports.Port(t), ports.Port(t)
	d, err := Start(context.Background(), Options{Collector: collector.Binary(t), Proxy: sipproxy.Binary(t), StateDir: state,
		Ports: at, Rate: 20, Hold: time.Second, Ring: 600 * time.Millisecond, Mix: mix, Jaeger: jaeger.Binary(t)})
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = d.Stop(context.Background())
		}
		if t.Failed() {
			for _, p := range []*childproc.Process{d.collector, d.proxy} {
				t.Logf("the end of %s's log:\n%s", p.Name(), p.Tail(60))
			}
		}
	})
	require.Eventually(t, func() bool { return d.Status().Placed >= 150 }, 30*time.Second, 100*time.Millisecond)
	checkSampleCall(t, d)
	live := d.Status()
	assert.Positive(t, live.HEPIn, "HEP reaches the collector while calls run")
	require.NoError(t, d.Stop(context.Background()), "every part exits cleanly")
	stopped = true

	f := d.Final()
	t.Logf("final: %s", f)
	assert.Zero(t, f.Errors)
	assert.Zero(t, f.Active)
	for name, n := range map[string]int64{"answered": f.Answered, "busy": f.Busy, "cancelled": f.Cancelled,
		"failed": f.Failed, "not found": f.NotFound} {
		assert.Positive(t, n, name)
	}
	assert.Equal(t, f.Placed, f.Answered+f.Busy+f.Cancelled+f.Failed+f.NotFound, "every call ended one way")
	assert.Zero(t, f.Drops)

	// one CDR per call (plus the five REGISTERs), each call once
	cdrs := readJSONLines(t, filepath.Join(state, "collector", "cdr.jsonl"))
	invites := map[string]int{}
	byCode := map[float64]int64{}
	for _, c := range cdrs {
		if c["method"] == "INVITE" {
			invites[c["call_id"].(string)]++
			byCode[c["response_code"].(float64)]++
		}
	}
	assert.Len(t, invites, int(f.Placed))
	for id, n := range invites {
		assert.Equal(t, 1, n, id)
	}
	assert.Equal(t, int(f.Placed)+5, len(cdrs))
	// the response codes of all CDRs, so that a call ending unexpectedly is named
	t.Logf("INVITE CDRs by response code: %v", byCode)
	assert.Equal(t, f.Answered, byCode[200])
	assert.Equal(t, f.Busy, byCode[486])
	assert.Equal(t, f.Cancelled, byCode[487])
	assert.Equal(t, f.Failed, byCode[503])
	assert.Equal(t, f.NotFound, byCode[404])
	// the KPIs counted the same calls
	assert.Equal(t, float64(f.Placed), f.KPICalls)
	assert.InDelta(t, float64(f.Answered)/float64(f.Placed), f.ASR, 1e-9)
	// every SIP message and every CDR went on to Homer
	sip := readJSONLines(t, filepath.Join(state, "collector", "sip.jsonl"))
	assert.Equal(t, int64(len(sip)+len(cdrs)), f.HEPToHomer)
	checkMedia(t, f, sip)
	// every call one trace in the span file, its root saying how it ended
	results := map[string]int64{}
	for _, r := range callRoots(t, filepath.Join(state, "collector", "traces.jsonl")) {
		results[r]++
	}
	t.Logf("call traces by result: %v", results)
	assert.Equal(t, map[string]int64{"answered": f.Answered, "busy": f.Busy, "cancelled": f.Cancelled, "failed": f.Failed + f.NotFound}, results)
}

// checkMedia checks the media figures of the demo's final status: with
// rtpengine installed, RTCP reports of both the clean calls (G.711's MOS)
// and the impaired ones (DemoImpairment: lower), counted as the records
// file has them; without, none.
func checkMedia(t *testing.T, f Status, sip []map[string]any) {
	t.Helper()
	if _, err := exec.LookPath(rtpengine.DaemonBinary); err != nil {
		assert.False(t, f.Media.On, "no rtpengine: no media")
		assert.Zero(t, f.Media.Reports)
		return
	}
	require.True(t, f.Media.On, "rtpengine in the media path")
	// the records file's reports with a MOS, read whole, against what the
	// status read of it bit by bit while it grew
	var reports int64
	for _, m := range sip {
		if m["event"] != "hep.rtcp" {
			continue
		}
		if a, ok := m["attributes"].(map[string]any); ok {
			if _, ok := a[record.AttrMediaMOS].(float64); ok {
				reports++
			}
		}
	}
	require.Positive(t, reports, "rtpengine's RTCP reached the collector with MOS figures")
	assert.Equal(t, reports, f.Media.Reports, "the status counted every report")
	assert.Zero(t, f.Media.Unreadable)
	var classes int64
	for _, n := range f.Media.Classes {
		classes += n
	}
	assert.Equal(t, f.Media.Reports, classes, "every report has its class")
	// the clean calls: G.711 unimpaired (what a few ms of scheduling
	// jitter on a loaded machine costs: 0.03); the impaired ones: 5 %
	// random loss is already below good
	clean := mediaq.Stream{Codec: mediaq.DefaultCodec, Given: mediaq.FigLossRatio | mediaq.FigJitter}
	clean.Estimate()
	assert.InDelta(t, clean.MOS, f.Media.MOSMax, 0.03, "the best report: a clean call's")
	assert.Less(t, f.Media.MOSMin, mediaq.MOSGood, "the worst report: an impaired call's")
	assert.Positive(t, f.Media.Classes[mediaq.ClassGood.String()], "clean calls")
	assert.Positive(t, f.Media.Reports-f.Media.Classes[mediaq.ClassGood.String()], "impaired calls")
}

// checkSampleCall: once an answered call's trace is in the span file, the
// demo names it and the commands it prints draw its ladder, from the file
// and from Jaeger.
func checkSampleCall(t *testing.T, d *Demo) {
	t.Helper()
	ladder := testenv.GoBuild(t, "./cmd/sipladder")
	var s Sample
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var err error
		s, err = d.SampleCall(ladder)
		assert.NoError(c, err)
	}, 30*time.Second, 200*time.Millisecond, "an answered call in the span file")
	t.Logf("sample call %s, trace %s:\n  %s\n  %s", s.CallID, s.TraceID, s.FileCommand, s.JaegerCommand)
	require.NotEmpty(t, s.JaegerCommand, "Jaeger runs: its command is printed")
	for _, cmd := range []string{s.FileCommand, s.JaegerCommand} {
		out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
		require.NoError(t, err, "%s:\n%s", cmd, out)
		assert.Contains(t, string(out), "Call-ID    "+s.CallID, cmd)
		assert.Contains(t, string(out), "trace      "+s.TraceID, cmd)
		assert.Contains(t, string(out), "outcome    answered (200 OK)", cmd)
		assert.Contains(t, string(out), "── INVITE ─", cmd)
		assert.Contains(t, string(out), "── BYE ─", cmd)
	}
}

// callRoots returns the sip.call.result of every call's root span in a
// span file, each root once.
func callRoots(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var un ptrace.JSONUnmarshaler
	out := map[string]string{} // root span id -> result
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		td, err := un.UnmarshalTraces(line)
		require.NoError(t, err)
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					if sp.Name() == "SIP call" {
						res, _ := sp.Attributes().Get("sip.call.result")
						out[sp.SpanID().String()] = res.AsString()
					}
				}
			}
		}
	}
	return out
}

func readJSONLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	fh, err := os.Open(path)
	require.NoError(t, err)
	defer fh.Close()
	var out []map[string]any
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		out = append(out, m)
	}
	require.NoError(t, sc.Err())
	return out
}
