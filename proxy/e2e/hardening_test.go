//go:build integration

package e2e

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// readSIP reads one SIP message from a stream: its head, then as many
// body bytes as its Content-Length says.
func readSIP(r *bufio.Reader) (string, error) {
	var head strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return head.String(), err
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	n := 0
	if m := regexp.MustCompile(`(?im)^(?:Content-Length|l):\s*(\d+)`).FindStringSubmatch(head.String()); m != nil {
		n, _ = strconv.Atoi(m[1])
	}
	body := make([]byte, n)
	_, err := io.ReadFull(r, body)
	return head.String() + string(body), err
}

// headerLines returns the lines of msg's head whose header name is one of
// names, in order.
func headerLines(msg string, names ...string) []string {
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	var out []string
	for _, l := range strings.Split(head, "\r\n")[1:] {
		name, _, _ := strings.Cut(l, ":")
		for _, n := range names {
			if strings.EqualFold(strings.TrimSpace(name), n) {
				out = append(out, l)
			}
		}
	}
	return out
}

// answerTo is a UAS's final answer to req (RFC 3261 8.2.6).
func answerTo(req, status string) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + status + "\r\n")
	for _, l := range headerLines(req, "Via", "From", "Call-ID", "CSeq") {
		b.WriteString(l + "\r\n")
	}
	for _, l := range headerLines(req, "To") {
		b.WriteString(l + ";tag=uas\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// exchange writes msg on a datagram socket and returns the answer, "" if
// none came within wait.
func exchange(t *testing.T, c net.Conn, msg string, wait time.Duration) string {
	t.Helper()
	_, err := c.Write([]byte(msg))
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 70000)
	n, _ := c.Read(buf)
	return string(buf[:n])
}

// firstLine is a message's start line.
func firstLine(msg string) string {
	first, _, _ := strings.Cut(msg, "\r\n")
	return first
}

// TestLoopToSelf: a BYE of a dialog whose Request-URI names the proxy was
// forwarded to the proxy itself until Max-Forwards ran out (15 times over
// UDP, 70 over TCP, each an internal request past the rate limit). Now
// each is answered 404 at once, and one to a user at the proxy's own
// address is not sent there: 482.
func TestLoopToSelf(t *testing.T) {
	const n = 100
	p := startProxy(t, proxyOpts{})
	addr := "127.0.0.1:" + strconv.Itoa(p.SIPPort)
	bye := func(nw, local, ruri string, i int) string {
		return fmt.Sprintf("BYE %s SIP/2.0\r\nVia: SIP/2.0/%s %s;rport;branch=z9hG4bK-self-%s-%d\r\n"+
			"From: <sip:alice@127.0.0.1>;tag=a%d\r\nTo: <sip:bob@127.0.0.1>;tag=b%d\r\nCall-ID: self-%s-%d@127.0.0.1\r\nCSeq: 2 BYE\r\n"+
			"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", ruri, strings.ToUpper(nw), local, nw, i, i, i, nw, i)
	}
	for _, nw := range []string{"udp", "tcp"} {
		t.Run(nw, func(t *testing.T) {
			c, err := net.Dial(nw, addr)
			require.NoError(t, err)
			defer c.Close()
			r := bufio.NewReader(c)
			read := func() string {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if nw == "tcp" {
					msg, _ := readSIP(r)
					return msg
				}
				buf := make([]byte, 70000)
				k, _ := c.Read(buf)
				return string(buf[:k])
			}
			suffix := ""
			if nw == "tcp" {
				suffix = ";transport=tcp"
			}
			before := p.scrape(t)
			var codes []string
			for i := range n {
				_, err := c.Write([]byte(bye(nw, c.LocalAddr().String(), "sip:"+addr+suffix, i)))
				require.NoError(t, err)
				codes = append(codes, firstLine(read()))
			}
			assert.Equal(t, []string{"SIP/2.0 404 Not Found"}, compact(codes), "every BYE answered 404")
			after := p.scrape(t)
			require.True(t, after.Has("sipproxy_loops_detected_total", labels{"check": "request_uri"}))
			assert.Equal(t, float64(n), delta(before, after, "sipproxy_loops_detected_total", labels{"check": "request_uri"}))
			assert.Equal(t, float64(n), delta(before, after, "siphon_requests_total", labels{"method": "BYE"}), "no BYE went round")

			_, err = c.Write([]byte(bye(nw, c.LocalAddr().String(), "sip:bob@"+addr+suffix, n)))
			require.NoError(t, err)
			assert.Equal(t, "SIP/2.0 482 Loop Detected", firstLine(read()), "a user at the proxy's address")
			final := p.scrape(t)
			require.True(t, final.Has("sipproxy_loops_detected_total", labels{"check": "target"}))
			assert.Equal(t, 1.0, delta(after, final, "sipproxy_loops_detected_total", labels{"check": "target"}))
			assert.Equal(t, 1.0, delta(after, final, "siphon_requests_total", labels{"method": "BYE"}), "not sent to itself")
		})
	}
}

// TestLoopDetection is RFC 3261 16.3 step 4 over the wire: every domain
// is routed to a stateless peer that routes everything back (a
// misconfiguration on either side). The request comes back once with a
// new Request-URI (a spiral), then unchanged: 482, back along the path,
// after three MESSAGEs instead of 70.
func TestLoopDetection(t *testing.T) {
	peer, err := net.ListenPacket("udp", "127.0.0.3:0")
	require.NoError(t, err)
	defer peer.Close()
	peerAddr := peer.LocalAddr().String()
	p := startProxy(t, proxyOpts{Extra: "routes:\n  - match: \"*\"\n    targets: [\"sip:" + peerAddr + "\"]"})
	proxyAddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p.SIPPort}
	go func() {
		// a stateless proxy: its own Via on requests, off responses
		buf := make([]byte, 70000)
		for n := 0; ; n++ {
			k, _, err := peer.ReadFrom(buf)
			if err != nil {
				return
			}
			msg := string(buf[:k])
			first, rest, _ := strings.Cut(msg, "\r\n")
			if strings.HasPrefix(first, "SIP/2.0 ") {
				_, rest, _ = strings.Cut(rest, "\r\n") // our Via, on top
			} else {
				rest = fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK-peer-%d\r\n", peerAddr, n) + rest
			}
			_, _ = peer.WriteTo([]byte(first+"\r\n"+rest), proxyAddr)
		}
	}()
	ua, err := net.Dial("udp", proxyAddr.String())
	require.NoError(t, err)
	defer ua.Close()
	before := p.scrape(t)
	msg := "MESSAGE sip:carol@elsewhere.test SIP/2.0\r\nVia: SIP/2.0/UDP " + ua.LocalAddr().String() + ";rport;branch=z9hG4bK-loop\r\n" +
		"From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:carol@elsewhere.test>\r\nCall-ID: loop-detection\r\nCSeq: 1 MESSAGE\r\n" +
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	assert.Equal(t, "SIP/2.0 482 Loop Detected", firstLine(exchange(t, ua, msg, 10*time.Second)))
	after := p.scrape(t)
	require.True(t, after.Has("sipproxy_loops_detected_total", labels{"check": "via"}))
	assert.Equal(t, 1.0, delta(before, after, "sipproxy_loops_detected_total", labels{"check": "via"}))
	assert.Equal(t, 3.0, delta(before, after, "siphon_requests_total", labels{"method": "MESSAGE"}), "the caller's, the spiral, the loop")
}

