//go:build integration

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/rtpengine"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipp"
	"github.com/siphon-otel/siphon-otel/receivers/siphoncdrreceiver"
)

// register binds user to a contact at contactPort (expires 300).
func register(t *testing.T, p *proxy, transport, user string, contactPort int) {
	t.Helper()
	startSipp(t, "register", transport, ports.Port(t), "127.0.0.1:"+strconv.Itoa(p.SIPPort), "-m", "1",
		"-key", "user", user, "-key", "contact_port", strconv.Itoa(contactPort), "-key", "expires", "300").Wait()
}

// TestDigestRegister registers against a credentials file with sipp
// answering the challenge; a wrong password gets 403 and is counted.
func TestDigestRegister(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "users")
	require.NoError(t, os.WriteFile(creds, []byte("# test users\nbob:secret\n"), 0o600))
	p := startProxy(t, proxyOpts{Registrar: fmt.Sprintf("registrar: {min_expires: 1, default_expires: 300, credentials: %q, realm: example.com}", creds)})
	target := "127.0.0.1:" + strconv.Itoa(p.SIPPort)

	before := p.scrape(t)
	ok := startSipp(t, sipp.Expect(t, "register-auth", 200), "u1", ports.Port(t), target, "-m", "1",
		"-au", "bob", "-ap", "secret", "-key", "user", "bob", "-key", "contact_port", "5999", "-key", "expires", "60")
	ok.Wait()
	rec := p.WaitCDR(ok.CallID(), "REGISTER")
	assert.Equal(t, "bob", rec["auth_user"])
	assert.Equal(t, "registered", rec["reg_event"])
	code, _ := p.Admin("GET", "/admin/registrations/bob@127.0.0.1", "")
	assert.Equal(t, 200, code)

	bad := startSipp(t, sipp.Expect(t, "register-auth", 403), "u1", ports.Port(t), target, "-m", "1",
		"-au", "bob", "-ap", "guess", "-key", "user", "bob", "-key", "contact_port", "5998", "-key", "expires", "60")
	bad.Wait()
	after := p.scrape(t)
	assert.Equal(t, 1.0, delta(before, after, "siphon_auth_failures_total", nil), "one wrong password")
	assert.Equal(t, 2.0, delta(before, after, "siphon_responses_total", labels{"code": "401"}))
	assert.Equal(t, 1.0, delta(before, after, "siphon_responses_total", labels{"code": "403"}))
	active, err := after.Value("siphon_registrations_active", nil)
	require.NoError(t, err)
	assert.Equal(t, 1.0, active, "the wrong password bound nothing")
}

