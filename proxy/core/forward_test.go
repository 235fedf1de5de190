package core

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/proxy/calls"
	"github.com/siphon-otel/siphon-otel/proxy/config"
	"github.com/siphon-otel/siphon-otel/proxy/registrar"
)

// ourRoute is the Record-Route the proxy puts in a UDP dialog, as the
// caller's UA sends it back in Route.
const ourRoute = "Route: <sip:127.0.0.1:5060;transport=udp;lr>"

// bind registers contact for user@example.com.
func (h *harness) bind(user, contact string) {
	h.p.Reg.Update(registrar.AoR("sip:"+user+"@example.com"), []registrar.Binding{{URI: contact, Expires: 600, Q: 1}},
		"reg-"+user, 1, "10.0.0.7:5062", "udp", "")
}

// inDialog builds a request of the dialog invite opened, from the caller
// (fromCaller) or the callee, through the proxy.
func inDialog(t *testing.T, invite *sip.Request, method, ruri string, fromCaller bool, hdrs ...string) *sip.Request {
	callerTag := invite.From().Params.GetOr("tag", "")
	from, to := "From: <sip:alice@example.com>;tag="+callerTag, "To: <sip:bob@example.com>;tag=callee"
	if !fromCaller {
		from, to = "From: <sip:bob@example.com>;tag=callee", "To: <sip:alice@example.com>;tag="+callerTag
	}
	return newReq(t, invite.Transport(), method, ruri,
		append([]string{from, to, "Call-ID: " + invite.CallID().Value(), "CSeq: 2 " + method}, hdrs...)...)
}

