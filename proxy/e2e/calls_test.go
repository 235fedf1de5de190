//go:build integration

package e2e

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipp"
)

// flowKey identifies a SIP message on one leg of a proxied call, as both
// sipp and the proxy's HEP see it: which leg, whether it went into the
// proxy, the method or status code, and the CSeq.
type flowKey struct {
	Leg   string // "uac" (caller side) or "uas" (callee side)
	In    bool   // towards the proxy
	First string
	CSeq  string
}

func (k flowKey) String() string {
	dir := "out"
	if k.In {
		dir = "in"
	}
	return fmt.Sprintf("%s/%s %s [%s]", k.Leg, dir, k.First, k.CSeq)
}

func isResponse(first string) bool { _, err := strconv.Atoi(first); return err == nil }

// sippFlow is what sipp logged for callID, seen from the proxy.
func sippFlow(leg string, s *sipp.Sipp, callID string) []flowKey {
	var out []flowKey
	for _, m := range s.Messages() {
		if m.CallID == callID {
			out = append(out, flowKey{Leg: leg, In: m.Sent, First: m.First, CSeq: m.CSeq})
		}
	}
	return out
}

// hepFlow is what the proxy traced for callID.
func hepFlow(msgs []hepMsg, proxyPort, uasPort int) []flowKey {
	var out []flowKey
	for _, m := range msgs {
		k := flowKey{First: m.First, CSeq: m.CSeq}
		if uasPort != 0 && (m.SrcPort == int64(uasPort) || m.DstPort == int64(uasPort)) {
			k.Leg, k.In = "uas", m.SrcPort == int64(uasPort)
		} else {
			k.Leg, k.In = "uac", m.DstPort == int64(proxyPort)
		}
		out = append(out, k)
	}
	return out
}

func sortedKeys(ks []flowKey) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.String()
	}
	sort.Strings(out)
	return out
}

// failScenario writes uac-fail.xml expecting code.
func failScenario(t *testing.T, code int) string { return sipp.Expect(t, "uac-fail", code) }

func captureID(agent string) int64 {
	h := fnv.New32a()
	h.Write([]byte(agent))
	return int64(h.Sum32())
}

// cdrKeys are the keys of an INVITE CDR, exactly (docs/siphon-formats.md#cdrs).
var cdrKeys = []string{"timestamp", "call_id", "from_uri", "to_uri", "ruri", "method", "response_code",
	"timestamp_start", "timestamp_answer", "timestamp_end", "duration_secs", "source_ip", "destination_ip",
	"transport", "user_agent", "auth_user", "disconnect_initiator", "sip_reason"}

type callCase struct {
	name       string
	uas        string // callee scenario; "" when nobody answers
	uac        string // caller scenario, or "" for uac-fail expecting code
	code       int
	initiator  string
	answered   bool
	register   bool // register the callee at the UAS
	unregister bool // then remove the binding again (480)
}

var callCases = []callCase{
	{name: "answered", uas: "uas-answer", uac: "uac-call", code: 200, initiator: "caller", answered: true, register: true},
	{name: "busy", uas: "uas-busy", code: 486, initiator: "callee", register: true},
	{name: "cancel", uas: "uas-ring", uac: "uac-cancel", code: 487, initiator: "caller", register: true},
	{name: "timeout", uas: "uas-ring", code: 408, initiator: "timeout", register: true},
	{name: "not-found", code: 404, initiator: "error"},
	{name: "unavailable", code: 480, initiator: "error", register: true, unregister: true},
}