// TestMalformed sends garbage, broken and huge messages over UDP and TCP
// and a sipvicious scan: every one is counted, none crashes the proxy, and
// a call through it still works afterwards.
func TestMalformed(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	addr := "127.0.0.1:" + strconv.Itoa(p.SIPPort)
	// rport: answer where the request came from
	options := func(nw, extra string) string {
		return "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/" + strings.ToUpper(nw) + " 127.0.0.1:5999;rport;branch=z9hG4bK" + nw +
			"\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: big-" + nw + "\r\nCSeq: 1 OPTIONS\r\n" + extra + "Content-Length: 0\r\n\r\n"
	}
	tests := []struct {
		name      string
		payload   func(nw string) string
		malformed bool   // counted as malformed
		reply     string // first line of the answer, "" for none
	}{
		{"text garbage", func(string) string { return "garbage\r\n\r\n" }, true, ""},
		{"binary", func(string) string { return string([]byte{0, 1, 2, 3, 0xff, 0xfe, 10, 13, 10, 13, 10, 9, 9, 9, 9}) }, true, ""},
		{"http request", func(string) string { return "GET / HTTP/1.1\r\nHost: x\r\n\r\n" }, true, ""},
		{"no Call-ID", func(string) string {
			return "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@x>\r\nContent-Length: 0\r\n\r\n"
		}, true, "SIP/2.0 400 Bad Request"},
		{"bad CSeq", func(string) string {
			return "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK2\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: x1\r\nCSeq: abc OPTIONS\r\nContent-Length: 0\r\n\r\n"
		}, true, ""},
		// legal though large: answered, not counted
		{"60 KB header", func(nw string) string { return options(nw, "X-Big: "+strings.Repeat("a", 60000)+"\r\n") }, false, "SIP/2.0 200 OK"},
	}
	for _, nw := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(nw+"/"+tt.name, func(t *testing.T) {
				before := p.scrape(t)
				c, err := net.Dial(nw, addr)
				require.NoError(t, err)
				defer c.Close()
				_, err = c.Write([]byte(tt.payload(nw)))
				require.NoError(t, err)
				if tt.reply != "" {
					assert.Equal(t, tt.reply, readFirstLine(c, true))
				}
				// a marker behind the payload: the next answer is the
				// marker's, or the proxy closed a TCP connection it could
				// not parse; either way it is done with the payload
				next := settle(t, c)
				if nw == "tcp" && next == "" {
					assert.True(t, tt.malformed, "only a malformed message closes the connection")
				} else {
					assert.Equal(t, "SIP/2.0 200 OK", next, "the proxy answered nothing else")
				}
				want := 0.0
				if tt.malformed {
					want = 1
				}
				assert.Equal(t, want, delta(before, p.scrape(t), "siphon_malformed_messages_total", nil), "counted once")
			})
		}
	}
	t.Run("tcp/unterminated 100 KB header", func(t *testing.T) {
		before := p.scrape(t)
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		_, _ = c.Write([]byte("OPTIONS sip:127.0.0.1 SIP/2.0\r\nX-Big: " + strings.Repeat("a", 100_000)))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 10))
		// it counts before it closes: once closed, the count is final
		assert.True(t, closedByPeer(err), "the proxy closes the connection past 64 KiB: %v", err)
		assert.Equal(t, 1.0, delta(before, p.scrape(t), "siphon_malformed_messages_total", nil), "counted once")
	})
	t.Run("sipvicious", func(t *testing.T) {
		before := p.scrape(t)
		out, err := testenv.Run(t, childproc.Spec{Path: "svmap", Args: []string{"-p" + strconv.Itoa(p.SIPPort), "-P", strconv.Itoa(ports.Port(t)), "-t", "1", "127.0.0.1"}})
		require.NoError(t, err, "%s", out)
		assert.Contains(t, out, "found nothing", "a scanner learns nothing")
		// the marker comes after every scan message on the proxy's socket
		c, err := net.Dial("udp", addr)
		require.NoError(t, err)
		defer c.Close()
		require.Equal(t, "SIP/2.0 200 OK", settle(t, c))
		// the proxy counts an answer once written: the marker's 200 may be
		// read before it is counted
		var after exposition.Families
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			var err error
			after, err = p.Metrics()
			if assert.NoError(c, err) {
				assert.Equal(c, float64(markerResponses), delta(before, after, "siphon_responses_total", labels{"code": "200"}))
			}
		}, 10*time.Second, 20*time.Millisecond)
		blocked := delta(before, after, "siphon_scanner_blocked_total", nil)
		assert.GreaterOrEqual(t, blocked, 1.0)
		assert.Equal(t, blocked+markerResponses, delta(before, after, "siphon_requests_total", labels{"method": "OPTIONS"}), "every scanner OPTIONS blocked")
		assert.Equal(t, float64(markerResponses), delta(before, after, "siphon_responses_total", labels{"code": "200"}), "no 200 but the marker's")
	})

	// still serving
	uasPort := ports.Port(t)
	uas := startSipp(t, "uas-answer", "u1", uasPort, "", "-m", "1")
	register(t, p, "u1", "after-abuse", uasPort)
	startSipp(t, "uac-call", "u1", ports.Port(t), addr, "-m", "1", "-s", "after-abuse", "-d", "100").Wait()
	uas.Wait()
}

// readFirstLine returns the first line the proxy answers, or "" when it
// says nothing (for a short while) or closes the connection.
func readFirstLine(c net.Conn, expectReply bool) string {
	wait := 300 * time.Millisecond
	if expectReply {
		wait = 5 * time.Second
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 70000)
	n, _ := c.Read(buf)
	first, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return first
}