// TestCall follows a call through the proxy: INVITE to a registered
// contact, 180 and 200 back, the end-to-end ACK, the caller's BYE, and the
// call's CDR.
func TestCall(t *testing.T) {
	h := newHarness(t, nil)
	h.bind("bob", "sip:bob@10.0.0.7:5062")
	h.next.answer = func(req *sip.Request, tx *clientTx) {
		if req.IsInvite() {
			tx.respond(180, "Ringing")
		}
		tx.respond(200, "OK")
	}

	invite := newReq(t, "UDP", "INVITE", "sip:bob@example.com", "User-Agent: Linphone/5.2")
	// RFC 3581: the caller asked for rport; its Via says where it was seen
	callerVia := "SIP/2.0/UDP 10.0.0.1:5070;branch=" + invite.Via().Params.GetOr("branch", "") + ";rport=5070;received=10.0.0.1"
	u := h.send(invite)
	for _, want := range []int{100, 180, 200} {
		res := u.next()
		require.Equal(t, want, res.StatusCode)
		assert.Equal(t, []string{callerVia}, headerValues(res, "Via"), "%d upstream without our Via", want)
		assert.Equal(t, "10.0.0.1:5070", res.Destination(), "%d goes where the INVITE came from", want)
		if want != 100 {
			assert.Equal(t, []string{"<sip:127.0.0.1:5060;transport=udp;lr>"}, headerValues(res, "Record-Route"))
		}
	}
	u.wait() // a 2xx is not held for its ACK (it goes end to end)

	fwd := h.next.request(t, 0)
	assert.Equal(t, sip.INVITE, fwd.Method)
	assert.Equal(t, "sip:bob@10.0.0.7:5062", fwd.Recipient.String(), "the Request-URI is the contact")
	assert.Equal(t, "10.0.0.7:5062", fwd.Destination())
	assert.Equal(t, "UDP", fwd.Transport())
	vias := fwd.GetHeaders("Via")
	require.Len(t, vias, 2)
	top := vias[0].(*sip.ViaHeader)
	assert.Equal(t, "127.0.0.1", top.Host, "our advertised host")
	assert.Equal(t, 5060, top.Port, "our UDP listening port")
	assert.True(t, strings.HasPrefix(top.Params.GetOr("branch", ""), sip.RFC3261BranchMagicCookie), "an RFC 3261 branch")
	assert.Equal(t, callerVia, vias[1].Value(), "the caller's Via below ours")
	assert.Equal(t, "69", headerValue(fwd, "Max-Forwards"))
	assert.Equal(t, []string{"<sip:127.0.0.1:5060;transport=udp;lr>"}, headerValues(fwd, "Record-Route"))

	active := h.p.Calls.Active()
	require.Len(t, active, 1)
	assert.Equal(t, "confirmed", active[0].State)
	assert.Equal(t, 1.0, counter(h.p.m.DialogsActive))
	assert.Equal(t, 1.0, counter(h.p.m.ProxyDialogSessions), "waiting for the ACK")

	h.p.onAck(inDialog(t, invite, "ACK", "sip:bob@10.0.0.7:5062", true, ourRoute, "CSeq: 1 ACK"), nil)
	ack := h.next.request(t, 1)
	assert.Equal(t, sip.ACK, ack.Method)
	assert.Equal(t, "10.0.0.7:5062", ack.Destination())
	assert.Empty(t, headerValues(ack, "Route"), "our Route popped")
	assert.Equal(t, 0.0, counter(h.p.m.ProxyDialogSessions), "ACKed")
	assert.Empty(t, h.callCDRs(), "no CDR before the BYE")

	bye := h.send(inDialog(t, invite, "BYE", "sip:bob@10.0.0.7:5062", true, ourRoute, "Reason: Q.850;cause=16"))
	assert.Equal(t, 200, bye.final().StatusCode)
	bye.wait()
	fwdBye := h.next.request(t, 2)
	assert.Equal(t, sip.BYE, fwdBye.Method)
	assert.Equal(t, "sip:bob@10.0.0.7:5062", fwdBye.Recipient.String())
	assert.Empty(t, headerValues(fwdBye, "Record-Route"), "only the initial INVITE records the route")

	cdrs := h.callCDRs()
	require.Len(t, cdrs, 1)
	cdr := cdrs[0]
	assert.Equal(t, invite.CallID().Value(), cdr["call_id"])
	assert.EqualValues(t, 200, cdr["response_code"])
	assert.Equal(t, calls.Caller, cdr["disconnect_initiator"])
	assert.Equal(t, "Q.850;cause=16", cdr["sip_reason"])
	assert.Equal(t, "10.0.0.1", cdr["source_ip"])
	assert.Equal(t, "10.0.0.7", cdr["destination_ip"], "the next hop that answered")
	assert.Equal(t, "udp", cdr["transport"])
	assert.Equal(t, "Linphone/5.2", cdr["user_agent"])
	assert.Equal(t, "sip:bob@example.com", cdr["ruri"])
	assert.NotNil(t, cdr["timestamp_answer"])
	assert.Empty(t, h.p.Calls.Active())
	assert.Equal(t, 1.0, counter(h.p.m.Requests.WithLabelValues("ACK")))
	assert.Equal(t, 1.0, counter(h.p.m.Responses.WithLabelValues("180")))
}

// TestByeSender: the BYE goes to the remote target of its direction, and
// its direction decides the CDR's disconnect initiator.
func TestByeSender(t *testing.T) {
	for _, c := range []struct {
		name       string
		fromCaller bool
		target     string // the remote target: the Request-URI
		dest       string
		initiator  string
	}{
		{"caller hangs up", true, "sip:bob@10.0.0.7:5062", "10.0.0.7:5062", calls.Caller},
		{"callee hangs up", false, "sip:alice@10.0.0.1:5070", "10.0.0.1:5070", calls.Callee},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respond(200, "OK") }
			invite := newReq(t, "UDP", "INVITE", "sip:bob@example.com")
			h.p.Calls.Invite(h.p.callOf(invite, ""))
			h.p.Calls.Final(invite.CallID().Value(), invite.From().Params.GetOr("tag", ""), 200, "", "10.0.0.7", false)
			u := h.send(inDialog(t, invite, "BYE", c.target, c.fromCaller, ourRoute))
			assert.Equal(t, 200, u.final().StatusCode)
			u.wait()
			bye := h.next.request(t, 0)
			assert.Equal(t, c.dest, bye.Destination())
			assert.Equal(t, c.target, bye.Recipient.String(), "in a dialog the Request-URI stays")
			cdrs := h.callCDRs()
			require.Len(t, cdrs, 1)
			assert.Equal(t, c.initiator, cdrs[0]["disconnect_initiator"])
		})
	}
}

