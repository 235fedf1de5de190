//go:build integration

package distro_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/hep"
)

// b2buaMessage is a SIP message of one leg of a B2BUA call (every address
// it names is on loopback): a request when first is a method, else a
// response with that status to method; extra are further header lines.
func b2buaMessage(first, method, callID, toTag string, extra ...string) []byte {
	start := first + " sip:bob@127.0.0.1:5080 SIP/2.0"
	if first[0] >= '1' && first[0] <= '6' {
		start = "SIP/2.0 " + first + " Whatever"
	}
	to := "To: <sip:bob@127.0.0.1:5080>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	cseq := "1 " + method
	if method == "BYE" {
		cseq = "2 BYE"
	}
	lines := append([]string{start, "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-" + callID + "-" + cseq[:1],
		"From: <sip:alice@127.0.0.1>;tag=from-" + callID, to, "Call-ID: " + callID, "CSeq: " + cseq,
		"Max-Forwards: 70"}, extra...)
	return []byte(strings.Join(lines, "\r\n") + "\r\nContent-Length: 0\r\n\r\n")
}

// sendHEP sends SIP messages to a HEP endpoint over UDP, one HEP3 packet
// each, captured between two loopback addresses.
func sendHEP(t *testing.T, addr string, msgs ...[]byte) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	require.NoError(t, err)
	defer conn.Close()
	for _, m := range msgs {
		p := hep.Packet{Version: 3, ProtoType: hep.TypeSIP, Family: hep.FamilyIPv4, Protocol: 17,
			SrcIP: netip.MustParseAddr("127.0.0.1"), DstIP: netip.MustParseAddr("127.0.0.2"), SrcPort: 5060, DstPort: 5080,
			CaptureID: 7, Payload: m,
			Fields: hep.HasProtoType | hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort | hep.HasDstPort | hep.HasCaptureID}
		p.SetTime(time.Now())
		raw, err := p.AppendV3(nil)
		require.NoError(t, err)
		_, err = conn.Write(raw)
		require.NoError(t, err)
	}
}