// TestDrain is SIPhon's SIGTERM drain: ready turns 503, new INVITEs get
// 503, the call in progress finishes, and the proxy exits once idle, well
// before drain_secs.
func TestDrain(t *testing.T) {
	p := startProxy(t, proxyOpts{DrainSecs: 30})
	target := "127.0.0.1:" + strconv.Itoa(p.SIPPort)
	uasPort := ports.Port(t)
	uas := startSipp(t, "uas-answer", "u1", uasPort, "", "-m", "1")
	register(t, p, "u1", "held", uasPort)
	held := startSipp(t, "uac-call", "u1", ports.Port(t), target, "-m", "1", "-s", "held", "-d", "3000")
	p.waitGauge(t, "siphon_dialogs_active", nil, 1)

	require.NoError(t, p.Signal(syscall.SIGTERM))
	sent := time.Now()
	require.Eventually(t, func() bool { code, _ := p.Admin("GET", "/admin/ready", ""); return code == 503 }, 5*time.Second, 20*time.Millisecond)
	code, body := p.Admin("GET", "/admin/ready", "")
	assert.Equal(t, `{"status":"draining"}`, body)
	code, body = p.Admin("GET", "/admin/health", "")
	assert.Equal(t, 200, code, "health stays 200 while draining: %s", body)

	// a new call is refused; the held one goes on
	refused := startSipp(t, failScenario(t, 503), "u1", ports.Port(t), target, "-m", "1", "-s", "held")
	refused.Wait()
	require.False(t, p.Exited(), "the proxy exited with a call up")
	held.Wait() // its BYE went through the draining proxy
	uas.Wait()
	rec := p.WaitCDR(held.CallID(), "INVITE")
	assert.Equal(t, "caller", rec["disconnect_initiator"])
	assert.EqualValues(t, 200, rec["response_code"])
	rec = p.WaitCDR(refused.CallID(), "INVITE")
	assert.EqualValues(t, 503, rec["response_code"])

	// Wait past drain_secs, so that an exit at the deadline is seen as
	// one: it would come 30 s after the SIGTERM and log that calls were
	// still up.
	err := p.Wait(40*time.Second - time.Since(sent))
	require.True(t, p.Exited(), "the proxy did not exit once idle: %v", err)
	assert.NoError(t, err, "clean exit")
	assert.Less(t, time.Since(sent), 30*time.Second, "left when idle, not at drain_secs")
	assert.NotContains(t, p.Log(), "drain deadline reached", "left when idle, not at drain_secs")
}

// startCDRReceiver runs our siphon_cdr receiver (the collector's CDR
// input) on addr.
func startCDRReceiver(t *testing.T, addr string) (*consumertest.LogsSink, func()) {
	t.Helper()
	f := siphoncdrreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*siphoncdrreceiver.Config)
	cfg.HTTP.GetOrInsertDefault().NetAddr.Endpoint = addr
	cfg.Batch.Timeout = 20 * time.Millisecond
	require.NoError(t, cfg.Validate())
	sink := &consumertest.LogsSink{}
	r, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			require.NoError(t, r.Shutdown(context.Background()))
		}
	}
	t.Cleanup(stop)
	return sink, stop
}

func cdrCallIDs(sink *consumertest.LogsSink) map[string]int {
	out := map[string]int{}
	for _, ld := range sink.AllLogs() {
		for _, r := range record.All(ld) {
			lr := r.Log
			if lr.EventName() != record.EventCDR {
				continue
			}
			if v, ok := lr.Attributes().Get(record.AttrSIPCallID); ok {
				out[v.Str()]++
			}
		}
	}
	return out
}

// runCalls places n answered calls at rate per second and returns sipp's
// UAC.
func runCalls(t *testing.T, p *proxy, user string, n, rate int) *sipp.Sipp {
	t.Helper()
	uasPort := ports.Port(t)
	uas := startSipp(t, "uas-answer", "u1", uasPort, "", "-m", strconv.Itoa(n))
	register(t, p, "u1", user, uasPort)
	uac := startSipp(t, "uac-call", "u1", ports.Port(t), "127.0.0.1:"+strconv.Itoa(p.SIPPort),
		"-m", strconv.Itoa(n), "-r", strconv.Itoa(rate), "-s", user, "-d", "50")
	uac.Wait() // exit 0: every call succeeded
	uas.Wait()
	return uac
}

// TestCDRCollectorRestart: with cdr.http.retry, CDRs made while the
// collector is down arrive once it is back, each exactly once.
func TestCDRCollectorRestart(t *testing.T) {
	addr := ports.Addr(t)
	p := startProxy(t, proxyOpts{CDR: fmt.Sprintf(`cdr:
  enabled: true
  auto_emit: true
  backend: http
  channel_size: 100
  http: {url: "http://%s/v1/cdr", retry: true, retry_for: 1m, timeout: 2s}`, addr)})
	const calls = 10
	runCalls(t, p, "restart", calls, 20)
	written, err := p.scrape(t).Value("siphon_cdr_written_total", nil)
	require.NoError(t, err)
	assert.Zero(t, written, "nothing delivered while the collector is down")

	sink, _ := startCDRReceiver(t, addr)
	require.Eventually(t, func() bool { return len(cdrCallIDs(sink)) == calls }, 30*time.Second, 50*time.Millisecond)
	for id, n := range cdrCallIDs(sink) {
		assert.Equal(t, 1, n, "CDR %s delivered once", id)
	}
	p.waitGauge(t, "siphon_cdr_written_total", nil, calls)
	assert.Zero(t, count(p.scrape(t), "siphon_cdr_dropped_total", nil), "no CDR dropped")
}