// TestRecordRoute: an initial INVITE records one Route on its transport,
// or both sides when it changes transport (RFC 5658), the outgoing side on
// top; the Via names the outgoing transport's listening port.
func TestRecordRoute(t *testing.T) {
	cases := []struct {
		name    string
		in      string // transport from the caller
		contact string // where the callee is
		out     string
		viaPort int
		rr      []string
	}{
		{"udp to udp", "UDP", "sip:bob@10.0.0.7:5062", "UDP", 5060,
			[]string{"<sip:127.0.0.1:5060;transport=udp;lr>"}},
		{"tcp to tcp", "TCP", "sip:bob@10.0.0.7:5062;transport=tcp", "TCP", 5060,
			[]string{"<sip:127.0.0.1:5060;transport=tcp;lr>"}},
		{"udp to tcp", "UDP", "sip:bob@10.0.0.7:5062;transport=tcp", "TCP", 5060,
			[]string{"<sip:127.0.0.1:5060;transport=tcp;lr>", "<sip:127.0.0.1:5060;transport=udp;lr>"}},
		{"tcp to tls", "TCP", "sips:bob@10.0.0.7:5063", "TLS", 5061,
			[]string{"<sips:127.0.0.1:5061;lr>", "<sip:127.0.0.1:5060;transport=tcp;lr>"}},
		{"tls to udp", "TLS", "sip:bob@10.0.0.7:5062", "UDP", 5060,
			[]string{"<sip:127.0.0.1:5060;transport=udp;lr>", "<sips:127.0.0.1:5061;lr>"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.bind("bob", c.contact)
			h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respond(486, "Busy Here") }
			u := h.send(newReq(t, c.in, "INVITE", "sip:bob@example.com"))
			assert.Equal(t, 486, u.final().StatusCode)
			fwd := h.next.request(t, 0)
			assert.Equal(t, c.out, fwd.Transport())
			assert.Equal(t, c.rr, headerValues(fwd, "Record-Route"))
			assert.Equal(t, c.viaPort, fwd.Via().Port)
			assert.Equal(t, c.out, fwd.Via().Transport)
		})
	}
}

// TestMaxForwards: each hop lowers Max-Forwards (RFC 3261 16.6 step 3),
// also on the second target of a failover.
func TestMaxForwards(t *testing.T) {
	cases := []struct {
		name string
		mf   string // the caller's header line; "Max-Forwards:" for none
		code int    // upstream
		sent []string
	}{
		{"70", "Max-Forwards: 70", 200, []string{"69", "69"}},
		// "the proxy MUST add one with a field value, which SHOULD be 70"
		{"none: 70 added", "Max-Forwards:", 200, []string{"70", "70"}},
		{"5", "Max-Forwards: 5", 200, []string{"4", "4"}},
		// decremented to 0 and forwarded: the next hop is the one to
		// answer 483, or to take it if it is the target (sipgo's own
		// decrement refused to send it, and the proxy answered 503)
		{"1", "Max-Forwards: 1", 200, []string{"0", "0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Routes = []config.Route{{Match: "carrier.test", Targets: []string{"sip:192.0.2.1", "sip:192.0.2.2"}}}
			h := newHarness(t, cfg)
			h.next.answer = func(req *sip.Request, tx *clientTx) {
				if req.Recipient.Host == "192.0.2.1" {
					tx.respond(503, "Service Unavailable")
					return
				}
				tx.respond(200, "OK")
			}
			u := h.send(newReq(t, "UDP", "INVITE", "sip:+4930123@carrier.test", c.mf))
			assert.Equal(t, c.code, u.final().StatusCode)
			var sent []string
			for _, r := range h.next.requests() {
				sent = append(sent, headerValue(r, "Max-Forwards"))
			}
			assert.Equal(t, c.sent, sent)
		})
	}
}

var errRefused = errors.New("next hop refused")

