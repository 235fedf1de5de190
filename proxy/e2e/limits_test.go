//go:build integration

package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/pki"
	"github.com/siphon-otel/siphon-otel/internal/testenv/procstat"
)

// limitWait bounds every wait for the proxy to end a connection: far
// longer than the shortened limits the tests configure, so only a proxy
// that never ends it fails.
const limitWait = 20 * time.Second

// ended reads c until the proxy ends it (FIN or reset) and fails the test
// if it has not within limitWait.
func ended(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limitWait))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the proxy did not end the connection from %s within %s", c.LocalAddr(), limitWait)
	}
}

// refused dials addr and fails the test unless the proxy ends the
// connection without a word: the reset may come before connect returns.
func refused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		require.ErrorIs(t, err, syscall.ECONNRESET)
		return
	}
	defer c.Close()
	ended(t, c)
}

// optionsOn is an OPTIONS to the proxy from c (which answers 200).
func optionsOn(c net.Conn, nw, id string) string {
	return "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/" + strings.ToUpper(nw) + " " + c.LocalAddr().String() + ";rport;branch=z9hG4bK-" + id +
		"\r\nFrom: <sip:probe@127.0.0.1>;tag=" + id + "\r\nTo: <sip:127.0.0.1>\r\nCall-ID: " + id +
		"\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
}

// ping sends an OPTIONS on a stream and returns the answer's first line
// ("" when the proxy ended the connection).
func ping(t *testing.T, c net.Conn, r *bufio.Reader, nw, id string) string {
	t.Helper()
	if _, err := c.Write([]byte(optionsOn(c, nw, id))); err != nil {
		return ""
	}
	_ = c.SetReadDeadline(time.Now().Add(limitWait))
	msg, err := readSIP(r)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the proxy neither answered nor hung up on %s", c.LocalAddr())
	return firstLine(msg)
}

// streamUA is a UA on one TCP or TLS connection to the proxy.
type streamUA struct {
	c net.Conn
	r *bufio.Reader
}

func newStreamUA(c net.Conn) *streamUA { return &streamUA{c: c, r: bufio.NewReader(c)} }

// register binds user to this connection (its local address as Contact).
func (u *streamUA) register(t *testing.T, nw, user string) {
	t.Helper()
	local := u.c.LocalAddr().String()
	_, err := u.c.Write([]byte("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/" + strings.ToUpper(nw) + " " + local + ";rport;branch=z9hG4bK-reg-" + user +
		"\r\nFrom: <sip:" + user + "@127.0.0.1>;tag=r-" + user + "\r\nTo: <sip:" + user + "@127.0.0.1>\r\nCall-ID: reg-" + user +
		"\r\nCSeq: 1 REGISTER\r\nContact: <sip:" + user + "@" + local + ";transport=" + nw + ">\r\nExpires: 300\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"))
	require.NoError(t, err)
	_ = u.c.SetReadDeadline(time.Now().Add(limitWait))
	msg, err := readSIP(u.r)
	require.NoError(t, err)
	require.Equal(t, "SIP/2.0 200 OK", firstLine(msg), "REGISTER %s", user)
}

// answerNext reads the next request on the connection and answers it 200.
func (u *streamUA) answerNext(t *testing.T) string {
	t.Helper()
	_ = u.c.SetReadDeadline(time.Now().Add(limitWait))
	req, err := readSIP(u.r)
	require.NoError(t, err)
	_, err = u.c.Write([]byte(answerTo(req, "200 OK")))
	require.NoError(t, err)
	return req
}

