package core

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/proxy/calls"
	"github.com/siphon-otel/siphon-otel/proxy/config"
	"github.com/siphon-otel/siphon-otel/proxy/metrics"
	"github.com/siphon-otel/siphon-otel/proxy/registrar"
)

// TestAnswers covers the requests the proxy answers itself (process): its
// own OPTIONS, Max-Forwards, missing headers, the routing handler's
// replies and failures, and the CDR of an INVITE answered here.
func TestAnswers(t *testing.T) {
	reply := func(code int, reason string) func(*Options) {
		return func(o *Options) {
			o.Handler = HandlerFunc(func(context.Context, *Request) Decision {
				return Decision{Action: Reply, Status: code, Reason: reason}
			})
		}
	}
	cases := []struct {
		name      string
		opts      []func(*Options)
		setup     func(h *harness)
		req       func(t *testing.T) *sip.Request
		code      int
		headers   map[string]string // on the answer
		malformed float64
		scriptErr float64
		cdr       int // the INVITE's CDR response_code; 0 for none
	}{
		{name: "OPTIONS to the proxy", req: func(t *testing.T) *sip.Request { return newReq(t, "UDP", "OPTIONS", "sip:127.0.0.1:5060") },
			code: 200, headers: map[string]string{"Allow": allowed, "Accept": "application/sdp", "Supported": "path"}},
		{name: "OPTIONS to the proxy by name and default port", req: func(t *testing.T) *sip.Request { return newReq(t, "UDP", "OPTIONS", "sip:127.0.0.1") },
			code: 200},
		{name: "OPTIONS to the domain", req: func(t *testing.T) *sip.Request { return newReq(t, "TCP", "OPTIONS", "sip:example.com") },
			code: 200, headers: map[string]string{"Allow": allowed}},
		{name: "OPTIONS to the proxy with Max-Forwards 0 is answered",
			req: func(t *testing.T) *sip.Request {
				return newReq(t, "UDP", "OPTIONS", "sip:127.0.0.1:5060", "Max-Forwards: 0")
			},
			code: 200},
		{name: "OPTIONS to a user with Max-Forwards 0",
			req: func(t *testing.T) *sip.Request {
				return newReq(t, "UDP", "OPTIONS", "sip:bob@example.com", "Max-Forwards: 0")
			},
			code: 483},
		{name: "INVITE with Max-Forwards 0",
			req: func(t *testing.T) *sip.Request {
				return newReq(t, "UDP", "INVITE", "sip:bob@example.com", "Max-Forwards: 0")
			},
			code: 483, cdr: 483},
		{name: "MESSAGE with Max-Forwards 0",
			req: func(t *testing.T) *sip.Request {
				return newReq(t, "UDP", "MESSAGE", "sip:bob@example.com", "Max-Forwards: 0")
			},
			code: 483},
		{name: "no Call-ID", req: func(t *testing.T) *sip.Request { return newReq(t, "UDP", "INVITE", "sip:bob@example.com", "Call-ID:") },
			code: 400, malformed: 1},
		{name: "no From", req: func(t *testing.T) *sip.Request { return newReq(t, "UDP", "INVITE", "sip:bob@example.com", "From:") },
			code: 400, malformed: 1},
		{name: "no To", req: func(t *testing.T) *sip.Request { return newReq(t, "TCP", "MESSAGE", "sip:bob@example.com", "To:") },
			code: 400, malformed: 1},
		{name: "INVITE for an unknown local user",
			req:  func(t *testing.T) *sip.Request { return newReq(t, "UDP", "INVITE", "sip:nobody@example.com") },
			code: 404, cdr: 404},
		{name: "INVITE for the local domain without a user",
			req:  func(t *testing.T) *sip.Request { return newReq(t, "UDP", "INVITE", "sip:example.com") },
			code: 404, cdr: 404},
		{name: "INVITE for a local user gone a moment ago",
			setup: func(h *harness) {
				aor := registrar.AoR("sip:bob@example.com")
				h.p.Reg.Update(aor, []registrar.Binding{{URI: "sip:bob@10.0.0.7", Expires: 60, Q: 1}}, "r1", 1, "10.0.0.7:5060", "udp", "")
				h.p.Reg.Update(aor, []registrar.Binding{{URI: "sip:bob@10.0.0.7", Expires: 0}}, "r1", 2, "10.0.0.7:5060", "udp", "")
			},
			req:  func(t *testing.T) *sip.Request { return newReq(t, "UDP", "INVITE", "sip:bob@example.com") },
			code: 480, cdr: 480},
		{name: "INVITE for a foreign domain without a route",
			req:  func(t *testing.T) *sip.Request { return newReq(t, "UDP", "INVITE", "sip:bob@elsewhere.test") },
			code: 404, cdr: 404},
		{name: "REGISTER for a foreign domain is routed, not registered",
			req:  func(t *testing.T) *sip.Request { return newReq(t, "UDP", "REGISTER", "sip:elsewhere.test") },
			code: 404},
		{name: "handler replies", opts: []func(*Options){reply(486, "Busy Here")},
			req:  func(t *testing.T) *sip.Request { return newReq(t, "TCP", "INVITE", "sip:bob@example.com") },
			code: 486, cdr: 486},
		{name: "handler forwards to no target", opts: []func(*Options){func(o *Options) {
			o.Handler = HandlerFunc(func(context.Context, *Request) Decision { return Decision{Action: Forward} })
		}},
			req:  func(t *testing.T) *sip.Request { return newReq(t, "UDP", "INVITE", "sip:bob@example.com") },
			code: 500, scriptErr: 1},
		{name: "handler panics", opts: []func(*Options){func(o *Options) {
			o.Handler = HandlerFunc(func(context.Context, *Request) Decision { panic("boom") })
		}},
			req:  func(t *testing.T) *sip.Request { return newReq(t, "UDP", "MESSAGE", "sip:bob@example.com") },
			code: 500, scriptErr: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil, c.opts...)
			if c.setup != nil {
				c.setup(h)
			}
			req := c.req(t)
			u := h.send(req)
			res := u.final()
			assert.Equal(t, c.code, res.StatusCode, res.Reason)
			for k, v := range c.headers {
				assert.Equal(t, v, headerValue(res, k), k)
			}
			u.finish()
			assert.Equal(t, c.malformed, counter(h.p.m.MalformedMessages), "malformed")
			assert.Equal(t, c.scriptErr, counter(h.p.m.ScriptErrors), "script errors")
			assert.Equal(t, 1.0, counter(h.p.m.Requests.WithLabelValues(req.Method.String())))
			assert.Equal(t, 1.0, counter(h.p.m.Responses.WithLabelValues(strconv.Itoa(c.code))))
			assert.Empty(t, h.next.requests(), "nothing forwarded")
			cdrs := h.callCDRs()
			if c.cdr == 0 {
				assert.Empty(t, cdrs)
				return
			}
			require.Len(t, cdrs, 1)
			assert.EqualValues(t, c.cdr, cdrs[0]["response_code"])
			assert.Equal(t, calls.Error, cdrs[0]["disconnect_initiator"], "the proxy answered")
			assert.Equal(t, req.CallID().Value(), cdrs[0]["call_id"])
			assert.Equal(t, "10.0.0.1", cdrs[0]["source_ip"])
		})
	}
}