// TestCalls runs each call case through the proxy over UDP and over TCP
// and checks the SIP flow (sipp's verdict), the CDR, the metric deltas and
// that HEP carried every SIP message sipp saw, on both legs.
func TestCalls(t *testing.T) {
	for _, tr := range []struct{ sipp, name string }{{"u1", "udp"}, {"t1", "tcp"}} {
		t.Run(tr.name, func(t *testing.T) {
			hep := startHEP(t, tr.name) // HEP over the same transport as SIP
			p := startProxy(t, proxyOpts{HEPEndpoint: hep.Endpoint, HEPTransport: tr.name})
			target := "127.0.0.1:" + strconv.Itoa(p.SIPPort)

			t.Run("register", func(t *testing.T) {
				before := p.scrape(t)
				reg := startSipp(t, "register", tr.sipp, ports.Port(t), target, "-m", "1",
					"-key", "user", "dave", "-key", "contact_port", "5999", "-key", "expires", "120")
				reg.Wait()
				cid := reg.CallID()
				rec := p.WaitCDR(cid, "REGISTER")
				assert.Equal(t, "registered", rec["reg_event"])
				assert.EqualValues(t, 200, rec["response_code"])
				assert.Equal(t, "sipp-register", rec["user_agent"])
				assert.Equal(t, tr.name, rec["transport"])
				after := p.scrape(t)
				assert.Equal(t, 1.0, delta(before, after, "siphon_requests_total", labels{"method": "REGISTER"}))
				assert.Equal(t, 1.0, delta(before, after, "siphon_registrations_active", nil))
				code, body := p.Admin("GET", "/admin/registrations/dave@127.0.0.1", "")
				assert.Equal(t, 200, code)
				assert.Contains(t, body, `"uri":"sip:dave@127.0.0.1:5999;transport=`)
				checkHEP(t, hep, p, cid, sippFlow("uac", reg, cid), 0, tr.name)
			})

			for _, c := range callCases {
				t.Run(c.name, func(t *testing.T) { runCall(t, p, hep, tr.sipp, tr.name, c) })
			}
			// nothing left behind once every call has ended
			for _, g := range []string{"siphon_dialogs_active", "siphon_proxy_dialog_sessions", "siphon_cdr_sessions", "siphon_uac_pending_requests"} {
				p.waitGauge(t, g, nil, 0)
			}
			m := p.scrape(t)
			assert.Zero(t, count(m, "siphon_hep_packets_dropped_total", nil), "no HEP packet dropped")
			assert.Zero(t, count(m, "siphon_cdr_dropped_total", nil), "no CDR dropped")
			assert.Zero(t, count(m, "siphon_malformed_messages_total", nil))
		})
	}
}

func runCall(t *testing.T, p *proxy, hep *hepSink, transport, tname string, c callCase) {
	target := "127.0.0.1:" + strconv.Itoa(p.SIPPort)
	callee := "callee-" + c.name
	var uas *sipp.Sipp
	uasPort := 0
	if c.uas != "" {
		uasPort = ports.Port(t)
		uas = startSipp(t, c.uas, transport, uasPort, "", "-m", "1")
	}
	port := uasPort
	if port == 0 {
		port = ports.Port(t)
	}
	if c.register {
		startSipp(t, "register", transport, ports.Port(t), target, "-m", "1",
			"-key", "user", callee, "-key", "contact_port", strconv.Itoa(port), "-key", "expires", "300").Wait()
	}
	if c.unregister {
		startSipp(t, "register", transport, ports.Port(t), target, "-m", "1",
			"-key", "user", callee, "-key", "contact_port", strconv.Itoa(port), "-key", "expires", "0").Wait()
		code, _ := p.Admin("GET", "/admin/registrations/"+callee+"@127.0.0.1", "")
		require.Equal(t, 404, code, "the binding is gone")
	}
	p.waitCDRsWritten(t) // REGISTER CDRs are in before the snapshot
	before := p.scrape(t)

	scenario := c.uac
	if scenario == "" {
		scenario = failScenario(t, c.code)
	}
	uac := startSipp(t, scenario, transport, ports.Port(t), target, "-m", "1", "-s", callee, "-d", "300")
	uac.Wait()
	if uas != nil {
		uas.Wait()
	}
	cid := uac.CallID()

	// the CDR
	rec := p.WaitCDR(cid, "INVITE")
	var keys []string
	for k := range rec {
		keys = append(keys, k)
	}
	assert.ElementsMatch(t, cdrKeys, keys)
	assert.EqualValues(t, c.code, rec["response_code"])
	assert.Equal(t, c.initiator, rec["disconnect_initiator"])
	assert.Equal(t, "sip:alice@127.0.0.1", rec["from_uri"])
	assert.Equal(t, "sip:"+callee+"@"+target, rec["to_uri"])
	assert.Equal(t, "sip:"+callee+"@"+target, rec["ruri"])
	assert.Equal(t, "127.0.0.1", rec["source_ip"])
	assert.Equal(t, tname, rec["transport"])
	assert.Equal(t, "sipp-uac", rec["user_agent"])
	assert.Nil(t, rec["auth_user"])
	require.NotNil(t, rec["timestamp_start"])
	require.NotNil(t, rec["timestamp_end"])
	start, err := time.Parse(time.RFC3339Nano, rec["timestamp_start"].(string))
	require.NoError(t, err)
	end, err := time.Parse(time.RFC3339Nano, rec["timestamp_end"].(string))
	require.NoError(t, err)
	assert.False(t, end.Before(start))
	if c.answered {
		require.NotNil(t, rec["timestamp_answer"])
		answer, err := time.Parse(time.RFC3339Nano, rec["timestamp_answer"].(string))
		require.NoError(t, err)
		d := rec["duration_secs"].(float64)
		assert.InDelta(t, end.Sub(answer).Seconds(), d, 0.002, "duration is answer to end")
		assert.GreaterOrEqual(t, d, 0.3, "sipp held the call for 300 ms")
	} else {
		assert.Nil(t, rec["timestamp_answer"])
		assert.Zero(t, rec["duration_secs"])
	}
	if c.name == "timeout" {
		assert.GreaterOrEqual(t, end.Sub(start), 2*time.Second, "invite_timeout is 2s")
	}

	// HEP: every message sipp saw on either leg, once
	want := sippFlow("uac", uac, cid)
	if uas != nil {
		want = append(want, sippFlow("uas", uas, cid)...)
	}
	checkHEP(t, hep, p, cid, want, uasPort, tname) // a multiset: one HEP packet per message

	// metrics: what the proxy received and sent, by sipp's account (and
	// the answer to checkHEP's marker)
	after := p.scrape(t)
	wantReq, wantRes := map[string]float64{}, map[string]float64{"200": markerResponses}
	for _, k := range want {
		if k.In && !isResponse(k.First) {
			wantReq[k.First]++
		}
		if !k.In && isResponse(k.First) {
			wantRes[k.First]++
		}
	}
	for _, m := range []string{"INVITE", "ACK", "BYE", "CANCEL"} {
		l := labels{"method": m}
		assert.Equal(t, wantReq[m], delta(before, after, "siphon_requests_total", l), exposition.Series("siphon_requests_total", l))
	}
	var wantResTotal float64
	for code, n := range wantRes {
		l := labels{"code": code}
		assert.Equal(t, n, delta(before, after, "siphon_responses_total", l), exposition.Series("siphon_responses_total", l))
		wantResTotal += n
	}
	assert.Equal(t, wantResTotal, delta(before, after, "siphon_responses_total", nil), "no other responses sent")
	assert.Equal(t, 1.0, delta(before, after, "siphon_cdr_written_total", nil))
	// one HEP packet per message: checkHEP matched the call's records with
	// sipp's messages; and the proxy counts as sent exactly what the sink
	// received (over UDP a packet counts once confirmed, a grace after its
	// write; late retransmissions land in both counts)
	waitHEPSettled(t, p, hep)
	assert.Equal(t, wantReq["INVITE"], delta(before, after, "siphon_request_duration_seconds_count", labels{"method": "INVITE"}))
	p.waitGauge(t, "siphon_dialogs_active", nil, 0)
	p.waitGauge(t, "siphon_cdr_sessions", nil, 0)
}