// TestFailover: targets are tried in order; 408, 5xx, silence, a
// transaction without an answer and a refused send move on, anything else
// is the answer; the last target's answer goes upstream whatever it is.
func TestFailover(t *testing.T) {
	const a, b = "192.0.2.1", "192.0.2.2"
	type script func(tx *clientTx)
	answer := func(code int) script { return func(tx *clientTx) { tx.respond(code, "") } }
	silent := func(*clientTx) {}
	dies := func(tx *clientTx) { tx.respond(100, "Trying"); tx.fail(sip.ErrTransactionTimeout) }
	cases := []struct {
		name      string
		first     script // nil: refused
		second    script // nil: refused
		code      int    // upstream final
		tried     []string
		cdr       int
		initiator string
	}{
		{"503 then 200", answer(503), answer(200), 200, []string{a, b}, 0, ""},
		{"408 then 200", answer(408), answer(200), 200, []string{a, b}, 0, ""},
		{"500 then 486", answer(500), answer(486), 486, []string{a, b}, 486, calls.Callee},
		{"486 is an answer", answer(486), answer(200), 486, []string{a}, 486, calls.Callee},
		{"404 is an answer", answer(404), answer(200), 404, []string{a}, 404, calls.Callee},
		{"silent then 200", silent, answer(200), 200, []string{a, b}, 0, ""},
		{"no final answer then 200", dies, answer(200), 200, []string{a, b}, 0, ""},
		{"refused then 200", nil, answer(200), 200, []string{a, b}, 0, ""},
		{"both 503: the last goes upstream", answer(503), answer(503), 503, []string{a, b}, 503, calls.Callee},
		{"both refused: 503 from the proxy", nil, nil, 503, []string{a, b}, 503, calls.Error},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Routes = []config.Route{{Match: "carrier.test", Targets: []string{"sip:" + a, "sip:" + b + ";transport=tcp"}}}
			cfg.Proxy.FailoverTimeout = 20 * time.Millisecond
			h := newHarness(t, cfg)
			scripts := map[string]script{a: c.first, b: c.second}
			h.next.refuse = func(req *sip.Request) error {
				if scripts[req.Recipient.Host] == nil {
					return errRefused
				}
				return nil
			}
			h.next.answer = func(req *sip.Request, tx *clientTx) { scripts[req.Recipient.Host](tx) }

			u := h.send(newReq(t, "UDP", "INVITE", "sip:+4930123@carrier.test"))
			res := u.final()
			assert.Equal(t, c.code, res.StatusCode)
			if res.StatusCode >= 300 {
				u.ack(res)
			}
			u.wait() // the CDR is written once the proxy is done with the INVITE
			var tried []string
			for _, r := range h.next.requests() {
				require.Equal(t, sip.INVITE, r.Method)
				assert.Equal(t, "+4930123", r.Recipient.User, "the target keeps the user")
				tried = append(tried, r.Recipient.Host)
			}
			assert.Equal(t, c.tried, tried)
			assert.Equal(t, 1, count(u.codes(), func(code int) bool { return code >= 200 }), "one final answer upstream")
			if len(tried) == 2 {
				assert.Equal(t, "TCP", h.next.requests()[1].Transport(), "the target's transport")
			}
			cdrs := h.callCDRs()
			if c.cdr == 0 {
				assert.Empty(t, cdrs, "the call is up")
				return
			}
			require.Len(t, cdrs, 1)
			assert.EqualValues(t, c.cdr, cdrs[0]["response_code"])
			assert.Equal(t, c.initiator, cdrs[0]["disconnect_initiator"])
		})
	}
}

func count[T any](s []T, f func(T) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}