// TestAckOfFailure: the ACK of a failure the proxy sent ends in the
// INVITE's server transaction, where the proxy counts it and lets go of
// the transaction (onRequest holds it until then).
func TestAckOfFailure(t *testing.T) {
	for _, transport := range []string{"UDP", "TCP"} {
		t.Run(transport, func(t *testing.T) {
			h := newHarness(t, nil)
			u := h.send(newReq(t, transport, "INVITE", "sip:nobody@example.com"))
			res := u.final()
			require.Equal(t, 404, res.StatusCode)
			u.ack(res)
			u.wait()
			assert.Equal(t, 1.0, counter(h.p.m.Requests.WithLabelValues("ACK")))
		})
	}
}

// TestHandlerRequest: what the routing handler is given, and that Wrap
// wraps the default router.
func TestHandlerRequest(t *testing.T) {
	var mu sync.Mutex
	var seen []Request
	wrap := func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, r *Request) Decision {
			mu.Lock()
			seen = append(seen, *r)
			mu.Unlock()
			if r.Recipient.User == "blocked" {
				return Decision{Action: Reply, Status: 403, Reason: "Forbidden"}
			}
			return next.OnRequest(ctx, r)
		})
	}
	h := newHarness(t, nil, func(o *Options) { o.Wrap = wrap })
	for _, c := range []struct {
		transport, ruri string
		code            int
		local           bool
	}{
		{"TCP", "sip:blocked@example.com", 403, true},
		{"UDP", "sip:nobody@example.com", 404, true}, // the router behind the wrapper
		{"TLS", "sip:bob@elsewhere.test", 404, false},
	} {
		u := h.send(newReq(t, c.transport, "MESSAGE", c.ruri))
		assert.Equal(t, c.code, u.final().StatusCode, c.ruri)
		u.finish()
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 3)
	for i, want := range []struct {
		transport string
		local     bool
	}{{"tcp", true}, {"udp", true}, {"tls", false}} {
		assert.Equal(t, want.transport, seen[i].Transport, "lower case")
		assert.Equal(t, want.local, seen[i].Local)
		assert.Equal(t, "10.0.0.1:5070", seen[i].Source)
		assert.Empty(t, seen[i].AuthUser, "no digest auth configured")
	}
	assert.Equal(t, 3.0, counter(h.p.m.ScriptExec.WithLabelValues("on_request")))
}

