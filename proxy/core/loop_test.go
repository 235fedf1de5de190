package core

import (
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/proxy/config"
	"github.com/siphon-otel/siphon-otel/proxy/registrar"
)

// TestToSelf: a request of a dialog whose Request-URI names the proxy,
// after its own Routes are gone, is not forwarded (it would come back
// here until Max-Forwards ran out): 404 (RFC 3261 16.5), counted; OPTIONS
// is answered. With a Route left it goes to that Route as before.
func TestToSelf(t *testing.T) {
	cases := []struct {
		name      string
		transport string
		method    string
		ruri      string
		hdrs      []string
		code      int
		counted   float64
		forwarded bool
	}{
		{"BYE to the proxy", "UDP", "BYE", "sip:127.0.0.1:5060", nil, 404, 1, false},
		{"BYE to the proxy over TCP", "TCP", "BYE", "sip:127.0.0.1:5060;transport=tcp", nil, 404, 1, false},
		{"BYE to the proxy by its default port", "UDP", "BYE", "sip:127.0.0.1", nil, 404, 1, false},
		{"BYE to the proxy through its own Route", "UDP", "BYE", "sip:127.0.0.1:5060", []string{ourRoute}, 404, 1, false},
		{"MESSAGE to the domain", "UDP", "MESSAGE", "sip:example.com", nil, 404, 1, false},
		{"OPTIONS to the proxy", "UDP", "OPTIONS", "sip:127.0.0.1:5060", nil, 200, 0, false},
		{"BYE to the proxy with another Route", "UDP", "BYE", "sip:127.0.0.1:5060", []string{"Route: <sip:10.0.0.7:5062;lr>"}, 200, 0, true},
		{"BYE to a user at another port", "UDP", "BYE", "sip:127.0.0.1:5999", nil, 200, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respond(200, "OK") }
			u := h.send(newReq(t, c.transport, c.method, c.ruri, append([]string{"To: <sip:bob@example.com>;tag=b1"}, c.hdrs...)...))
			assert.Equal(t, c.code, u.final().StatusCode)
			u.wait()
			assert.Equal(t, c.counted, counter(h.p.m.Loops.WithLabelValues("request_uri")))
			if c.forwarded {
				assert.Len(t, h.next.requests(), 1)
			} else {
				assert.Empty(t, h.next.requests(), "nothing forwarded")
			}
		})
	}
}

// back is a request the proxy sent downstream arriving at the proxy again,
// as it does when the next hop is the proxy itself.
func back(req *sip.Request) *sip.Request {
	r := snapshot(req)
	r.SetSource("127.0.0.1:5060")
	r.SetDestination("")
	return r
}

// TestLoop is RFC 3261 16.3 step 4 with a route to a peer that sends
// requests back (as a peer routing the domain to this proxy would): the
// request comes back once with a new Request-URI (a spiral: forwarded
// again), then unchanged (a loop: 482), and the 482 goes back along the
// path.
func TestLoop(t *testing.T) {
	for _, transport := range []string{"UDP", "TCP"} {
		t.Run(transport, func(t *testing.T) {
			cfg := testConfig()
			cfg.Routes = []config.Route{{Match: "*", Targets: []string{"sip:10.0.0.9:5080;transport=" + transport}}}
			h := newHarness(t, cfg)
			first := h.send(newReq(t, transport, "MESSAGE", "sip:carol@elsewhere.test"))
			spiral := h.send(back(h.next.request(t, 0)))
			looped := h.send(back(h.next.request(t, 1)))
			res := looped.final()
			assert.Equal(t, 482, res.StatusCode)
			assert.Equal(t, 1.0, counter(h.p.m.Loops.WithLabelValues("via")))
			// the 482 on the wire, back along the path
			h.next.tx(t, 1).respond(res.StatusCode, res.Reason)
			res = spiral.final()
			assert.Equal(t, 482, res.StatusCode)
			h.next.tx(t, 0).respond(res.StatusCode, res.Reason)
			assert.Equal(t, 482, first.final().StatusCode)
			for _, u := range []*upstream{first, spiral, looped} {
				u.wait()
			}
			assert.Len(t, h.next.requests(), 2, "sent twice, not until Max-Forwards ran out")
		})
	}
}