// compact drops consecutive duplicates.
func compact(s []string) []string {
	var out []string
	for _, v := range s {
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// TestLargeAnswer: an answer larger than the UDP MTU went nowhere (sipgo
// refuses UDP messages past 1300 bytes, and said so at debug level only).
// RFC 3261 18.2.2 sends a response over UDP whatever its size (18.1.1:
// every implementation takes up to 65,535 bytes): an OPTIONS with 120
// Vias gets its 200. An answer too large for any datagram is counted and
// the proxy goes on.
func TestLargeAnswer(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(p.SIPPort))
	require.NoError(t, err)
	defer c.Close()
	options := func(vias int, callID string) string {
		var b strings.Builder
		b.WriteString("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + c.LocalAddr().String() + ";rport;branch=z9hG4bK-" + callID + "\r\n")
		for i := range vias {
			fmt.Fprintf(&b, "Via: SIP/2.0/UDP 192.0.2.%d:5060;branch=z9hG4bK-hop-%05d\r\n", i%250+1, i)
		}
		b.WriteString("From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: " + callID + "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
		return b.String()
	}

	req := options(120, "vias-120")
	require.Greater(t, len(req), 1500)
	res := exchange(t, c, req, 5*time.Second)
	require.Equal(t, "SIP/2.0 200 OK", firstLine(res), "answered")
	assert.Len(t, headerLines(res, "Via"), 121, "every Via back")

	before := p.scrape(t)
	// Vias to fill a datagram: the answer adds received, rport, a To
	// tag and Allow, past the 65,507 bytes a datagram carries
	huge := options(1060, "vias-max")
	huge = strings.Replace(huge, "Call-ID: vias-max", "Call-ID: vias-max"+strings.Repeat("x", 65450-len(huge)), 1)
	require.Len(t, huge, 65450)
	assert.Equal(t, "", exchange(t, c, huge, 2*time.Second), "no datagram carries it")
	assert.Equal(t, "SIP/2.0 200 OK", settle(t, c), "the proxy goes on")
	// requests are handled side by side: the marker's answer may come first
	tooLarge := labels{"message": "response", "reason": "too_large"}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		after, err := p.Metrics()
		if assert.NoError(c, err) && assert.True(c, after.Has("sipproxy_send_failures_total", tooLarge)) {
			assert.Equal(c, 1.0, delta(before, after, "sipproxy_send_failures_total", tooLarge))
		}
	}, 5*time.Second, 20*time.Millisecond)
	assert.Eventually(t, func() bool { return strings.Contains(p.Log(), "SIP response not sent") }, 5*time.Second, 20*time.Millisecond,
		"a warning in the log")
}

// TestLargeRequest: a request the proxy forwards that is larger than 1300
// bytes goes to a UDP contact over TCP (RFC 3261 18.1.1), its Via saying
// TCP; to a next hop that takes no TCP, over UDP. sipgo refused to send it
// at all, and the caller got 503.
func TestLargeRequest(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	for _, c := range []struct {
		name string
		tcp  bool // the next hop listens on TCP too
	}{{"to a next hop on UDP and TCP", true}, {"to a next hop on UDP only", false}} {
		t.Run(c.name, func(t *testing.T) {
			port := ports.Port(t)
			udp, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
			require.NoError(t, err)
			defer udp.Close()
			got := make(chan string, 2)
			go func() {
				buf := make([]byte, 70000)
				for {
					n, from, err := udp.ReadFrom(buf)
					if err != nil {
						return
					}
					got <- "UDP " + string(buf[:n])
					_, _ = udp.WriteTo([]byte(answerTo(string(buf[:n]), "200 OK")), from)
				}
			}()
			if c.tcp {
				ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
				require.NoError(t, err)
				defer ln.Close()
				go func() {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					defer conn.Close()
					r := bufio.NewReader(conn)
					for {
						msg, err := readSIP(r)
						if err != nil {
							return
						}
						got <- "TCP " + msg
						_, _ = conn.Write([]byte(answerTo(msg, "200 OK")))
					}
				}()
			}
			user := "big" + strconv.Itoa(port)
			register(t, p, "u1", user, port)

			ua, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(p.SIPPort))
			require.NoError(t, err)
			defer ua.Close()
			body := strings.Repeat("large message ", 200)
			msg := "MESSAGE sip:" + user + "@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + ua.LocalAddr().String() + ";rport;branch=z9hG4bK-big-" + user +
				"\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:" + user + "@127.0.0.1>\r\nCall-ID: big-" + user + "\r\nCSeq: 1 MESSAGE\r\n" +
				"Max-Forwards: 70\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
			assert.Equal(t, "SIP/2.0 200 OK", firstLine(exchange(t, ua, msg, 10*time.Second)))
			var arrived string
			select {
			case arrived = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("the next hop got nothing")
			}
			want := "UDP"
			if c.tcp {
				want = "TCP"
			}
			transport, fwd, _ := strings.Cut(arrived, " ")
			assert.Equal(t, want, transport)
			vias := headerLines(fwd, "Via")
			require.NotEmpty(t, vias)
			assert.True(t, strings.HasPrefix(vias[0], "Via: SIP/2.0/"+want+" 127.0.0.1:"+strconv.Itoa(p.SIPPort)+";"), vias[0])
			assert.True(t, strings.HasSuffix(fwd, body), "the body went whole")
		})
	}
}