// message sends a MESSAGE to user over UDP and returns the answer's first
// line; the callee answers through answer, run beside it.
func message(t *testing.T, p *proxy, user string, answer func()) string {
	t.Helper()
	ua, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(p.SIPPort))
	require.NoError(t, err)
	defer ua.Close()
	id := "msg-" + strconv.FormatInt(markers.Add(1), 10)
	done := make(chan struct{})
	go func() { defer close(done); answer() }()
	res := exchange(t, ua, "MESSAGE sip:"+user+"@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP "+ua.LocalAddr().String()+";rport;branch=z9hG4bK-"+id+
		"\r\nFrom: <sip:alice@127.0.0.1>;tag="+id+"\r\nTo: <sip:"+user+"@127.0.0.1>\r\nCall-ID: "+id+"\r\nCSeq: 1 MESSAGE\r\n"+
		"Max-Forwards: 70\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi", limitWait)
	<-done
	return firstLine(res)
}

// TestConnectionLimit: the TCP listener takes max_connections (4 here)
// and resets each further connection at once, counted; sipproxy took any
// number. A UA registered over one of the four keeps getting its calls,
// the proxy still dials a next hop over TCP (its own connection does not
// count), and a connection that ends frees its slot.
func TestConnectionLimit(t *testing.T) {
	const limit, extra = 4, 10
	hop, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer hop.Close()
	p := startProxy(t, proxyOpts{Extra: fmt.Sprintf("limits: {tcp: {max_connections: %d}}\nroutes:\n  - match: \"+99\"\n    targets: [\"sip:%s;transport=tcp\"]",
		limit, hop.Addr())})
	addr := "127.0.0.1:" + strconv.Itoa(p.SIPPort)

	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	carol := newStreamUA(c)
	carol.register(t, "tcp", "carol")
	var fillers []net.Conn
	for i := range limit - 1 {
		f, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer f.Close()
		require.Equal(t, "SIP/2.0 200 OK", ping(t, f, bufio.NewReader(f), "tcp", "fill-"+strconv.Itoa(i)), "within the limit")
		fillers = append(fillers, f)
	}
	p.waitGauge(t, "siphon_connections_active", labels{"transport": "TCP"}, limit)

	before := p.scrape(t)
	for range extra {
		refused(t, addr)
	}
	after := p.scrape(t)
	tcp := labels{"transport": "TCP"}
	require.True(t, after.Has("sipproxy_connections_refused_total", tcp))
	assert.Equal(t, float64(extra), delta(before, after, "sipproxy_connections_refused_total", tcp), "every refusal counted")
	active, err := after.Value("siphon_connections_active", tcp)
	require.NoError(t, err)
	assert.Equal(t, float64(limit), active, "refused connections never count as open")
	assert.Contains(t, p.Log(), "connection refused: limits.tcp.max_connections open", "a warning in the log")

	assert.Equal(t, "SIP/2.0 200 OK", message(t, p, "carol", func() { carol.answerNext(t) }),
		"the registered UA gets its MESSAGE over its connection")

	// the next hop over TCP, dialled by the proxy with the listener full
	var fromHop string
	assert.Equal(t, "SIP/2.0 200 OK", message(t, p, "+991234", func() {
		_ = hop.(*net.TCPListener).SetDeadline(time.Now().Add(limitWait))
		hc, err := hop.Accept()
		if !assert.NoError(t, err) {
			return
		}
		defer hc.Close()
		fromHop = newStreamUA(hc).answerNext(t)
	}), "a next hop the proxy dials is not refused")
	assert.Contains(t, firstLine(fromHop), "MESSAGE sip:+991234@")
	assert.Equal(t, float64(extra), delta(before, p.scrape(t), "sipproxy_connections_refused_total", tcp))

	require.NoError(t, fillers[0].Close())
	p.waitGauge(t, "siphon_connections_active", tcp, limit-1)
	n, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer n.Close()
	assert.Equal(t, "SIP/2.0 200 OK", ping(t, n, bufio.NewReader(n), "tcp", "freed"), "a freed slot is taken")
}