// TestCDRCollectorHangs: a collector that accepts and never answers, no
// retry, a tiny channel: every call still completes, and every CDR is
// either written or counted as dropped.
func TestCDRCollectorHangs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // read, never answer, until the proxy gives up
				defer c.Close()
				_, _ = c.Read(make([]byte, 65536))
				_ = c.SetReadDeadline(time.Now().Add(time.Minute))
				_, _ = c.Read(make([]byte, 1))
			}()
		}
	}()
	p := startProxy(t, proxyOpts{CDR: fmt.Sprintf(`cdr:
  enabled: true
  auto_emit: true
  backend: http
  channel_size: 2
  http: {url: "http://%s/v1/cdr", timeout: 1s}`, ln.Addr())})
	const calls = 20
	runCalls(t, p, "hang", calls, 20)
	// every CDR written or dropped, and the drops are the channel's
	var m exposition.Families
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var err error
		m, err = p.Metrics()
		if !assert.NoError(c, err) {
			return
		}
		assert.Equal(c, float64(calls), count(m, "siphon_cdr_written_total", nil)+count(m, "siphon_cdr_dropped_total", nil),
			"CDRs written + dropped")
	}, 30*time.Second, 50*time.Millisecond)
	assert.Positive(t, count(m, "siphon_cdr_dropped_total", labels{"reason": "channel_full"}), "the channel bound was hit")
	assert.Zero(t, count(m, "siphon_cdr_written_total", nil))
	p.waitGauge(t, "siphon_cdr_sessions", nil, 0)
}

// TestRTPEngineHealth points the proxy at Debian's rtpengine and at an
// address where nothing answers, then kills rtpengine.
func TestRTPEngineHealth(t *testing.T) {
	d := rtpengine.Start(t, 30200, 30300)
	ng := d.Addr
	dead := ports.Addr(t)

	p := startProxy(t, proxyOpts{Extra: fmt.Sprintf("rtpengine: {instances: [%q, %q], ping_interval: 200ms}", ng, dead)})
	p.waitGauge(t, "siphon_rtpengine_instances_total", nil, 2)
	p.waitGauge(t, "siphon_rtpengine_instances_up", nil, 1)
	p.waitGauge(t, "siphon_rtpengine_instance_up", labels{"address": ng}, 1)
	p.waitGauge(t, "siphon_rtpengine_instance_up", labels{"address": dead}, 0)

	d.Kill()
	p.waitGauge(t, "siphon_rtpengine_instances_up", nil, 0)
	p.waitGauge(t, "siphon_rtpengine_instance_up", labels{"address": ng}, 0)
}

// TestAdminAuth checks the token rules on the real binary: reads open,
// a DELETE needs the bearer token and then removes the bindings.
func TestAdminAuth(t *testing.T) {
	p := startProxy(t, proxyOpts{AdminToken: "t0ken"})
	register(t, p, "u1", "erin", 5997)
	code, body := p.Admin("GET", "/admin/stats", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"registrations_active":1}`)
	code, body = p.Admin("DELETE", "/admin/registrations/erin@127.0.0.1", "")
	assert.Equal(t, 401, code)
	assert.Equal(t, `{"error":"unauthorized"}`, body)
	code, _ = p.Admin("DELETE", "/admin/registrations/erin@127.0.0.1", "wrong")
	assert.Equal(t, 401, code)
	code, body = p.Admin("DELETE", "/admin/registrations/erin@127.0.0.1", "t0ken")
	assert.Equal(t, 200, code)
	assert.Equal(t, `{"status":"removed","aor":"sip:erin@127.0.0.1"}`, body)
	p.waitGauge(t, "siphon_registrations_active", nil, 0)
	code, body = p.Admin("GET", "/admin/registrations", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, "[]", body)
	code, _ = p.Admin("GET", "/metrics", "")
	assert.Equal(t, 200, code, "the admin port serves /metrics too")
}