// TestScannerBlocked: requests from scanning tools get no answer at all
// and are counted; everything else is served.
func TestScannerBlocked(t *testing.T) {
	cases := []struct {
		ua      string
		blocked bool
	}{
		{"friendly-scanner", true},
		{"SIPVicious 0.3.4", true},
		{"sipcli/v1.8", true},
		{"Nmap NSE", true}, // from the list sipkpi had and the proxy lacked
		{"Linphone/5.2", false},
		{"", false},
	}
	for _, c := range cases {
		t.Run(c.ua, func(t *testing.T) {
			h := newHarness(t, nil)
			var hdrs []string
			if c.ua != "" {
				hdrs = append(hdrs, "User-Agent: "+c.ua)
			}
			u := h.send(newReq(t, "UDP", "OPTIONS", "sip:127.0.0.1:5060", hdrs...))
			if !c.blocked {
				assert.Equal(t, 200, u.final().StatusCode)
				u.finish()
				assert.Equal(t, 0.0, counter(h.p.m.ScannerBlocked))
				return
			}
			u.wait()
			select {
			case <-u.tx.Done():
			default:
				t.Error("the transaction of a blocked request is still open")
			}
			assert.Empty(t, u.codes(), "a scanner gets no answer")
			assert.Equal(t, 1.0, counter(h.p.m.ScannerBlocked))
			assert.Equal(t, 1.0, counter(h.p.m.Requests.WithLabelValues("OPTIONS")), "still counted as a request")
		})
	}
}

// TestRateLimit: out-of-dialog requests beyond the per-source burst get
// 503 with Retry-After; other sources and in-dialog requests pass.
func TestRateLimit(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.RequestsPerSecondPerIP = 1
	cfg.Limits.Burst = 2
	h := newHarness(t, cfg)
	clock := h.p.limiter.now()
	h.p.limiter.now = func() time.Time { return clock } // no refill between requests
	h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respond(200, "OK") }

	options := func(source string) *sip.Request {
		r := newReq(t, "UDP", "OPTIONS", "sip:127.0.0.1:5060")
		r.SetSource(source)
		return r
	}
	steps := []struct {
		name string
		req  *sip.Request
		code int
	}{
		{"first", options("10.0.0.1:5070"), 200},
		{"second, the burst", options("10.0.0.1:5071"), 200},
		{"third from the same address", options("10.0.0.1:5070"), 503},
		{"another address", options("10.0.0.2:5070"), 200},
		{"in dialog from the limited address", newReq(t, "UDP", "BYE", "sip:bob@10.0.0.7:5060", "To: <sip:bob@example.com>;tag=b1"), 200},
	}
	for _, s := range steps {
		u := h.send(s.req)
		res := u.final()
		assert.Equal(t, s.code, res.StatusCode, s.name)
		if s.code == 503 {
			assert.Equal(t, "5", headerValue(res, "Retry-After"), s.name)
		}
		u.finish()
	}
	assert.Equal(t, 1.0, counter(h.p.m.RateLimited))
	require.Len(t, h.next.requests(), 1, "the BYE was forwarded")
}

// TestShed: with the handler pool at its ceiling and its queue full, a
// request is shed: over UDP silently (the client retransmits into a new
// transaction), over a stream with 503 (nothing would retransmit).
func TestShed(t *testing.T) {
	cfg := testConfig()
	cfg.Script.SyncPoolSize, cfg.Script.SyncPoolMax, cfg.Script.ExecutorQueueCapacity = 1, 1, 1
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h := newHarness(t, cfg, func(o *Options) {
		o.Handler = HandlerFunc(func(_ context.Context, r *Request) Decision {
			if r.Recipient.User == "slow" {
				entered <- struct{}{}
				<-release
			}
			return Decision{Action: Reply, Status: 404, Reason: "Not Found"}
		})
	})
	defer once.Do(func() { close(release) })

	slow := h.send(newReq(t, "UDP", "MESSAGE", "sip:slow@example.com"))
	<-entered // the only worker is busy
	queued := h.send(newReq(t, "UDP", "MESSAGE", "sip:queued@example.com"))
	// once the queue (1) holds queued, the next ones are shed
	require.Eventually(t, func() bool { return counter(h.p.m.PoolQueue) == 1 }, waitFor, time.Millisecond)
	udp := h.send(newReq(t, "UDP", "MESSAGE", "sip:udp@example.com"))
	udp.wait()
	assert.Empty(t, udp.codes(), "shed over UDP: no answer")
	tcp := h.send(newReq(t, "TCP", "MESSAGE", "sip:tcp@example.com"))
	res := tcp.final()
	assert.Equal(t, 503, res.StatusCode)
	assert.Equal(t, "1", headerValue(res, "Retry-After"))
	assert.Equal(t, 2.0, counter(h.p.m.JobsShed))

	once.Do(func() { close(release) })
	assert.Equal(t, 404, slow.final().StatusCode)
	assert.Equal(t, 404, queued.final().StatusCode, "the queued request ran")
}