// TestIdleConnections: with limits.tcp.idle_timeout shortened to 2 s, a
// connection silent since its last message is closed and counted, as is
// one that trickles a message that never ends; one that sends RFC 5626
// CRLF keep-alives stays open past the timeout. sipproxy kept every one.
func TestIdleConnections(t *testing.T) {
	const idle = 2 * time.Second
	p := startProxy(t, proxyOpts{Extra: "limits: {tcp: {idle_timeout: 2s}}"})
	addr := "127.0.0.1:" + strconv.Itoa(p.SIPPort)
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c, bufio.NewReader(c)
	}
	keepAlive, kr := dial()
	silent, sr := dial()
	trickle, _ := dial()
	require.Equal(t, "SIP/2.0 200 OK", ping(t, keepAlive, kr, "tcp", "keep-1"))
	require.Equal(t, "SIP/2.0 200 OK", ping(t, silent, sr, "tcp", "silent-1"))
	before := p.scrape(t)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	every := func(each func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(idle / 10)
			defer tick.Stop()
			for i := range 500 { // bounded: 100 s
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if each(i) != nil {
					return
				}
			}
		}()
	}
	every(func(int) error {
		if _, err := keepAlive.Write([]byte("\r\n\r\n")); err != nil {
			return err
		}
		_ = keepAlive.SetReadDeadline(time.Now().Add(limitWait))
		pong := make([]byte, 2)
		if _, err := io.ReadFull(kr, pong); err != nil {
			return err
		}
		if string(pong) != "\r\n" {
			return fmt.Errorf("pong %q", pong)
		}
		return nil
	})
	head := optionsOn(trickle, "tcp", "trickle")
	every(func(i int) error {
		_, err := trickle.Write([]byte{head[i%40]}) // never the blank line
		return err
	})
	ended(t, silent)
	ended(t, trickle)
	close(stop)
	wg.Wait()

	after := p.scrape(t)
	tcp := labels{"transport": "TCP"}
	require.True(t, after.Has("sipproxy_connections_idle_closed_total", tcp))
	assert.Equal(t, 2.0, delta(before, after, "sipproxy_connections_idle_closed_total", tcp), "the silent and the trickling connection")
	// the keep-alive connection was opened before the silent one, which
	// lasted the idle timeout past its last message
	assert.Equal(t, "SIP/2.0 200 OK", ping(t, keepAlive, kr, "tcp", "keep-2"), "keep-alives kept it open")
	p.waitGauge(t, "siphon_connections_active", tcp, 1)
	assert.Equal(t, 2.0, delta(before, p.scrape(t), "sipproxy_connections_idle_closed_total", tcp))
}

// TestTLSHandshakeTimeout: with limits.tls.handshake_timeout shortened to
// 1 s, a client that opens a TLS connection and sends nothing, and one
// that starts a ClientHello and never finishes it, are cut and counted in
// siphon_handshake_failures_total; sipproxy waited for them forever. A
// real client registers afterwards.
func TestTLSHandshakeTimeout(t *testing.T) {
	certs := pki.New(t)
	p := startProxy(t, proxyOpts{TLSCert: certs.ServerCert, TLSKey: certs.ServerKey, Extra: "limits: {tls: {handshake_timeout: 1s}}"})
	addr := "127.0.0.1:" + strconv.Itoa(p.TLSPort)
	before := p.scrape(t)
	for _, start := range [][]byte{
		nil,
		// a handshake record announcing 512 bytes, and 4 of them
		{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc},
	} {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write(start)
		require.NoError(t, err)
		ended(t, c)
	}
	after := p.scrape(t)
	require.True(t, after.Has("siphon_handshake_failures_total", nil))
	assert.Equal(t, 2.0, delta(before, after, "siphon_handshake_failures_total", nil))
	assert.Contains(t, p.Log(), "TLS handshake failed", "a warning in the log")

	roots := x509.NewCertPool()
	ca, err := os.ReadFile(certs.CAFile)
	require.NoError(t, err)
	require.True(t, roots.AppendCertsFromPEM(ca))
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	require.NoError(t, err)
	defer c.Close()
	newStreamUA(c).register(t, "tls", "dave")
	assert.Equal(t, 2.0, delta(before, p.scrape(t), "siphon_handshake_failures_total", nil), "a real client is no failure")
}

