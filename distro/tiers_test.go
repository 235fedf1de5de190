//go:build integration

package distro_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// tier is one collector of the two-tier topology.
type tier struct {
	*collector.Process
	opts                  collector.Options
	otlp, kpi, httpA, hep string
}

// startGateway runs gateway.yaml writing CDRs to cdrTopic and SIP messages
// to sipTopic; more edit the options first (another overlay, more env).
func startGateway(t *testing.T, name, brokers, cdrTopic, sipTopic, state string, more ...func(*collector.Options)) *tier {
	t.Helper()
	g := &tier{otlp: ports.Addr(t), kpi: ports.Addr(t)}
	health, telemetry := ports.Addr(t), port(ports.Addr(t))
	overlay, err := filepath.Abs("testdata/tiers-gateway.yaml")
	require.NoError(t, err)
	g.opts = collector.Options{Config: "siphon:gateway.yaml", Overlays: []string{overlay}, HealthAddr: health,
		TelemetryPort: telemetry, Dir: state, Env: map[string]string{
			"SIPHON_OTLP_ENDPOINT": g.otlp, "SIPHON_KAFKA_BROKERS": brokers, "SIPHON_KAFKA_TOPIC_CDR": cdrTopic,
			"SIPHON_KAFKA_TOPIC_SIP": sipTopic,
			"SIPHON_KPI_ENDPOINT":    g.kpi, "SIPHON_KPI_FLUSH_INTERVAL": "1s", "SIPHON_HEALTH_ENDPOINT": health,
			"SIPHON_TELEMETRY_PORT": telemetry, "SIPHON_STATE_DIR": state, "GATEWAY_NAME": name,
		}}
	for _, m := range more {
		m(&g.opts)
	}
	g.Process = collector.Start(t, g.opts)
	return g
}

func startAgent(t *testing.T, gateways ...*tier) *tier {
	t.Helper()
	a := &tier{httpA: ports.Addr(t), hep: ports.Addr(t)}
	var eps []string
	for _, g := range gateways {
		eps = append(eps, strconv.Quote(g.otlp))
	}
	health, telemetry, state := ports.Addr(t), port(ports.Addr(t)), t.TempDir()
	a.opts = collector.Options{Config: "siphon:agent.yaml", HealthAddr: health, TelemetryPort: telemetry, Dir: state,
		Env: map[string]string{
			"SIPHON_GATEWAYS": "[" + strings.Join(eps, ",") + "]", "SIPHON_HEP_ENDPOINT": a.hep,
			"SIPHON_CDR_HTTP_ENDPOINT": a.httpA, "SIPHON_CDR_SYSLOG_ENDPOINT": ports.Addr(t),
			"SIPHON_HEALTH_ENDPOINT": health, "SIPHON_TELEMETRY_PORT": telemetry, "SIPHON_STATE_DIR": state,
		}}
	a.Process = collector.Start(t, a.opts)
	return a
}

// kpis scrapes a gateway's KPI endpoint.
func (g *tier) kpis() (exposition.Families, error) {
	return exposition.Scrape(context.Background(), "http://"+g.kpi+"/metrics")
}

// legCDR is the fixture for call id with a trunk naming its leg, answered
// or busy: two legs of one call are two distinct records with one Call-ID.
func legCDR(id, leg string, answered bool) []byte {
	b := cdrWithID(id)
	if !answered {
		b = busyCDR(id)
	}
	return bytes.Replace(b, []byte(`"trunk":"carrier-a"`), []byte(`"trunk":"`+leg+`"`), 1)
}

