package core

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/proxy/calls"
	"github.com/siphon-otel/siphon-otel/proxy/config"
	"github.com/siphon-otel/siphon-otel/proxy/rtpengine"
	"github.com/siphon-otel/siphon-otel/proxy/rtpengine/ngtest"
)

// The SDP of the caller (10.0.0.1) and of the callee (10.0.0.7) in these
// tests; the engine (ngtest) answers with ngtest.SDP(port).
const (
	callerSDP  = "v=0\r\no=alice 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
	calleeSDP  = "v=0\r\no=bob 2 2 IN IP4 10.0.0.7\r\ns=-\r\nc=IN IP4 10.0.0.7\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"
	calleeSDP2 = "v=0\r\no=bob 3 3 IN IP4 10.0.0.8\r\ns=-\r\nc=IN IP4 10.0.0.8\r\nt=0 0\r\nm=audio 7002 RTP/AVP 0\r\n"
)

// mediaHarness is a proxy anchoring every call (rtpengine.enabled) through
// one fake engine, with bob registered at 10.0.0.7; edit changes the
// config first, opts the Options.
func mediaHarness(t *testing.T, edit func(*config.Config), opts ...func(*Options)) (*harness, *ngtest.Server) {
	t.Helper()
	ng := ngtest.Start(t)
	cfg := testConfig()
	cfg.RTPEngine.Instances = []string{ng.Addr}
	cfg.RTPEngine.Enabled = true
	cfg.RTPEngine.Timeout = 300 * time.Millisecond
	if edit != nil {
		edit(cfg)
	}
	h := newHarness(t, cfg, opts...)
	h.bind("bob", "sip:bob@10.0.0.7:5062")
	return h, ng
}

// withSDP puts an SDP body on a request.
func withSDP(req *sip.Request, sdp string) *sip.Request {
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte(sdp))
	return req
}

// respondSDP queues a response of the next hop (at its destination) with
// toTag and an SDP body ("" for none).
func (c *clientTx) respondSDP(code int, reason, toTag, sdp string) {
	res := sip.NewResponseFromRequest(c.req, code, reason, nil)
	res.To().Params.Add("tag", toTag)
	if sdp != "" {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		res.SetBody([]byte(sdp))
	}
	res.SetSource(c.req.Destination())
	c.res <- res
}

// requireBody checks a message's body and that Content-Length matches it.
func requireBody(t *testing.T, m sip.Message, want string, what string) {
	t.Helper()
	assert.Equal(t, want, string(m.Body()), what)
	require.NotNil(t, m.ContentLength(), what)
	assert.Equal(t, strconv.Itoa(len(want)), m.ContentLength().Value(), "%s: Content-Length", what)
}

// commands reads sipproxy_rtpengine_commands_total.
func (h *harness) commands(command, result string) float64 {
	return counter(h.p.m.RTPEngineCommands.WithLabelValues(command, result))
}