// TestCancel: the caller's CANCEL is answered by sipgo (200, and 487 for
// the INVITE); the proxy counts both, cancels downstream with the
// forwarded INVITE's branch and the caller's Reason, and writes the CDR.
func TestCancel(t *testing.T) {
	h := newHarness(t, nil)
	h.bind("bob", "sip:bob@10.0.0.7:5062")
	h.next.answer = func(req *sip.Request, tx *clientTx) { tx.respond(180, "Ringing") }
	invite := newReq(t, "UDP", "INVITE", "sip:bob@example.com")
	u := h.send(invite)
	require.Equal(t, 100, u.next().StatusCode)
	require.Equal(t, 180, u.next().StatusCode)

	const reason = `SIP;cause=200;text="Call completed elsewhere"`
	require.NoError(t, u.tx.Receive(cancelOf(invite, reason)))
	res := u.next()
	require.Equal(t, 487, res.StatusCode)

	fwd, cancel := h.next.request(t, 0), h.next.request(t, 1)
	assert.Equal(t, sip.CANCEL, cancel.Method)
	assert.Equal(t, fwd.Recipient.String(), cancel.Recipient.String())
	assert.Equal(t, fwd.Via().Value(), cancel.Via().Value(), "the forwarded INVITE's Via and branch")
	assert.Equal(t, "1 CANCEL", cancel.CSeq().Value())
	assert.Equal(t, fwd.CallID().Value(), cancel.CallID().Value())
	assert.Equal(t, reason, headerValue(cancel, "Reason"))
	assert.Equal(t, fwd.Destination(), cancel.Destination())

	u.ack(res)
	u.wait()
	assert.Equal(t, []int{100, 180, 487}, u.codes(), "the downstream 487 is not relayed: upstream has sipgo's")
	assert.Equal(t, 1.0, counter(h.p.m.Requests.WithLabelValues("CANCEL")))
	assert.Equal(t, 1.0, counter(h.p.m.Responses.WithLabelValues("200")), "sipgo's 200 for the CANCEL")
	assert.Equal(t, 1.0, counter(h.p.m.Responses.WithLabelValues("487")))
	assert.Equal(t, 1.0, counter(h.p.m.Requests.WithLabelValues("ACK")), "the ACK of the 487")
	cdrs := h.callCDRs()
	require.Len(t, cdrs, 1)
	assert.EqualValues(t, 487, cdrs[0]["response_code"])
	assert.Equal(t, calls.Caller, cdrs[0]["disconnect_initiator"])
	assert.Equal(t, reason, cdrs[0]["sip_reason"])
}

// TestInviteTimeout: nobody answers within proxy.invite_timeout: CANCEL
// downstream, 408 upstream, a CDR with initiator timeout.
func TestInviteTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.Proxy.InviteTimeout = 50 * time.Millisecond
	h := newHarness(t, cfg)
	h.bind("bob", "sip:bob@10.0.0.7:5062")
	u := h.send(newReq(t, "UDP", "INVITE", "sip:bob@example.com"))
	res := u.final()
	assert.Equal(t, 408, res.StatusCode)
	assert.Equal(t, sip.CANCEL, h.next.request(t, 1).Method)
	u.ack(res)
	u.wait()
	assert.Equal(t, []int{100, 408}, u.codes())
	cdrs := h.callCDRs()
	require.Len(t, cdrs, 1)
	assert.EqualValues(t, 408, cdrs[0]["response_code"])
	assert.Equal(t, calls.Timeout, cdrs[0]["disconnect_initiator"])
}

// TestForwardNonInvite: other requests are relayed without 100 Trying and
// without Record-Route; the answer goes upstream.
func TestForwardNonInvite(t *testing.T) {
	cfg := testConfig()
	cfg.Routes = []config.Route{{Match: "*", Targets: []string{"sip:192.0.2.1:5070"}}}
	h := newHarness(t, cfg)
	h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respond(202, "Accepted") }
	u := h.send(newReq(t, "TCP", "MESSAGE", "sip:carol@elsewhere.test"))
	u.wait()
	assert.Equal(t, []int{202}, u.codes())
	fwd := h.next.request(t, 0)
	assert.Equal(t, "sip:carol@192.0.2.1:5070", fwd.Recipient.String())
	assert.Equal(t, "192.0.2.1:5070", fwd.Destination())
	assert.Equal(t, "UDP", fwd.Transport(), "a route target without transport is UDP")
	assert.Empty(t, headerValues(fwd, "Record-Route"))
	assert.Equal(t, "69", headerValue(fwd, "Max-Forwards"))
	assert.Empty(t, h.callCDRs())
}

