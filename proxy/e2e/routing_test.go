//go:build integration

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/pki"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// TestStaticRouteFailover routes a number prefix to two upstreams: the
// first takes the INVITE and never answers, the proxy fails over to the
// second after failover_timeout, and the call completes.
func TestStaticRouteFailover(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	got := make(chan string, 16)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := silent.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	dead := silent.LocalAddr().(*net.UDPAddr).Port
	uasPort := ports.Port(t)
	p := startProxy(t, proxyOpts{InviteTimeout: "10s", FailoverTime: "500ms", Extra: fmt.Sprintf(`routes:
  - match: "+49"
    targets: ["sip:127.0.0.1:%d", "sip:127.0.0.1:%d"]`, dead, uasPort)})
	uas := startSipp(t, "uas-answer", "u1", uasPort, "", "-m", "1")
	uac := startSipp(t, "uac-call", "u1", ports.Port(t), "127.0.0.1:"+strconv.Itoa(p.SIPPort), "-m", "1", "-s", "+4930123", "-d", "100")
	uac.Wait()
	uas.Wait()
	rec := p.WaitCDR(uac.CallID(), "INVITE")
	assert.EqualValues(t, 200, rec["response_code"])
	assert.Equal(t, "caller", rec["disconnect_initiator"])
	select {
	case first := <-got:
		assert.Contains(t, first, "INVITE sip:+4930123@127.0.0.1:"+strconv.Itoa(dead), "the first target was tried first, with the caller's number")
	default:
		t.Fatal("the first target never saw the INVITE")
	}
	invites := 0
	for _, m := range uas.Messages() {
		if m.First == "INVITE" && !m.Sent {
			invites++
		}
	}
	assert.Equal(t, 1, invites, "the second target got the call")
}

// TestMaxForwards: an INVITE with Max-Forwards 0 gets 483 and a CDR.
func TestMaxForwards(t *testing.T) {
	p := startProxy(t, proxyOpts{})
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(p.SIPPort))
	require.NoError(t, err)
	defer c.Close()
	local := c.LocalAddr().String()
	_, err = c.Write([]byte("INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + local + ";rport;branch=z9hG4bKmf0\r\n" +
		"From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: loop-1\r\nCSeq: 1 INVITE\r\n" +
		"Max-Forwards: 0\r\nContact: <sip:alice@" + local + ">\r\nContent-Length: 0\r\n\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "SIP/2.0 483 Too Many Hops", readFirstLine(c, true))
	rec := p.WaitCDR("loop-1", "INVITE")
	assert.EqualValues(t, 483, rec["response_code"])
	assert.Equal(t, "error", rec["disconnect_initiator"])
	// the proxy counts an answer once written: the caller may read it first
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m, err := p.Metrics()
		if !assert.NoError(c, err) {
			return
		}
		n, err := m.Value("siphon_responses_total", labels{"code": "483"})
		if assert.NoError(c, err) {
			assert.Equal(c, 1.0, n)
		}
	}, 5*time.Second, 20*time.Millisecond)
}

// TestTLS registers and pings over the TLS listener with a client that
// verifies the proxy's certificate; HEP captures both exchanges.
func TestTLS(t *testing.T) {
	certs := pki.New(t)
	hep := startHEP(t, "udp")
	p := startProxy(t, proxyOpts{TLSCert: certs.ServerCert, TLSKey: certs.ServerKey, HEPEndpoint: hep.Endpoint})
	roots := x509.NewCertPool()
	ca, err := os.ReadFile(certs.CAFile)
	require.NoError(t, err)
	require.True(t, roots.AppendCertsFromPEM(ca))
	c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p.TLSPort), &tls.Config{RootCAs: roots, ServerName: "localhost"})
	require.NoError(t, err)
	defer c.Close()
	local := c.LocalAddr().String()
	send := func(msg string) string {
		_, err := c.Write([]byte(msg))
		require.NoError(t, err)
		return readFirstLine(c, true)
	}
	assert.Equal(t, "SIP/2.0 200 OK", send("REGISTER sips:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS "+local+";branch=z9hG4bKtls1\r\n"+
		"From: <sips:frank@127.0.0.1>;tag=f1\r\nTo: <sips:frank@127.0.0.1>\r\nCall-ID: tls-reg\r\nCSeq: 1 REGISTER\r\n"+
		"Contact: <sips:frank@"+local+">\r\nExpires: 60\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"))
	assert.Equal(t, "SIP/2.0 200 OK", send("OPTIONS sips:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS "+local+";branch=z9hG4bKtls2\r\n"+
		"From: <sips:frank@127.0.0.1>;tag=f2\r\nTo: <sips:127.0.0.1>\r\nCall-ID: tls-opt\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"))
	rec := p.WaitCDR("tls-reg", "REGISTER")
	assert.Equal(t, "tls", rec["transport"])
	code, _ := p.Admin("GET", "/admin/registrations/sips:frank@127.0.0.1", "")
	assert.Equal(t, 200, code)
	for _, id := range []string{"tls-reg", "tls-opt"} {
		require.Eventually(t, func() bool { return len(hep.forCall(id)) == 2 }, 5*time.Second, 20*time.Millisecond, id)
	}
	n, err := p.scrape(t).Value("siphon_connections_active", labels{"transport": "TLS"})
	require.NoError(t, err)
	assert.Equal(t, 1.0, n)
}