// waitHEPSettled waits until the proxy counts as sent exactly the HEP
// packets the sink received.
func waitHEPSettled(t *testing.T, p *proxy, hep *hepSink) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m, err := p.Metrics()
		if !assert.NoError(c, err) {
			return
		}
		sent, _ := m.Sum("siphon_hep_packets_sent_total", nil)
		assert.Equal(c, float64(len(hep.Messages())), sent, "HEP packets sent by the proxy, received by the sink")
	}, 10*time.Second, 50*time.Millisecond)
}

// checkHEP waits for the HEP records of callID (the proxy's marker behind
// them has arrived, so nothing the proxy traced for the call can still be
// on the way) and compares them with the messages sipp logged; it returns
// them.
func checkHEP(t *testing.T, hep *hepSink, p *proxy, callID string, want []flowKey, uasPort int, transport string) []hepMsg {
	t.Helper()
	hep.barrier(t, p)
	got := hep.forCall(callID)
	if !assert.Equal(t, sortedKeys(want), sortedKeys(hepFlow(got, p.SIPPort, uasPort)), "HEP vs sipp for %s", callID) {
		for _, m := range got {
			t.Logf("HEP %s:%d -> %s:%d %s\n%s", m.SrcAddress, m.SrcPort, m.DstAddrs, m.DstPort, m.First, m.Raw)
		}
	}
	for _, m := range got {
		assert.Equal(t, captureID("siphon-e2e"), m.CaptureID, "agent_id is FNV-1a hashed")
		assert.Equal(t, callID, m.CorrelationID, "correlation id is the Call-ID")
		assert.Equal(t, transport, m.Transport)
		assert.Equal(t, "127.0.0.1", m.SrcAddress)
		assert.Equal(t, "127.0.0.1", m.DstAddrs)
		assert.True(t, strings.HasPrefix(m.Raw, "SIP/2.0 ") || strings.Contains(m.Raw, " SIP/2.0\r\n"), "raw SIP in the body")
	}
	return got
}

// waitCDRsWritten waits until the CDR file holds every record the proxy
// counts as written.
func (p *proxy) waitCDRsWritten(t *testing.T) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m, err := p.Metrics()
		if !assert.NoError(c, err) {
			return
		}
		recs, err := p.CDRs()
		if !assert.NoError(c, err) {
			return
		}
		assert.GreaterOrEqual(c, float64(len(recs)), count(m, "siphon_cdr_written_total", nil), "CDR file vs the written counter")
	}, 5*time.Second, 20*time.Millisecond)
}
