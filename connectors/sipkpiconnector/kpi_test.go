package sipkpiconnector

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// The KPI formulas below are the recording rules of alerts/siphon-kpi.rules.yml
// written over the connector's own data points (sum over the 5m window
// becomes the sum over the whole recorded set).
const (
	nerResults  = "answered|busy|no_answer|rejected|cancelled" // ITU-T E.411: answer, user busy, ring no answer, terminal rejection; abandoned
	seerCodes   = "2..|480|486|600|603"                        // RFC 6076 4.7
	isaCodes    = "408|500|503|504"                            // RFC 6076 4.8
	completedBy = "caller|callee"                              // RFC 6076 4.9: ended by BYE, not by a timer or an error
)

func TestKPIsFromRecordedFlows(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	none := "none"
	cfg.Dimensions = append(cfg.Dimensions, Dimension{Name: "trunk", Attributes: []string{"cdr.extra.trunk"}, Default: &none})
	h := startConnector(t, cfg, new(consumertest.MetricsSink))
	base := time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)
	msgs, cdrs := recordedCalls(t, base)
	require.NoError(t, h.c.ConsumeLogs(context.Background(), msgs))
	require.NoError(t, h.c.ConsumeLogs(context.Background(), cdrs))
	m := readMetrics(h.c.collect())

	const calls = "sip.calls"
	total := m.sum(t, calls)
	require.Equal(t, 11.0, total)
	notRedirected := total - m.sum(t, calls, labelStatusCode, "3..")

	// Hand-computed over the eleven calls of recordedCalls:
	// answered 1, 2, 8; busy 3; no answer 4; cancelled 5; 503 6; 302 7;
	// 408 9; 603 10; 404 11. Call 8 ended by a session timer.
	kpis := []struct {
		name      string
		got, want float64
	}{
		{"ASR", m.sum(t, calls, labelResult, "answered") / total, 3.0 / 11},
		{"NER", m.sum(t, calls, labelResult, nerResults) / total, 7.0 / 11},
		{"SER", m.sum(t, calls, labelStatusCode, "2..") / notRedirected, 3.0 / 10},
		{"SEER", m.sum(t, calls, labelStatusCode, seerCodes) / notRedirected, 6.0 / 10},
		{"ISA", m.sum(t, calls, labelStatusCode, isaCodes) / total, 2.0 / 11},
		{"SCR", m.sum(t, calls, labelResult, "answered", labelInitiator, completedBy) / total, 2.0 / 11},
	}
	for _, k := range kpis {
		assert.InDelta(t, k.want, k.got, 1e-12, k.name)
	}

	// ACD: (60 + 120 + 30) / 3.
	n, sum, buckets := m.hist(t, "sip.call.duration")
	assert.Equal(t, uint64(3), n)
	assert.InDelta(t, 70.0, sum/float64(n), 1e-9, "ACD")
	// bounds 5 10 30 60 120 ...: upper bounds are inclusive, so 30, 60 and
	// 120 each sit in their own bucket.
	assert.Equal(t, []uint64{0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0}, buckets)

	// PDD from the SIP messages: INVITE to the first 18x or final, the
	// first fork's 180 only, retransmissions and re-INVITEs ignored.
	pdd := []float64{1.2, 0.8, 0.5, 0.3, 2, 0.1, 0.2, 1.5, 32.001, 1, 0.05}
	n, sum, buckets = m.hist(t, "sip.call.post_dial_delay")
	assert.Equal(t, uint64(len(pdd)), n)
	want := 0.0
	for _, v := range pdd {
		want += v
	}
	assert.InDelta(t, want/float64(len(pdd)), sum/float64(n), 1e-9, "mean PDD")
	// bounds 0.1 0.25 0.5 1 2 3 5 8 13 20 30 60
	assert.Equal(t, []uint64{2, 1, 2, 2, 3, 0, 0, 0, 0, 0, 0, 1, 0}, buckets)

	// Setup time from the CDRs: start to answer, or to the final response.
	n, sum, _ = m.hist(t, "sip.call.setup.duration", labelResult, "answered")
	assert.Equal(t, uint64(3), n)
	assert.InDelta(t, 12.0, sum, 1e-9)
	n, sum, _ = m.hist(t, "sip.call.setup.duration", labelResult, "busy|no_answer|cancelled|failed|redirected|rejected")
	assert.Equal(t, uint64(8), n)
	assert.InDelta(t, 2.001+0.301+10.051+0.101+0.201+32.001+4.001+0.051, sum, 1e-9)

	// Dimensions: node from the resource, trunk from the CDR's extra field
	// (and the default on SIP messages, which have none).
	assert.Equal(t, 7.0, m.sum(t, calls, "trunk", "carrier-a", "node", "sbc-1"))
	assert.Equal(t, 4.0, m.sum(t, calls, "trunk", "carrier-b"))
	assert.Equal(t, 24.0, m.sum(t, "sip.requests", "trunk", "none", labelMethod, "INVITE"))

	// Per-transaction message counts (two hops per call, see recordedCalls).
	counts := []struct {
		metric   string
		matchers []string
		want     float64
	}{
		{"sip.requests", []string{labelMethod, "INVITE"}, 24}, // 11 calls x 2 hops + one re-INVITE x 2
		{"sip.requests", []string{labelMethod, "ACK"}, 24},
		{"sip.requests", []string{labelMethod, "BYE"}, 6},
		{"sip.requests", []string{labelMethod, "CANCEL"}, 3},
		{"sip.retransmissions", []string{labelMessageType, "request", labelMethod, "INVITE"}, 1},
		{"sip.retransmissions", []string{labelMessageType, "response", labelMethod, "INVITE"}, 2},
		{"sip.responses", []string{labelMethod, "INVITE", labelStatusCode, "100"}, 12},
		{"sip.responses", []string{labelMethod, "INVITE", labelStatusCode, "180"}, 12}, // both forks of call 2 on both hops
		{"sip.responses", []string{labelMethod, "INVITE", labelStatusCode, "183"}, 2},
		{"sip.responses", []string{labelMethod, "INVITE", labelStatusCode, "200"}, 8},
		{"sip.transactions", []string{labelMethod, "INVITE", labelStatusCode, "200"}, 8},
		{"sip.transactions", []string{labelMethod, "INVITE", labelStatusCode, "487"}, 3},
		{"sip.transactions", []string{labelMethod, "INVITE", labelStatusCode, "408"}, 1},
		{"sip.transactions", []string{labelMethod, "INVITE", labelStatusCode, "486"}, 2},
		{"sip.transactions", []string{labelMethod, "CANCEL", labelStatusCode, "200"}, 3},
		{"sip.transactions", []string{labelMethod, "BYE", labelStatusCode, "200"}, 6},
		{"sip.transactions", []string{labelStatusCode, "none"}, 0},
		{"sip.scanner.detections", nil, 0}, // the series exist, at 0
	}
	for _, c := range counts {
		assert.Equal(t, c.want, m.sum(t, c.metric, c.matchers...), "%s%v", c.metric, c.matchers)
	}
	assert.Len(t, m["sip.scanner.detections"], 2, "user_agent and flood, at 0")
	// Every INVITE transaction (22 initial + 2 re-INVITE) ends once.
	assert.Equal(t, 24.0, m.sum(t, "sip.transactions", labelMethod, "INVITE"))
}