// TestMediaAnchoredCall follows an anchored call: the INVITE's SDP is
// offered and the engine's goes downstream; the 183's and the 200's are
// answered (the 200 repeats the 183's SDP: answered once) and the
// engine's go upstream, each with its Content-Length; the BYE deletes the
// call, naming the whole call (no To tag).
func TestMediaAnchoredCall(t *testing.T) {
	h, ng := mediaHarness(t, nil)
	h.next.answer = func(req *sip.Request, tx *clientTx) {
		if req.IsInvite() {
			tx.respondSDP(180, "Ringing", "callee", "")
			tx.respondSDP(183, "Session Progress", "callee", calleeSDP)
			tx.respondSDP(200, "OK", "callee", calleeSDP)
			return
		}
		tx.respond(200, "OK")
	}
	invite := withSDP(newReq(t, "UDP", "INVITE", "sip:bob@example.com"), callerSDP)
	u := h.send(invite)
	for _, want := range []struct {
		code int
		body string
	}{{100, ""}, {180, ""}, {183, ngtest.SDP(ngtest.FirstPort + 2)}, {200, ngtest.SDP(ngtest.FirstPort + 2)}} {
		res := u.next()
		require.Equal(t, want.code, res.StatusCode)
		if want.body != "" {
			requireBody(t, res, want.body, strconv.Itoa(want.code)+" upstream")
		} else {
			assert.Empty(t, res.Body())
		}
	}
	u.wait()
	requireBody(t, h.next.request(t, 0), ngtest.SDP(ngtest.FirstPort), "INVITE downstream")

	callerTag := invite.From().Params.GetOr("tag", "")
	require.Equal(t, []string{"offer", "answer"}, ng.Commands())
	got := ng.Requests()
	assert.Equal(t, rtpengine.Dict{"command": "offer", "call-id": invite.CallID().Value(), "from-tag": callerTag, "sdp": callerSDP,
		"ICE": "remove", "flags": []any{"trust-address"}, "replace": []any{"origin", "session-connection"},
		"received-from": []any{"IP4", "10.0.0.1"}}, got[0].Msg)
	assert.Equal(t, rtpengine.Dict{"command": "answer", "call-id": invite.CallID().Value(), "from-tag": callerTag, "to-tag": "callee",
		"sdp": calleeSDP, "ICE": "remove", "flags": []any{"trust-address"}, "replace": []any{"origin", "session-connection"},
		"received-from": []any{"IP4", "10.0.0.7"}}, got[1].Msg)
	assert.Equal(t, 1, h.p.media.count())

	bye := h.send(inDialog(t, invite, "BYE", "sip:bob@10.0.0.7:5062", true, ourRoute))
	assert.Equal(t, 200, bye.final().StatusCode)
	del := ng.Wait(t, 2, waitFor)
	assert.Equal(t, rtpengine.Dict{"command": "delete", "call-id": invite.CallID().Value(), "from-tag": callerTag}, del.Msg)
	assert.Eventually(t, func() bool { return h.commands("delete", "ok") == 1 }, waitFor, time.Millisecond)
	assert.Equal(t, 1.0, h.commands("offer", "ok"))
	assert.Equal(t, 1.0, h.commands("answer", "ok"))
	assert.Equal(t, 0, h.p.media.count())
	assert.Equal(t, uint64(3), histogramCount(t, h))
}