// TestRoutes: loose routing (RFC 3261 16.4): Routes naming this proxy are
// removed, a remaining Route is followed without touching the Request-URI
// and without recording the route (the set is the caller's).
func TestRoutes(t *testing.T) {
	cases := []struct {
		name   string
		req    func(t *testing.T) *sip.Request
		dest   string
		routes []string // left on the forwarded request
	}{
		{"pre-loaded route", func(t *testing.T) *sip.Request {
			return newReq(t, "UDP", "INVITE", "sip:bob@remote.test", "Route: <sip:192.0.2.9:5080;lr>")
		}, "192.0.2.9:5080", []string{"<sip:192.0.2.9:5080;lr>"}},
		{"our route then another", func(t *testing.T) *sip.Request {
			return newReq(t, "UDP", "INVITE", "sip:bob@remote.test", "Route: <sip:127.0.0.1:5060;lr>, <sip:192.0.2.9;lr>")
		}, "192.0.2.9:5060", []string{"<sip:192.0.2.9;lr>"}},
		{"both our routes of a transport change", func(t *testing.T) *sip.Request {
			return newReq(t, "UDP", "BYE", "sip:bob@10.0.0.7:5062;transport=tcp",
				"To: <sip:bob@example.com>;tag=b1", "Route: <sip:127.0.0.1:5060;transport=udp;lr>, <sip:127.0.0.1:5060;transport=tcp;lr>")
		}, "10.0.0.7:5062", nil},
		{"our domain as route", func(t *testing.T) *sip.Request {
			return newReq(t, "UDP", "BYE", "sip:bob@10.0.0.7:5062", "To: <sip:bob@example.com>;tag=b1", "Route: <sip:example.com;lr>")
		}, "10.0.0.7:5062", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respond(200, "OK") }
			req := c.req(t)
			ruri := req.Recipient.String()
			u := h.send(req)
			assert.Equal(t, 200, u.final().StatusCode)
			u.wait()
			fwd := h.next.request(t, 0)
			assert.Equal(t, c.dest, fwd.Destination())
			assert.Equal(t, ruri, fwd.Recipient.String())
			assert.Equal(t, c.routes, headerValues(fwd, "Route"))
			assert.Empty(t, headerValues(fwd, "Record-Route"))
			assert.Empty(t, h.p.Calls.Active(), "not a call this proxy tracks")
		})
	}
}

// TestAck: an ACK for a 2xx goes end to end, statelessly: after our Routes
// to the next Route or the Request-URI; an ACK for the proxy stops here.
func TestAck(t *testing.T) {
	cases := []struct {
		name string
		ruri string
		hdrs []string
		dest string // "" when not forwarded
	}{
		{"through us to the remote target", "sip:bob@10.0.0.7:5062", []string{ourRoute}, "10.0.0.7:5062"},
		{"to the next route", "sip:bob@10.0.0.7:5062", []string{"Route: <sip:127.0.0.1:5060;lr>, <sip:192.0.2.9;lr>"}, "192.0.2.9:5060"},
		{"to a remote target over tcp", "sip:bob@10.0.0.7:5062;transport=tcp", nil, "10.0.0.7:5062"},
		{"for the proxy itself", "sip:127.0.0.1:5060", nil, ""},
		{"Max-Forwards 1: forwarded with 0", "sip:bob@10.0.0.7:5062", []string{"Max-Forwards: 1"}, "10.0.0.7:5062"},
		{"Max-Forwards 0: not forwarded", "sip:bob@10.0.0.7:5062", []string{"Max-Forwards: 0"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			ack := newReq(t, "UDP", "ACK", c.ruri, append([]string{"To: <sip:bob@example.com>;tag=b1"}, c.hdrs...)...)
			h.p.onAck(ack, nil)
			assert.Equal(t, 1.0, counter(h.p.m.Requests.WithLabelValues("ACK")))
			sent := h.next.requests()
			if c.dest == "" {
				assert.Empty(t, sent)
				return
			}
			require.Len(t, sent, 1)
			fwd := sent[0]
			assert.Equal(t, c.dest, fwd.Destination())
			assert.Equal(t, c.ruri, fwd.Recipient.String())
			mf := "69"
			if in := headerValue(ack, "Max-Forwards"); in == "1" {
				mf = "0"
			}
			assert.Equal(t, mf, headerValue(fwd, "Max-Forwards"))
			require.Len(t, fwd.GetHeaders("Via"), 2)
			assert.Equal(t, "127.0.0.1", fwd.Via().Host)
		})
	}
}