// TestTwoTiers: two agents (agent.yaml) route every record by Call-ID to two
// gateways (gateway.yaml) that compute the call KPIs and write to Kafka
// (kfake). Both legs of a call, posted to different agents, go through one
// gateway; the KPI totals across the gateways equal those of one gateway fed
// everything; a gateway killed and restarted mid-run loses no CDR.
func TestTwoTiers(t *testing.T) {
	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "siphon-cdr", "siphon-sip", "ref-cdr"))
	require.NoError(t, err)
	defer k.Close()
	brokers := k.ListenAddrs()[0]
	gws := []*tier{startGateway(t, "gw-0", brokers, "siphon-cdr", "siphon-sip", t.TempDir()),
		startGateway(t, "gw-1", brokers, "siphon-cdr", "siphon-sip", t.TempDir())}
	agents := []*tier{startAgent(t, gws...), startAgent(t, gws...)}
	ref := startGateway(t, "ref", brokers, "ref-cdr", "siphon-sip", t.TempDir())
	refAgent := startAgent(t, ref)

	// phase 1: 120 calls, 90 answered; leg a through agent 0, leg b through agent 1
	const calls, answered = 120, 90
	for i := range calls {
		id := fmt.Sprintf("tier-%03d@192.0.2.1", i)
		for leg, a := range []*tier{agents[0], agents[1]} {
			body := legCDR(id, []string{"leg-a", "leg-b"}[leg], i < answered)
			for _, addr := range []string{a.httpA, refAgent.httpA} {
				code, err := siphonPOST(addr, body)
				require.NoError(t, err)
				require.Equal(t, 200, code)
			}
		}
	}
	recs := consumeTopic(t, brokers, "siphon-cdr", 2*calls)
	gatewayOf := map[string]string{}
	perGateway := map[string]int{}
	for _, r := range recs {
		var m map[string]any
		require.NoError(t, json.Unmarshal(r.Value, &m))
		id, gw := m["call_id"].(string), m["gateway"].(string)
		if prev, ok := gatewayOf[id]; ok {
			assert.Equal(t, prev, gw, "both legs of %s through one gateway", id)
		}
		gatewayOf[id] = gw
		perGateway[gw]++
	}
	assert.Len(t, gatewayOf, calls)
	assert.Positive(t, perGateway["gw-0"], "calls spread over both gateways: %v", perGateway)
	assert.Positive(t, perGateway["gw-1"], "calls spread over both gateways: %v", perGateway)
	t.Logf("records per gateway: %v", perGateway)

	// KPI totals: the sum over the two gateways equals the single gateway's
	for _, result := range []string{"answered", "busy"} {
		calls := exposition.Labels{"sip_call_result": result}
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			var per [3]float64
			for i, g := range []*tier{ref, gws[0], gws[1]} {
				m, err := g.kpis()
				if !assert.NoError(c, err) {
					return
				}
				// a gateway may have had no call of this result: no series
				per[i], _ = m.Sum("sip_calls_total", calls)
			}
			assert.Positive(c, per[0], "%s calls on the reference gateway", result)
			assert.Equal(c, per[0], per[1]+per[2], "%s calls over the gateways = on the reference", result)
		}, 30*time.Second, 200*time.Millisecond)
	}
	m, err := ref.kpis()
	require.NoError(t, err)
	answeredCalls, err := m.Value("sip_calls_total", exposition.Labels{"sip_call_result": "answered"})
	require.NoError(t, err)
	assert.Equal(t, float64(2*answered), answeredCalls)

	// phase 2: gw-1 is killed after a third of 150 calls and restarted on its
	// state after two thirds; every CDR reaches Kafka
	const more = 150
	for i := range more {
		if i == more/3 {
			gws[1].Kill()
		}
		if i == 2*more/3 {
			gws[1].Process = collector.Start(t, gws[1].opts)
		}
		id := fmt.Sprintf("kill-%03d@192.0.2.1", i)
		code, err := siphonPOST(agents[i%2].httpA, legCDR(id, "leg-a", true))
		require.NoError(t, err)
		require.Equal(t, 200, code, "the agent takes CDRs while a gateway is down")
	}
	unique := map[string]int{}
	deadline := time.Now().Add(90 * time.Second)
	for len(unique) < more && time.Now().Before(deadline) {
		unique = map[string]int{}
		for _, r := range consumeTopic(t, brokers, "siphon-cdr", 0) {
			if s := string(r.Key); strings.HasPrefix(s, "kill-") {
				unique[s]++
			}
		}
	}
	assert.Len(t, unique, more, "every CDR sent while a gateway was down arrived")
	dups := 0
	for _, n := range unique {
		dups += n - 1
	}
	t.Logf("phase 2: %d unique CDRs, %d delivered twice (at least once)", len(unique), dups)
}

// consumeTopic reads topic from the start: until n records came (n > 0,
// failing after 90 s), or until a poll of 2 s brings nothing (n == 0).
func consumeTopic(t *testing.T, brokers, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(90 * time.Second)
	for n == 0 || len(out) < n {
		require.True(t, time.Now().Before(deadline), "%d of %d records in %s", len(out), n, topic)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		if n == 0 && fs.NumRecords() == 0 {
			break
		}
		out = append(out, fs.Records()...)
	}
	return out
}