// histogramCount is how many answers sipproxy_rtpengine_command_duration_seconds
// observed, over its commands.
func histogramCount(t *testing.T, h *harness) uint64 {
	t.Helper()
	var n uint64
	for _, c := range []string{"offer", "answer", "delete"} {
		o, err := h.p.m.RTPEngineLatency.GetMetricWithLabelValues(c)
		require.NoError(t, err)
		var m dto.Metric
		require.NoError(t, o.(prometheus.Metric).Write(&m))
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

// TestMediaEnds: every way a call ends deletes its media session: CANCEL,
// a failure response, no answer in time, every target refusing, a BYE
// from the callee, and the 12-hour expiry of a call whose BYE never came;
// delete_delay is sent when set.
func TestMediaEnds(t *testing.T) {
	zero := time.Duration(0)
	cases := []struct {
		name  string
		edit  func(*config.Config)
		next  func(req *sip.Request, tx *clientTx)
		drive func(t *testing.T, h *harness, invite *sip.Request, u *upstream)
		delay bool
	}{
		{"cancel", nil, func(req *sip.Request, tx *clientTx) { tx.respondSDP(183, "Session Progress", "callee", calleeSDP) },
			func(t *testing.T, h *harness, invite *sip.Request, u *upstream) {
				require.Equal(t, 100, u.next().StatusCode)
				require.Equal(t, 183, u.next().StatusCode)
				require.NoError(t, u.tx.Receive(cancelOf(invite, "")))
				res := u.next()
				require.Equal(t, 487, res.StatusCode)
				u.ack(res)
			}, false},
		{"busy", func(c *config.Config) { c.RTPEngine.DeleteDelay = &zero },
			func(req *sip.Request, tx *clientTx) { tx.respondSDP(486, "Busy Here", "callee", "") },
			func(t *testing.T, h *harness, invite *sip.Request, u *upstream) {
				res := u.final()
				require.Equal(t, 486, res.StatusCode)
				u.ack(res)
			}, true},
		{"invite timeout", func(c *config.Config) { c.Proxy.InviteTimeout = 100 * time.Millisecond }, nil,
			func(t *testing.T, h *harness, invite *sip.Request, u *upstream) {
				res := u.final()
				require.Equal(t, 408, res.StatusCode)
				u.ack(res)
			}, false},
		{"callee hangs up", nil, func(req *sip.Request, tx *clientTx) { tx.respondSDP(200, "OK", "callee", calleeSDP) },
			func(t *testing.T, h *harness, invite *sip.Request, u *upstream) {
				require.Equal(t, 200, u.final().StatusCode)
				h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respond(200, "OK") }
				bye := h.send(inDialog(t, invite, "BYE", "sip:alice@10.0.0.1:5070", false, ourRoute))
				require.Equal(t, 200, bye.final().StatusCode)
			}, false},
		{"expired", nil, func(req *sip.Request, tx *clientTx) { tx.respondSDP(200, "OK", "callee", calleeSDP) },
			func(t *testing.T, h *harness, invite *sip.Request, u *upstream) {
				require.Equal(t, 200, u.final().StatusCode)
				u.wait()
				require.Equal(t, 1, h.p.Calls.Expire(-time.Second))
			}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, ng := mediaHarness(t, c.edit)
			h.next.answer = c.next
			invite := withSDP(newReq(t, "UDP", "INVITE", "sip:bob@example.com"), callerSDP)
			u := h.send(invite)
			c.drive(t, h, invite, u)
			u.wait()
			var del ngtest.Request
			for i := 0; del.Command() != "delete"; i++ {
				del = ng.Wait(t, i, waitFor)
			}
			want := rtpengine.Dict{"command": "delete", "call-id": invite.CallID().Value(), "from-tag": invite.From().Params.GetOr("tag", "")}
			if c.delay {
				want["delete-delay"] = int64(0)
			}
			assert.Equal(t, want, del.Msg)
			assert.Equal(t, 0, h.p.media.count())
			assert.Len(t, h.callCDRs(), 1, "the call ended")
		})
	}

	t.Run("every target refuses", func(t *testing.T) {
		h, ng := mediaHarness(t, nil)
		h.next.refuse = func(*sip.Request) error { return errRefused }
		invite := withSDP(newReq(t, "UDP", "INVITE", "sip:bob@example.com"), callerSDP)
		u := h.send(invite)
		res := u.final()
		require.Equal(t, 503, res.StatusCode)
		u.ack(res)
		u.wait()
		assert.Equal(t, "delete", ng.Wait(t, 1, waitFor).Command())
	})
}