// TestDraining: while draining, new out-of-dialog INVITEs get 503 with
// Retry-After drain_secs (and a CDR); everything else goes on.
func TestDraining(t *testing.T) {
	h := newHarness(t, nil)
	h.p.Reg.Update(registrar.AoR("sip:bob@example.com"), []registrar.Binding{{URI: "sip:bob@10.0.0.7:5060", Expires: 600, Q: 1}},
		"r1", 1, "10.0.0.7:5060", "udp", "")
	h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respond(200, "OK") }
	require.False(t, h.p.Draining())
	require.NoError(t, h.p.Drain(context.Background()), "nothing to wait for")
	require.True(t, h.p.Draining())

	cases := []struct {
		name      string
		req       *sip.Request
		code      int
		forwarded bool
	}{
		{"new INVITE", newReq(t, "UDP", "INVITE", "sip:bob@example.com"), 503, false},
		{"re-INVITE in a dialog", newReq(t, "UDP", "INVITE", "sip:bob@10.0.0.7:5060", "To: <sip:bob@example.com>;tag=b1"), 200, true},
		{"BYE", newReq(t, "UDP", "BYE", "sip:bob@10.0.0.7:5060", "To: <sip:bob@example.com>;tag=b1"), 200, true},
		{"out-of-dialog MESSAGE", newReq(t, "UDP", "MESSAGE", "sip:bob@example.com"), 200, true},
		{"OPTIONS to the proxy", newReq(t, "UDP", "OPTIONS", "sip:127.0.0.1:5060"), 200, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(h.next.requests())
			u := h.send(c.req)
			res := u.final()
			assert.Equal(t, c.code, res.StatusCode)
			if c.code == 503 {
				assert.Equal(t, "30", headerValue(res, "Retry-After"), "server.drain_secs")
			}
			u.finish()
			assert.Equal(t, c.forwarded, len(h.next.requests()) > before, "forwarded")
		})
	}
	cdrs := h.callCDRs()
	require.Len(t, cdrs, 1, "the refused INVITE has its CDR")
	assert.EqualValues(t, 503, cdrs[0]["response_code"])
}

// TestDrainWaits: Drain returns when no call is open and no request is
// being handled, or when its context ends.
func TestDrainWaits(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	t.Run("open call", func(t *testing.T) {
		h := newHarness(t, nil)
		h.p.Calls.Invite(calls.Call{CallID: "c1", FromTag: "f1"})
		assert.ErrorIs(t, h.p.Drain(cancelled), context.Canceled, "a call is open")
		h.p.Calls.Final("c1", "f1", 486, "", "", false)
		assert.NoError(t, h.p.Drain(cancelled), "the call ended")
	})
	t.Run("request being handled", func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		h := newHarness(t, nil, func(o *Options) {
			o.Handler = HandlerFunc(func(context.Context, *Request) Decision {
				close(entered)
				<-release
				return Decision{Action: Reply, Status: 404, Reason: "Not Found"}
			})
		})
		u := h.send(newReq(t, "TCP", "MESSAGE", "sip:bob@example.com"))
		<-entered
		assert.ErrorIs(t, h.p.Drain(cancelled), context.Canceled, "a request is in flight")
		drained := make(chan error, 1)
		go func() { drained <- h.p.Drain(context.Background()) }()
		close(release)
		assert.Equal(t, 404, u.final().StatusCode)
		select {
		case err := <-drained:
			assert.NoError(t, err)
		case <-time.After(waitFor):
			t.Fatal("Drain did not return after the last request")
		}
	})
}

// TestNewErrors: configuration New refuses.
func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	cases := []struct {
		name string
		edit func(c *config.Config)
		want string
	}{
		{"credentials file missing", func(c *config.Config) { c.Registrar.Credentials = filepath.Join(dir, "nope") }, "digest:"},
		{"CA file missing", func(c *config.Config) { c.TLS.CAFile = filepath.Join(dir, "nope.pem") }, "core: tls.ca_file"},
		{"CA file without a certificate", func(c *config.Config) { c.TLS.CAFile = notPEM }, "no PEM certificate"},
		{"rtpengine instance not an address", func(c *config.Config) { c.RTPEngine.Instances = []string{"127.0.0.1:99999"} }, "core: rtpengine:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			c.edit(cfg)
			_, err := New(Options{Config: cfg, Metrics: metrics.New(), Logger: discard})
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}
