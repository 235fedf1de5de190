//go:build integration

package interop

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/jaeger"
	"github.com/siphon-otel/siphon-otel/internal/testenv/kamailio"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// TestKamailioCallTraces: sipp calls through a Kamailio stateful proxy
// whose siptrace sends HEP3 of every message to otelcol-siphon (its default
// config, traces to Jaeger): each call is one trace in Jaeger, the root and
// a span per transaction and hop under it, SERVER where Kamailio received
// the request and CLIENT where it relayed it (its address learned from
// what it relays), every message an event of its span, within the root.
func TestKamailioCallTraces(t *testing.T) {
	j := jaeger.Start(t)
	overlay, env := j.Collector(t)
	hepPort, kamPort, uasPort, uacPort := ports.Port(t), ports.Port(t), ports.Port(t), ports.Port(t)
	health, telemetry := ports.Addr(t), strconv.Itoa(ports.Port(t))
	for k, v := range map[string]string{
		"SIPHON_HEP_ENDPOINT": fmt.Sprintf("127.0.0.1:%d", hepPort), "SIPHON_CDR_HTTP_ENDPOINT": ports.Addr(t),
		"SIPHON_CDR_SYSLOG_ENDPOINT": ports.Addr(t), "SIPHON_HEALTH_ENDPOINT": health, "SIPHON_TELEMETRY_PORT": telemetry,
		"SIPHON_STATE_DIR": t.TempDir(), "SIPHON_KPI_ENDPOINT": ports.Addr(t), "SIPHON_HOMER_ENDPOINT": ports.Addr(t),
	} {
		env[k] = v
	}
	collector.Start(t, collector.Options{Config: "siphon:config.yaml", Overlays: []string{overlay}, Env: env,
		HealthAddr: health, TelemetryPort: telemetry})
	kamailio.Start(t, "testdata/kamailio-siptrace.cfg", kamPort, map[string]any{
		"HEPPort": hepPort, "NextHopPort": uasPort, "CaptureID": 2001,
	})
	uas := testenv.Start(t, childproc.Spec{Path: "sipp", Args: []string{"-sn", "uas", "-i", "127.0.0.1", "-p", strconv.Itoa(uasPort), "-nostdin"}})
	testenv.WaitReady(t, uas, 20*time.Second, childproc.UDPBound(uasPort))
	const calls = 3
	uac := testenv.Start(t, childproc.Spec{Path: "sipp", Args: []string{"-sn", "uac", "-i", "127.0.0.1", "-p", strconv.Itoa(uacPort),
		fmt.Sprintf("127.0.0.1:%d", kamPort), "-m", strconv.Itoa(calls), "-r", "10", "-d", "200",
		"-timeout", "30s", "-nostdin"}})
	err := uac.Wait(time.Minute)
	require.True(t, uac.Exited(), "sipp uac: %v", err)
	require.NoError(t, err, "sipp uac: every call must succeed through Kamailio\n%s", uac.Log())

	kam, uacEnd, uasEnd := fmt.Sprint(kamPort), fmt.Sprint(uacPort), fmt.Sprint(uasPort)
	for i := 1; i <= calls; i++ {
		callID := fmt.Sprintf("%d-%d@127.0.0.1", i, uac.Pid())
		var tr jaeger.Trace
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			var err error
			tr, err = j.Trace(calltrace.TraceID(callID).String())
			if assert.NoError(c, err, callID) {
				assert.Len(c, tr.Find("SIP call"), 1, "the root of %s", callID)
			}
		}, 60*time.Second, 200*time.Millisecond)
		if i == 1 {
			t.Logf("a call through Kamailio:\n%s", tr.Tree())
		}
		root := tr.Find("SIP call")[0]
		assert.Equal(t, calltrace.RootSpanID(callID).String(), root.SpanID)
		assert.Equal(t, "answered", root.Tags["sip.call.result"])
		assert.Equal(t, int64(200), root.Tags["sip.response.status_code"])
		assert.Equal(t, "caller", root.Tags["sip.call.disconnect_initiator"])
		assert.InDelta(t, 0.2, root.Tags["sip.call.duration"], 0.15, "sipp held the call 200 ms")
		assert.Equal(t, "2001", root.Resource["service.instance.id"], "the capturing node: Kamailio's capture id")
		var got []string
		for _, s := range tr.Spans {
			if s.ParentID == "" {
				continue
			}
			src, dst := fmt.Sprint(s.Tags["source.port"]), fmt.Sprint(s.Tags["destination.port"])
			hop := map[string]string{uacEnd + ">" + kam: "uac>kamailio", kam + ">" + uasEnd: "kamailio>uas"}[src+">"+dst]
			got = append(got, fmt.Sprintf("%s %s %s", s.Name, s.Kind, hop))
			assert.Equal(t, root.SpanID, s.ParentID, "%s under the root", s.Name)
			assert.False(t, s.Start.Before(root.Start) || s.End().After(root.End()), "%s within the root", s.Name)
			var events []string
			for k, l := range s.Logs {
				events = append(events, fmt.Sprint(l.Fields["event"]))
				if k > 0 {
					assert.False(t, l.At.Before(s.Logs[k-1].At), "%s: events in capture order", s.Name)
				}
				assert.False(t, l.At.Before(s.Start) || l.At.After(s.End()), "%s: event %s within the span", s.Name, events[k])
			}
			switch s.Name {
			case "INVITE":
				assert.Subset(t, events, []string{"INVITE", "180", "200"}, "%s %s", s.Name, hop)
			case "BYE":
				assert.Equal(t, []string{"BYE", "200"}, events, "%s %s", s.Name, hop)
			}
		}
		slices.Sort(got)
		// Kamailio relays the ACK of the 2xx statelessly: siptrace mirrors
		// what it received, not that copy (TestKamailioSiptraceToHEPReceiver)
		assert.Equal(t, []string{"ACK server uac>kamailio", "BYE client kamailio>uas", "BYE server uac>kamailio",
			"INVITE client kamailio>uas", "INVITE server uac>kamailio"}, got, callID)
	}
}