// TestOwnAddress: a target at one of the proxy's own listening addresses
// (bob registered a contact there, or a dialog's remote target is there)
// is not sent to: it would come straight back, and over TCP sipgo would
// hand it to whichever client connected last. The next target is tried;
// with none, 482.
func TestOwnAddress(t *testing.T) {
	cases := []struct {
		name      string
		transport string
		contacts  []string // bob@127.0.0.1's
		ruri      string
		hdrs      []string
		code      int
		sent      int
	}{
		{"a contact at the proxy, UDP", "UDP", []string{"sip:bob@127.0.0.1:5060"}, "sip:bob@127.0.0.1", nil, 482, 0},
		{"a contact at the proxy, TCP", "TCP", []string{"sip:bob@127.0.0.1:5060;transport=tcp"}, "sip:bob@127.0.0.1", nil, 482, 0},
		{"a contact at the proxy's TLS port", "TLS", []string{"sips:bob@127.0.0.1"}, "sip:bob@127.0.0.1", nil, 482, 0},
		{"then another contact", "UDP", []string{"sip:bob@127.0.0.1:5060", "sip:bob@10.0.0.7:5062"}, "sip:bob@127.0.0.1", nil, 200, 1},
		{"a remote target at the proxy", "UDP", nil, "sip:bob@127.0.0.1:5060", []string{"To: <sip:bob@127.0.0.1>;tag=b1"}, 482, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respond(200, "OK") }
			var bs []registrar.Binding
			for i, u := range c.contacts {
				bs = append(bs, registrar.Binding{URI: u, Expires: 600, Q: 1 - float64(i)/10})
			}
			if bs != nil {
				h.p.Reg.Update(registrar.AoR("sip:bob@127.0.0.1"), bs, "reg-bob", 1, "10.0.0.7:5062", "udp", "")
			}
			u := h.send(newReq(t, c.transport, "MESSAGE", c.ruri, c.hdrs...))
			assert.Equal(t, c.code, u.final().StatusCode)
			u.wait()
			assert.Len(t, h.next.requests(), c.sent)
			assert.Equal(t, 1.0, counter(h.p.m.Loops.WithLabelValues("target")))
		})
	}
}

// TestLoopKey: a request that came back with a change to what routes it
// is spiralling, not looping; Max-Forwards and the method do not count.
func TestLoopKey(t *testing.T) {
	h := newHarness(t, nil)
	h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respond(200, "OK") }
	// in a dialog the Request-URI goes out as it came
	u := h.send(newReq(t, "UDP", "MESSAGE", "sip:bob@10.0.0.7:5062", "To: <sip:bob@example.com>;tag=b1", "Call-ID: key-1"))
	u.wait()
	out := back(h.next.request(t, 0))
	require.True(t, h.p.looped(out), "unchanged")
	for name, change := range map[string]func(r *sip.Request){
		"Request-URI": func(r *sip.Request) { r.Recipient.User = "carol" },
		"Call-ID":     func(r *sip.Request) { id := sip.CallIDHeader("key-2"); r.ReplaceHeader(&id) },
		"CSeq":        func(r *sip.Request) { r.CSeq().SeqNo++ },
		"Route":       func(r *sip.Request) { r.AppendHeader(sip.NewHeader("Route", "<sip:10.0.0.9;lr>")) },
	} {
		r := back(h.next.request(t, 0))
		change(r)
		assert.False(t, h.p.looped(r), "%s changed: a spiral", name)
	}
	for name, change := range map[string]func(r *sip.Request){
		"Max-Forwards": func(r *sip.Request) { mf := sip.MaxForwardsHeader(3); r.ReplaceHeader(&mf) },
		"method":       func(r *sip.Request) { r.Method = sip.CANCEL },
	} {
		r := back(h.next.request(t, 0))
		change(r)
		assert.True(t, h.p.looped(r), "%s changed: still the loop", name)
	}
	other := back(h.next.request(t, 0))
	other.Via().Port = 5999
	assert.False(t, h.p.looped(other), "a Via of another port is not ours")
}

// TestAckLoop: an end-to-end ACK that loops is dropped at its second
// round, one for the proxy's own address at once; both counted.
func TestAckLoop(t *testing.T) {
	h := newHarness(t, nil)
	h.p.onAck(newReq(t, "UDP", "ACK", "sip:bob@10.0.0.7:5062", "To: <sip:bob@example.com>;tag=b1", "CSeq: 1 ACK"), nil)
	h.p.onAck(back(h.next.request(t, 0)), nil)
	assert.Len(t, h.next.requests(), 1)
	assert.Equal(t, 1.0, counter(h.p.m.Loops.WithLabelValues("via")))

	h.p.onAck(newReq(t, "UDP", "ACK", "sip:bob@127.0.0.1:5060", "To: <sip:bob@example.com>;tag=b1", "CSeq: 1 ACK"), nil)
	assert.Len(t, h.next.requests(), 1, "not sent to the proxy's own address")
	assert.Equal(t, 1.0, counter(h.p.m.Loops.WithLabelValues("target")))
}