// TestDigestReplay: a right Authorization captured off the wire and sent
// again within the nonce's lifetime from another host, with another
// Call-ID and Contact, bound the attacker's contact to the user. Now the
// nonce is bound to the address it was issued to and a REGISTER spends
// it: the replay is challenged again, from anywhere, and binds nothing.
func TestDigestReplay(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "users")
	require.NoError(t, os.WriteFile(creds, []byte("bob:secret\n"), 0o600))
	p := startProxy(t, proxyOpts{Registrar: fmt.Sprintf("registrar: {min_expires: 1, default_expires: 300, credentials: %q, realm: example.com}", creds)})
	proxyAddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p.SIPPort}
	dial := func(ip string) net.Conn {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}, proxyAddr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	register := func(c net.Conn, callID, contact, auth string, cseq int) string {
		msg := "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + c.LocalAddr().String() + ";rport;branch=z9hG4bK-" + callID + strconv.Itoa(cseq) +
			"\r\nFrom: <sip:bob@127.0.0.1>;tag=" + callID + "\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: " + callID + "\r\nCSeq: " + strconv.Itoa(cseq) +
			" REGISTER\r\nContact: <" + contact + ">\r\nExpires: 300\r\nMax-Forwards: 70\r\n"
		if auth != "" {
			msg += "Authorization: " + auth + "\r\n"
		}
		return exchange(t, c, msg+"Content-Length: 0\r\n\r\n", 5*time.Second)
	}
	victim := dial("127.0.0.1")
	res := register(victim, "victim", "sip:bob@127.0.0.1:5999", "", 1)
	require.Equal(t, "SIP/2.0 401 Unauthorized", firstLine(res))
	m := regexp.MustCompile(`WWW-Authenticate: Digest realm="([^"]+)", nonce="([^"]+)"`).FindStringSubmatch(res)
	require.Len(t, m, 3, res)
	md5hex := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	ha1, ha2 := md5hex("bob:"+m[1]+":secret"), md5hex("REGISTER:sip:127.0.0.1")
	auth := fmt.Sprintf(`Digest username="bob", realm="%s", nonce="%s", uri="sip:127.0.0.1", response="%s", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"`,
		m[1], m[2], md5hex(ha1+":"+m[2]+":00000001:c0ffee:auth:"+ha2))
	require.Equal(t, "SIP/2.0 200 OK", firstLine(register(victim, "victim", "sip:bob@127.0.0.1:5999", auth, 2)))

	before := p.scrape(t)
	for _, from := range []string{"127.0.0.2", "127.0.0.1"} {
		res := register(dial(from), "attacker-"+from, "sip:bob@"+from+":6666", auth, 1)
		assert.Equal(t, "SIP/2.0 401 Unauthorized", firstLine(res), "replayed from %s", from)
	}
	code, body := p.Admin("GET", "/admin/registrations/bob@127.0.0.1", "")
	require.Equal(t, 200, code, body)
	assert.Contains(t, body, "sip:bob@127.0.0.1:5999")
	assert.NotContains(t, body, ":6666", "no replay bound its contact")
	assert.Equal(t, 2.0, delta(before, p.scrape(t), "siphon_auth_failures_total", nil))
}