// TestMediaMode: whether a call is anchored: rtpengine.enabled, a route's
// media key, a handler's Decision.Media; only INVITEs with an SDP body.
func TestMediaMode(t *testing.T) {
	cases := []struct {
		name    string
		enabled bool
		route   string // routes[0].media for carrier.test; "" for none
		handler Media  // with a handler instead of the router, when set
		ct      string // the INVITE's Content-Type line ("" for application/sdp)
		body    string
		offered bool
	}{
		{"enabled", true, "", MediaDefault, "", callerSDP, true},
		{"disabled", false, "", MediaDefault, "", callerSDP, false},
		{"disabled, route anchors", false, config.MediaAnchor, MediaDefault, "", callerSDP, true},
		{"enabled, route direct", true, config.MediaDirect, MediaDefault, "", callerSDP, false},
		{"disabled, handler anchors", false, "", MediaAnchor, "", callerSDP, true},
		{"enabled, handler direct", true, "", MediaDirect, "", callerSDP, false},
		{"no body (late offer)", true, "", MediaDefault, "", "", false},
		{"multipart body", true, "", MediaDefault, "Content-Type: multipart/mixed;boundary=x", "--x\r\n\r\n--x--\r\n", false},
		{"content type with parameters", true, "", MediaDefault, "Content-Type: Application/SDP; charset=utf-8", callerSDP, true},
		{"compact form", true, "", MediaDefault, "c: application/sdp", callerSDP, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, ng := mediaHarness(t, func(cfg *config.Config) {
				cfg.RTPEngine.Enabled = c.enabled
				cfg.Routes = []config.Route{{Match: "carrier.test", Targets: []string{"sip:10.0.0.9"}, Media: c.route}}
			})
			if c.handler != MediaDefault {
				h.p.handler = HandlerFunc(func(context.Context, *Request) Decision {
					u, _ := sipURI("sip:10.0.0.9")
					return Decision{Action: Forward, Targets: []Target{{URI: u, Transport: "udp"}}, Media: c.handler}
				})
			}
			h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respondSDP(200, "OK", "callee", calleeSDP) }
			ct := c.ct
			if ct == "" {
				ct = "Content-Type: application/sdp"
			}
			var hdrs []string
			if c.body != "" {
				hdrs = append(hdrs, ct)
			}
			invite := newReq(t, "UDP", "INVITE", "sip:+4930@carrier.test", hdrs...)
			invite.SetBody([]byte(c.body))
			u := h.send(invite)
			res := u.final()
			require.Equal(t, 200, res.StatusCode)
			u.wait()
			fwd := h.next.request(t, 0)
			if !c.offered {
				assert.Empty(t, ng.Requests(), "no NG command")
				assert.Equal(t, c.body, string(fwd.Body()), "the INVITE as it came")
				assert.Equal(t, calleeSDP, string(res.Body()), "the answer as it came")
				return
			}
			assert.Equal(t, []string{"offer", "answer"}, ng.Commands())
			requireBody(t, fwd, ngtest.SDP(ngtest.FirstPort), "INVITE downstream")
			requireBody(t, res, ngtest.SDP(ngtest.FirstPort+2), "200 upstream")
		})
	}
}

func sipURI(s string) (sip.Uri, error) {
	var u sip.Uri
	err := sip.ParseUri(s, &u)
	return u, err
}

// TestMediaReinvite: a re-INVITE of an anchored call, from either side,
// is offered again (with both tags, From first) and its answer answered;
// a re-INVITE of a call that is not anchored passes untouched.
func TestMediaReinvite(t *testing.T) {
	h, ng := mediaHarness(t, nil)
	h.next.answer = func(req *sip.Request, tx *clientTx) {
		if req.IsInvite() {
			tx.respondSDP(200, "OK", req.To().Params.GetOr("tag", "callee"), calleeSDP2)
			return
		}
		tx.respond(200, "OK")
	}
	invite := withSDP(newReq(t, "UDP", "INVITE", "sip:bob@example.com"), callerSDP)
	u := h.send(invite)
	require.Equal(t, 200, u.final().StatusCode)
	u.wait()
	callerTag := invite.From().Params.GetOr("tag", "")
	require.Len(t, ng.Requests(), 2)

	for i, dir := range []struct {
		fromCaller bool
		ruri       string
		from, to   string
	}{{true, "sip:bob@10.0.0.7:5062", callerTag, "callee"}, {false, "sip:alice@10.0.0.1:5070", "callee", callerTag}} {
		re := withSDP(inDialog(t, invite, "INVITE", dir.ruri, dir.fromCaller, ourRoute, "CSeq: "+strconv.Itoa(10+i)+" INVITE"), callerSDP)
		ru := h.send(re)
		res := ru.final()
		require.Equal(t, 200, res.StatusCode)
		ru.wait()
		offer, answer := ng.Requests()[2+2*i], ng.Requests()[3+2*i]
		assert.Equal(t, "offer", offer.Command())
		assert.Equal(t, dir.from, offer.Msg["from-tag"])
		assert.Equal(t, dir.to, offer.Msg["to-tag"])
		assert.Equal(t, "answer", answer.Command())
		assert.Equal(t, dir.from, answer.Msg["from-tag"])
		assert.Equal(t, dir.to, answer.Msg["to-tag"])
		assert.Equal(t, calleeSDP2, answer.Msg["sdp"])
		requireBody(t, h.next.request(t, 1+i), ngtest.SDP(ngtest.FirstPort+4+4*i), "re-INVITE downstream")
		requireBody(t, res, ngtest.SDP(ngtest.FirstPort+6+4*i), "its 200 upstream")
	}

	// a call that is not anchored: its re-INVITE passes
	other := newReq(t, "UDP", "INVITE", "sip:bob@example.com")
	re := withSDP(inDialog(t, other, "INVITE", "sip:bob@10.0.0.7:5062", true, ourRoute), callerSDP)
	ru := h.send(re)
	res := ru.final()
	require.Equal(t, 200, res.StatusCode)
	ru.wait()
	assert.Len(t, ng.Requests(), 6, "no NG command for it")
	assert.Equal(t, calleeSDP2, string(res.Body()))
}