// TestTiersB2BUA: B2BUA calls whose a-leg (Call-ID a-N) is captured by one
// agent and whose b-leg (Call-ID b-N, its INVITE naming a-N in X-CID) by
// another (agent.yaml, in front of two gateway.yaml with Kafka). The agents'
// sip_correlation keys every record of the b-leg, its later messages and
// its CDR included, by the a-leg's Call-ID, and the load balancer routes by
// that key: every SIP message and both CDRs of a call come out of one
// gateway, the CDRs keyed a-N. (Routed by Call-ID, the two legs of a call
// would meet on one gateway for about half the calls.)
func TestTiersB2BUA(t *testing.T) {
	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "siphon-cdr", "sip-gw-0", "sip-gw-1"))
	require.NoError(t, err)
	defer k.Close()
	brokers := k.ListenAddrs()[0]
	gws := []*tier{startGateway(t, "gw-0", brokers, "siphon-cdr", "sip-gw-0", t.TempDir()),
		startGateway(t, "gw-1", brokers, "siphon-cdr", "sip-gw-1", t.TempDir())}
	agentA, agentB := startAgent(t, gws...), startAgent(t, gws...)

	const calls = 16
	aLeg := func(i int) string { return fmt.Sprintf("a-%02d@127.0.0.1", i) }
	bLeg := func(i int) string { return fmt.Sprintf("b-%02d@127.0.0.1", i) }

	// the INVITEs first: a b-leg's later messages and CDR take the key its
	// INVITE established, so the agent must have seen the INVITE
	var invitesA, invitesB [][]byte
	for i := range calls {
		invitesA = append(invitesA, b2buaMessage("INVITE", "INVITE", aLeg(i), ""))
		invitesB = append(invitesB, b2buaMessage("INVITE", "INVITE", bLeg(i), "", "X-CID: "+aLeg(i)))
	}
	sendHEP(t, agentA.hep, invitesA...)
	sendHEP(t, agentB.hep, invitesB...)
	agentB.WaitMetric(30*time.Second, calls, "otelcol_sip_correlation_records", exposition.Labels{"source": "header"})
	agentA.WaitMetric(30*time.Second, calls, "otelcol_sip_correlation_records", exposition.Labels{"source": "call_id"})

	// the rest of each leg, with no header naming the a-leg, then the CDRs
	for i := range calls {
		for _, leg := range []struct {
			agent  *tier
			callID string
		}{{agentA, aLeg(i)}, {agentB, bLeg(i)}} {
			sendHEP(t, leg.agent.hep,
				b2buaMessage("180", "INVITE", leg.callID, "to-1"),
				b2buaMessage("200", "INVITE", leg.callID, "to-1"),
				b2buaMessage("ACK", "ACK", leg.callID, "to-1"),
				b2buaMessage("BYE", "BYE", leg.callID, "to-1"),
				b2buaMessage("200", "BYE", leg.callID, "to-1"))
		}
	}
	agentB.WaitMetric(30*time.Second, 5*calls, "otelcol_sip_correlation_records", exposition.Labels{"source": "table"})
	for i := range calls {
		for _, leg := range []struct {
			agent  *tier
			callID string
		}{{agentA, aLeg(i)}, {agentB, bLeg(i)}} {
			code, err := siphonPOST(leg.agent.httpA, legCDR(leg.callID, "leg", true))
			require.NoError(t, err)
			require.Equal(t, 200, code)
		}
	}

	// every SIP message of a call in one gateway's topic
	const perLeg = 6
	gatewayOf := map[string]string{} // Call-ID -> gateway
	messages := 0
	deadline := time.Now().Add(90 * time.Second)
	for messages < 2*calls*perLeg && time.Now().Before(deadline) {
		gatewayOf, messages = map[string]string{}, 0
		for _, gw := range []string{"gw-0", "gw-1"} {
			for _, r := range consumeTopic(t, brokers, "sip-"+gw, 0) {
				id := string(r.Key)
				if prev, ok := gatewayOf[id]; ok && prev != gw {
					t.Errorf("the SIP messages of %s came out of %s and %s", id, prev, gw)
				}
				gatewayOf[id] = gw
				messages++
			}
		}
	}
	require.Equal(t, 2*calls*perLeg, messages, "SIP messages in Kafka")
	perGateway := map[string]int{}
	for i := range calls {
		assert.Equal(t, gatewayOf[aLeg(i)], gatewayOf[bLeg(i)], "both legs of call %d through one gateway", i)
		perGateway[gatewayOf[aLeg(i)]]++
	}
	assert.Positive(t, perGateway["gw-0"], "calls over both gateways: %v", perGateway)
	assert.Positive(t, perGateway["gw-1"], "calls over both gateways: %v", perGateway)
	t.Logf("calls per gateway: %v", perGateway)

	// both CDRs of a call through its SIP messages' gateway, keyed by the a-leg
	for _, r := range consumeTopic(t, brokers, "siphon-cdr", 2*calls) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(r.Value, &m))
		id, _ := m["call_id"].(string)
		a := "a-" + strings.TrimPrefix(strings.TrimPrefix(id, "a-"), "b-")
		assert.Equal(t, a, m["correlation_id"], "the CDR of %s", id)
		assert.Equal(t, gatewayOf[id], m["gateway"], "the CDR of %s through its messages' gateway", id)
	}
	for i, gw := range gws {
		got, err := gw.Value("otelcol_sip_correlation_records", exposition.Labels{"source": "upstream"})
		require.NoError(t, err)
		assert.Equal(t, float64(perGateway[gw.opts.Env["GATEWAY_NAME"]]*2*(perLeg+1)), got,
			"gateway %d keeps the agents' keys on every record", i)
	}
}