// TestStreamFlood: more connections than the TCP listener takes (5 ×
// max_connections) open at once, then each streams 4 MiB of an endless
// header block or of the body of a message with a giant Content-Length.
// Those beyond the limit are refused, counted; each one taken is cut at
// sipgo's 64 KiB message bound, counted as malformed; and the proxy's
// peak resident memory grows by far less than the bytes offered to it.
// (sipgo v1.7.2 cut the oversized streams already; sipproxy took every
// connection, so the attack's width was not bounded.)
func TestStreamFlood(t *testing.T) {
	const (
		limit   = 20
		conns   = 5 * limit
		perConn = 4 << 20
		chunk   = 16 << 10
		// what the proxy may grow by: each connection taken holds at most
		// sipgo's read buffer, its parser's message and the framer's (64
		// KiB each), a goroutine and socket state; the runtime's GC pacing
		// may double the heap
		maxGrowth = 48 << 20
	)
	p := startProxy(t, proxyOpts{LogLevel: "info", Extra: fmt.Sprintf("limits: {tcp: {max_connections: %d}}", limit)})
	addr := "127.0.0.1:" + strconv.Itoa(p.SIPPort)
	tcp := labels{"transport": "TCP"}

	// warm up the paths the attack takes (a refused and a cut connection),
	// so the baseline holds what any traffic allocates once
	warm, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, _ = warm.Write([]byte("OPTIONS sip:127.0.0.1 SIP/2.0\r\nX: " + strings.Repeat("a", 70000)))
	ended(t, warm)
	warm.Close()
	before := p.scrape(t)
	peak0, err := procstat.PeakRSS(p.Pid())
	require.NoError(t, err)

	// every connection first: the proxy takes the first `limit` (silent,
	// they stay) and refuses the others
	attackers := make([]net.Conn, 0, conns)
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			require.ErrorIs(t, err, syscall.ECONNRESET, "refused before connect returned")
			attackers = append(attackers, nil)
			continue
		}
		defer c.Close()
		attackers = append(attackers, c)
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m, err := p.Metrics()
		if assert.NoError(c, err) {
			assert.Equal(c, float64(conns-limit), delta(before, m, "sipproxy_connections_refused_total", tcp))
		}
	}, limitWait, 20*time.Millisecond, "all but %d refused", limit)

	var wg sync.WaitGroup
	for i, c := range attackers {
		if c == nil {
			continue
		}
		head := "OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
		filler := "X-Flood: " + strings.Repeat("a", 1000) + "\r\n"
		if i%2 == 1 {
			head = "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-flood\r\nContent-Length: 4000000000\r\n\r\n"
			filler = strings.Repeat("b", 1024)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := []byte(head + strings.Repeat(filler, chunk/len(filler)))
			for sent := 0; sent < perConn; sent += len(buf) {
				if _, err := c.Write(buf); err != nil {
					return // cut
				}
				buf = buf[len(head):]
				head = ""
			}
		}()
	}
	for _, c := range attackers {
		if c != nil {
			ended(t, c)
		}
	}
	wg.Wait()

	after := p.scrape(t)
	require.True(t, after.Has("sipproxy_connections_refused_total", tcp))
	assert.Equal(t, float64(conns-limit), delta(before, after, "sipproxy_connections_refused_total", tcp))
	assert.Equal(t, float64(limit), delta(before, after, "siphon_malformed_messages_total", nil), "each connection taken cut once, as malformed")
	peak, err := procstat.PeakRSS(p.Pid())
	require.NoError(t, err)
	t.Logf("peak RSS %.1f MiB before the flood, %.1f MiB after; %d MiB offered on the connections taken",
		float64(peak0)/(1<<20), float64(peak)/(1<<20), limit*perConn>>20)
	assert.Less(t, peak-peak0, int64(maxGrowth), "the proxy's peak resident memory grew by %.1f MiB", float64(peak-peak0)/(1<<20))

	// still serving
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "SIP/2.0 200 OK", ping(t, c, bufio.NewReader(c), "tcp", "after-flood"))
}