// TestMediaForks: 183s with SDP from two branches of a fork downstream
// (two To tags) are answered each with its own To tag; the 200 of one of
// them repeats its SDP (no new answer).
func TestMediaForks(t *testing.T) {
	h, ng := mediaHarness(t, nil)
	h.next.answer = func(req *sip.Request, tx *clientTx) {
		if req.IsInvite() {
			tx.respondSDP(183, "Session Progress", "b1", calleeSDP)
			tx.respondSDP(183, "Session Progress", "b2", calleeSDP2)
			tx.respondSDP(200, "OK", "b2", calleeSDP2)
		}
	}
	invite := withSDP(newReq(t, "UDP", "INVITE", "sip:bob@example.com"), callerSDP)
	u := h.send(invite)
	var bodies []string
	for range 3 {
		res := u.next()
		for res.StatusCode == 100 {
			res = u.next()
		}
		bodies = append(bodies, string(res.Body()))
	}
	u.wait()
	assert.Equal(t, []string{ngtest.SDP(ngtest.FirstPort + 2), ngtest.SDP(ngtest.FirstPort + 4), ngtest.SDP(ngtest.FirstPort + 4)}, bodies)
	require.Equal(t, []string{"offer", "answer", "answer"}, ng.Commands())
	assert.Equal(t, "b1", ng.Requests()[1].Msg["to-tag"])
	assert.Equal(t, "b2", ng.Requests()[2].Msg["to-tag"])
}