// TestStrayUpstream: a 2xx to INVITE that no client transaction wants (the
// callee resending its 200 until the ACK comes) goes upstream statelessly,
// to the previous Via's received/rport; anything else is dropped. The
// write itself needs a socket (proxy/e2e).
func TestStrayUpstream(t *testing.T) {
	const ourVia = "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ours"
	cases := []struct {
		name string
		msg  string // the response's first line and Via lines
		cseq string
		dest string // "" when dropped
	}{
		{"2xx to INVITE, rport", "SIP/2.0 200 OK\r\n" + ourVia + "\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-c;rport=6000;received=198.51.100.1\r\n",
			"1 INVITE", "198.51.100.1:6000"},
		{"2xx to INVITE, plain Via", "SIP/2.0 200 OK\r\n" + ourVia + "\r\nVia: SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bK-c\r\n",
			"1 INVITE", "10.0.0.1:5070"},
		{"2xx to INVITE, Via without port", "SIP/2.0 200 OK\r\n" + ourVia + "\r\nVia: SIP/2.0/TLS 10.0.0.1;branch=z9hG4bK-c\r\n",
			"1 INVITE", "10.0.0.1:5061"},
		{"not our Via", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bK-x\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-c\r\n",
			"1 INVITE", ""},
		{"our host, another port", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-x\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-c\r\n",
			"1 INVITE", ""},
		{"not a 2xx", "SIP/2.0 486 Busy Here\r\n" + ourVia + "\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-c\r\n",
			"1 INVITE", ""},
		{"2xx to BYE", "SIP/2.0 200 OK\r\n" + ourVia + "\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-c\r\n",
			"2 BYE", ""},
		{"no Via below ours", "SIP/2.0 200 OK\r\n" + ourVia + "\r\n", "1 INVITE", ""},
	}
	h := newHarness(t, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := c.msg + "From: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>;tag=b\r\nCall-ID: stray\r\nCSeq: " + c.cseq +
				"\r\nContent-Length: 0\r\n\r\n"
			msg, err := sip.ParseMessage([]byte(raw))
			require.NoError(t, err)
			res := msg.(*sip.Response)
			up := h.p.strayUpstream(res)
			if c.dest == "" {
				assert.Nil(t, up)
				return
			}
			require.NotNil(t, up)
			assert.Equal(t, c.dest, up.Destination())
			vias := headerValues(up, "Via")
			require.Len(t, vias, 1, "our Via removed")
			assert.Equal(t, headerValues(res, "Via")[1], vias[0])
			assert.Equal(t, up.Via().Transport, up.Transport())
			assert.Len(t, headerValues(res, "Via"), 2, "the original is left alone")
		})
	}
}

// TestPrepare: where a request to a next hop leaves from. Over UDP it
// leaves from the listening socket (sipgo would open one per request) once
// Start knows it; streams go through sipgo's connection pool.
func TestPrepare(t *testing.T) {
	h := newHarness(t, nil)
	cases := []struct {
		name      string
		next      string
		transport string
		udpLaddr  bool // Start opened the UDP listener
		dest      string
		laddr     string
	}{
		{"udp before Start", "sip:10.0.0.7:5062", "udp", false, "10.0.0.7:5062", ":0"},
		{"udp from the listener", "sip:10.0.0.7", "udp", true, "10.0.0.7:5060", "127.0.0.1:5060"},
		{"tcp", "sip:10.0.0.7", "tcp", true, "10.0.0.7:5060", ":0"},
		{"tls", "sips:10.0.0.7", "tls", true, "10.0.0.7:5061", ":0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h.p.udpLaddr = sip.Addr{}
			if c.udpLaddr {
				h.p.udpLaddr = sip.Addr{IP: net.IPv4(127, 0, 0, 1), Port: 5060}
			}
			req := newReq(t, "UDP", "MESSAGE", "sip:bob@example.com")
			// no tcp or tls listener was started: sipgo dials by itself
			require.NoError(t, h.p.prepare(req, uri(t, c.next), c.transport))
			assert.Equal(t, c.dest, req.Destination())
			assert.Equal(t, strings.ToUpper(c.transport), req.Transport())
			assert.Equal(t, c.laddr, req.Laddr.String())
		})
	}
}
