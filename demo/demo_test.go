//go:build integration

package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/demo/callgen"
	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipproxy"
)

// TestDemo runs the whole demo (real otelcol-siphon on its default config,
// real sipproxy, the call generator, the Homer stand-in) for a few seconds,
// stops it as Ctrl-C does, and checks that every call is accounted for
// everywhere: one CDR each, in the KPIs, every SIP message and CDR relayed
// to Homer, nothing dropped, clean exits.
func TestDemo(t *testing.T) {
	state := t.TempDir()
	at := Ports{ProxySIP: ports.Port(t), ProxyMetrics: ports.Port(t), ProxyAdmin: ports.Port(t), HEP: ports.Port(t),
		CDRHTTP: ports.Port(t), CDRSyslog: ports.Port(t), Health: ports.Port(t), Telemetry: ports.Port(t), KPI: ports.Port(t), Homer: ports.Port(t)}
	mix := map[callgen.Outcome]int{}
	for o := range callgen.DefaultMix {
		mix[o] = 1 // every outcome about equally often: all of them show up
	}
	d, err := Start(context.Background(), Options{Collector: collector.Binary(t), Proxy: sipproxy.Binary(t), StateDir: state,
		Ports: at, Rate: 20, Hold: time.Second, Ring: 600 * time.Millisecond, Mix: mix})
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