// TestMediaErrors: the engine refuses or does not answer. With on_error
// pass (the default) the call goes on unanchored: its SDP unchanged both
// ways, nothing answered or deleted, counted; with reject the INVITE gets
// 500. A refused answer relays the response's SDP unchanged.
func TestMediaErrors(t *testing.T) {
	cases := []struct {
		name     string
		handler  ngtest.Handler
		reject   bool
		result   string // commands_total result of the offer
		code     int    // upstream
		passed   bool   // offer: SDP passed unchanged
		rejected bool
	}{
		{"refused, pass", ngtest.Refuse("Failed to parse SDP"), false, "error", 200, true, false},
		{"silent, pass", ngtest.Silent, false, "timeout", 200, true, false},
		{"refused, reject", ngtest.Refuse("Failed to parse SDP"), true, "error", 500, false, true},
		{"silent, reject", ngtest.Silent, true, "timeout", 500, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, ng := mediaHarness(t, func(cfg *config.Config) {
				if c.reject {
					cfg.RTPEngine.OnError = "reject"
				}
			})
			ng.Handle(c.handler)
			h.next.answer = func(req *sip.Request, tx *clientTx) {
				if req.IsInvite() {
					tx.respondSDP(200, "OK", "callee", calleeSDP)
					return
				}
				tx.respond(200, "OK")
			}
			invite := withSDP(newReq(t, "UDP", "INVITE", "sip:bob@example.com"), callerSDP)
			u := h.send(invite)
			res := u.final()
			require.Equal(t, c.code, res.StatusCode)
			assert.Equal(t, 1.0, h.commands("offer", c.result))
			assert.Equal(t, boolFloat(c.passed), counter(h.p.m.RTPEngineUnanchored.WithLabelValues("offer", "passed")))
			assert.Equal(t, boolFloat(c.rejected), counter(h.p.m.RTPEngineUnanchored.WithLabelValues("offer", "rejected")))
			if c.rejected {
				u.ack(res)
				u.wait()
				assert.Empty(t, h.next.requests(), "not forwarded")
				cdrs := h.callCDRs()
				require.Len(t, cdrs, 1)
				assert.EqualValues(t, 500, cdrs[0]["response_code"])
				assert.Equal(t, calls.Error, cdrs[0]["disconnect_initiator"])
				return
			}
			u.wait()
			assert.Equal(t, callerSDP, string(h.next.request(t, 0).Body()))
			assert.Equal(t, calleeSDP, string(res.Body()))
			bye := h.send(inDialog(t, invite, "BYE", "sip:bob@10.0.0.7:5062", true, ourRoute))
			require.Equal(t, 200, bye.final().StatusCode)
			bye.wait()
			assert.Equal(t, []string{"offer"}, uniq(ng.Commands()), "no answer, no delete: nothing anchored")
			assert.Equal(t, 0, h.p.media.count())
		})
	}

	t.Run("answer refused", func(t *testing.T) {
		h, ng := mediaHarness(t, nil)
		ng.Handle(func(r ngtest.Request, n int) rtpengine.Dict {
			if r.Command() == "answer" {
				return rtpengine.Dict{"result": "error", "error-reason": "Unknown call-id"}
			}
			return ng.Engine(r, n)
		})
		h.next.answer = func(req *sip.Request, tx *clientTx) { tx.respondSDP(200, "OK", "callee", calleeSDP) }
		invite := withSDP(newReq(t, "UDP", "INVITE", "sip:bob@example.com"), callerSDP)
		u := h.send(invite)
		res := u.final()
		require.Equal(t, 200, res.StatusCode)
		u.wait()
		assert.Equal(t, calleeSDP, string(res.Body()), "relayed unchanged")
		assert.Equal(t, 1.0, h.commands("answer", "error"))
		assert.Equal(t, 1.0, counter(h.p.m.RTPEngineUnanchored.WithLabelValues("answer", "passed")))
		assert.Equal(t, 1, h.p.media.count(), "the offer holds the call: it is deleted at its end")
	})
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func uniq(s []string) []string {
	var out []string
	for _, v := range s {
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// TestMediaFailover: the instance a new call picks does not answer: the
// offer goes to the next one, which then takes the call's answer and
// delete; the silent one is out of rotation for the next call.
func TestMediaFailover(t *testing.T) {
	dead, live := ngtest.Start(t), ngtest.Start(t)
	dead.Handle(ngtest.Silent)
	h, _ := mediaHarness(t, func(cfg *config.Config) {
		cfg.RTPEngine.Instances = []string{dead.Addr, live.Addr}
		cfg.RTPEngine.Timeout = 200 * time.Millisecond
	})
	h.next.answer = func(req *sip.Request, tx *clientTx) {
		if req.IsInvite() {
			tx.respondSDP(200, "OK", "callee", calleeSDP)
			return
		}
		tx.respond(200, "OK")
	}
	invite := withSDP(newReq(t, "UDP", "INVITE", "sip:bob@example.com"), callerSDP)
	u := h.send(invite)
	res := u.final()
	require.Equal(t, 200, res.StatusCode)
	u.wait()
	requireBody(t, res, ngtest.SDP(ngtest.FirstPort+2), "anchored on the live instance")
	bye := h.send(inDialog(t, invite, "BYE", "sip:bob@10.0.0.7:5062", true, ourRoute))
	require.Equal(t, 200, bye.final().StatusCode)
	live.Wait(t, 2, waitFor)
	assert.Equal(t, []string{"offer", "answer", "delete"}, live.Commands())
	assert.NotEmpty(t, dead.Requests())
	for _, r := range dead.Requests() {
		assert.Equal(t, "offer", r.Command(), "only the offer tried the silent instance")
	}
	assert.Equal(t, 1.0, h.commands("offer", "timeout"))
	assert.Equal(t, 1.0, h.commands("offer", "ok"))
	assert.Equal(t, []string{live.Addr}, h.p.media.client.Order("next-call"), "out of rotation until a ping says up")
}

// TestMediaStray2xx: the callee's retransmitted 200, relayed statelessly
// after the transaction ended, gets the same SDP as the first without
// asking the engine again; a spiral of an anchored call is offered once.
func TestMediaStray2xx(t *testing.T) {
	h, ng := mediaHarness(t, nil)
	h.next.answer = func(req *sip.Request, tx *clientTx) {
		tx.respondSDP(200, "OK", "callee", calleeSDP)
	}
	invite := withSDP(newReq(t, "UDP", "INVITE", "sip:bob@example.com"), callerSDP)
	u := h.send(invite)
	require.Equal(t, 200, u.final().StatusCode)
	u.wait()
	first := h.next.tx(t, 0).req
	require.Len(t, ng.Requests(), 2)

	again := sip.NewResponseFromRequest(first, 200, "OK", []byte(calleeSDP))
	again.To().Params.Add("tag", "callee")
	again.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	up := h.p.strayUpstream(again)
	require.NotNil(t, up)
	requireBody(t, up, ngtest.SDP(ngtest.FirstPort+2), "the retransmission upstream")
	assert.Len(t, ng.Requests(), 2, "answered from memory")

	spiral := withSDP(newReq(t, "UDP", "INVITE", "sip:bob@example.com", "Call-ID: "+invite.CallID().Value(),
		"From: <sip:alice@example.com>;tag="+invite.From().Params.GetOr("tag", "")), ngtest.SDP(ngtest.FirstPort))
	su := h.send(spiral)
	require.Equal(t, 200, su.final().StatusCode)
	su.wait()
	assert.Len(t, ng.Requests(), 2, "the call's SDP is the engine's already: no second offer")
}

// TestMediaDeleteRefused: a delete RTPEngine refuses is counted; it is
// logged unless the engine no longer knows the call (it ended it first,
// after its media timeout say), which is what the delete wanted.
func TestMediaDeleteRefused(t *testing.T) {
	for _, c := range []struct {
		reason string
		warned bool
	}{{"Unknown call-id", false}, {"Internal error", true}} {
		t.Run(c.reason, func(t *testing.T) {
			logs := newRecordHandler(slog.LevelWarn)
			h, ng := mediaHarness(t, nil, func(o *Options) { o.Logger = slog.New(logs) })
			ng.Handle(func(r ngtest.Request, n int) rtpengine.Dict {
				if r.Command() == "delete" {
					return rtpengine.Dict{"result": "error", "error-reason": c.reason}
				}
				return ng.Engine(r, n)
			})
			h.next.answer = func(req *sip.Request, tx *clientTx) {
				if req.IsInvite() {
					tx.respondSDP(200, "OK", "callee", calleeSDP)
					return
				}
				tx.respond(200, "OK")
			}
			invite := withSDP(newReq(t, "UDP", "INVITE", "sip:bob@example.com"), callerSDP)
			u := h.send(invite)
			require.Equal(t, 200, u.final().StatusCode)
			bye := h.send(inDialog(t, invite, "BYE", "sip:bob@10.0.0.7:5062", true, ourRoute))
			require.Equal(t, 200, bye.final().StatusCode)
			ng.Wait(t, 2, waitFor)
			// Whichever handler ends the call starts the delete (bg.Add):
			// the BYE's, or the INVITE's when the BYE got there before the
			// INVITE's handler recorded its 200. Only once both returned
			// may bg.Wait run: an Add from 0 concurrent with a Wait is
			// WaitGroup misuse, which the race detector reported about
			// once in 100 runs.
			u.wait()
			bye.wait()
			h.p.media.bg.Wait() // the delete is done, logged or not
			assert.Equal(t, 1.0, h.commands("delete", "error"))
			warned := false
			for _, r := range logs.records() {
				warned = warned || r.Message == "RTPEngine delete failed"
			}
			assert.Equal(t, c.warned, warned)
		})
	}
}
