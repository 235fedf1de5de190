package siphoncdrreceiver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/siphon-otel/siphon-otel/internal/syslogmsg"
	"github.com/siphon-otel/siphon-otel/internal/testenv/pki"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// withSyslogTLS adds the syslog TLS listener with the test PKI's server
// certificate; clientCA, if set, requires client certificates from it.
func withSyslogTLS(t *testing.T, cfg *Config, h *harness, certs pki.PKI, clientCA string) {
	h.tls = ports.Addr(t)
	l := cfg.Syslog.Get().TLS.GetOrInsertDefault()
	l.Endpoint = h.tls
	l.CertFile, l.KeyFile, l.ClientCAFile = certs.ServerCert, certs.ServerKey, clientCA
}

// tlsClient is a client trusting the test PKI's CA, with the given client
// certificate (none if certFile is empty).
func tlsClient(t *testing.T, certs pki.PKI, certFile, keyFile string) *tls.Config {
	t.Helper()
	ca, err := os.ReadFile(certs.CAFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(ca))
	c := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		require.NoError(t, err)
		c.Certificates = []tls.Certificate{cert}
	}
	return c
}

// from dials addr from the loopback address src.
func from(src, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: waitFor}
	switch network {
	case "udp":
		d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(src)}
	default:
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return d.Dial(network, addr)
}

// resetAtConnect tells a connection the server reset as soon as it
// accepted it, so fast that the connect itself failed.
func resetAtConnect(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// closedByServer reports whether the server closed c (a read ends in EOF
// or a reset, not in the test's deadline).
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestAllowedSources: with allowed_sources, CDRs from a listed address are
// taken on every listener (HTTP, syslog UDP, TCP, TLS), those from any
// other are refused before a byte is read, each refusal counted. The test
// sends from two loopback addresses, 127.0.0.2 listed, 127.0.0.1 not.
func TestAllowedSources(t *testing.T) {
	certs := pki.New(t)
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	cfg.HTTP.Get().AllowedSources = []string{"127.0.0.2"}
	cfg.Syslog.Get().AllowedSources = []string{"127.0.0.2/32", "10.0.0.0/8"}
	withSyslogTLS(t, cfg, h, certs, "")
	start(t, cfg, h, sink)
	client := tlsClient(t, certs, "", "")

	tests := []struct {
		transport string
		// send delivers one CDR with Call-ID id from src; it reports
		// whether the receiver refused the sender at once
		send func(t *testing.T, src, id string) (refused bool)
	}{
		{transportHTTP, func(t *testing.T, src, id string) bool {
			c, err := from(src, "tcp", h.http)
			if resetAtConnect(err) {
				return true
			}
			require.NoError(t, err)
			defer c.Close()
			_, _ = c.Write(siphonRequest(h.http, "/v1/cdr", "", []byte(withCallID(id))))
			_ = c.SetReadDeadline(time.Now().Add(waitFor))
			b, err := io.ReadAll(c)
			if len(b) == 0 {
				return true
			}
			require.NoError(t, err)
			assert.Contains(t, string(b), "200 OK")
			return false
		}},
		{transportSyslogUDP, func(t *testing.T, src, id string) bool {
			c, err := from(src, "udp", h.udp)
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write([]byte(lineWithCallID(id)))
			require.NoError(t, err)
			return false // UDP cannot tell; the counter does
		}},
		{transportSyslogTCP, func(t *testing.T, src, id string) bool {
			c, err := from(src, "tcp", h.tcp)
			if resetAtConnect(err) {
				return true
			}
			require.NoError(t, err)
			defer c.Close()
			_, _ = c.Write(syslogmsg.AppendOctetCounted(nil, []byte(lineWithCallID(id))))
			if src != "127.0.0.2" {
				return closedByServer(c)
			}
			return false
		}},
		{transportSyslogTLS, func(t *testing.T, src, id string) bool {
			c, err := from(src, "tcp", h.tls)
			if resetAtConnect(err) {
				return true
			}
			require.NoError(t, err)
			tc := tls.Client(c, client.Clone())
			defer tc.Close()
			_ = tc.SetDeadline(time.Now().Add(waitFor))
			if err := tc.Handshake(); err != nil {
				return true
			}
			_, err = tc.Write(syslogmsg.AppendOctetCounted(nil, []byte(lineWithCallID(id))))
			require.NoError(t, err)
			return false
		}},
	}
	for _, tt := range tests {
		t.Run(tt.transport, func(t *testing.T) {
			assert.False(t, tt.send(t, "127.0.0.2", "allowed-"+tt.transport))
			require.Eventually(t, func() bool { return callIDs(sink)["allowed-"+tt.transport] == 1 }, waitFor, time.Millisecond)

			refused := tt.send(t, "127.0.0.1", "refused-"+tt.transport)
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				if tt.transport == transportSyslogUDP {
					assert.Equal(c, int64(1), h.sum(c, "siphon_cdr_receiver_datagrams_refused", tr(tt.transport), reason("not_allowed")))
				} else {
					assert.Equal(c, int64(1), h.sum(c, "siphon_cdr_receiver_connections_rejected", tr(tt.transport), reason("not_allowed")))
				}
			}, waitFor, time.Millisecond)
			if tt.transport != transportSyslogUDP {
				assert.True(t, refused, "closed before a byte was read")
			}
			// what was refused never arrives: a CDR sent after it on an
			// allowed connection does, alone
			assert.False(t, tt.send(t, "127.0.0.2", "after-"+tt.transport))
			require.Eventually(t, func() bool { return callIDs(sink)["after-"+tt.transport] == 1 }, waitFor, time.Millisecond)
			assert.Zero(t, callIDs(sink)["refused-"+tt.transport])
		})
	}
}

// TestSyslogTLSClientCertificates: with client_ca_file, the syslog TLS
// listener (RFC 5425, octet-counted) takes CDRs only from clients with a
// certificate of that CA; the others fail the handshake, counted.
func TestSyslogTLSClientCertificates(t *testing.T) {
	certs, other := pki.New(t), pki.New(t)
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	withSyslogTLS(t, cfg, h, certs, certs.CAFile)
	start(t, cfg, h, sink)
	tests := []struct {
		name              string
		certFile, keyFile string
		accepted          bool
	}{
		{"the CA's client certificate", certs.ClientCert, certs.ClientKey, true},
		{"no certificate", "", "", false},
		{"another CA's certificate", other.ClientCert, other.ClientKey, false},
	}
	var rejected int64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := tlsClient(t, certs, tt.certFile, tt.keyFile)
			c, err := net.Dial("tcp", h.tls)
			require.NoError(t, err)
			tc := tls.Client(c, client)
			defer tc.Close()
			_ = tc.SetDeadline(time.Now().Add(waitFor))
			// TLS 1.3: the client's handshake ends before the server has
			// checked its certificate; the server's verdict comes with the
			// first read
			if err := tc.Handshake(); err == nil {
				_, _ = tc.Write(syslogmsg.AppendOctetCounted(nil, []byte(lineWithCallID(tt.name))))
			}
			if tt.accepted {
				require.Eventually(t, func() bool { return callIDs(sink)[tt.name] == 1 }, waitFor, time.Millisecond)
				return
			}
			_, err = tc.Read(make([]byte, 1))
			assert.Error(t, err)
			rejected++
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.Equal(c, rejected, h.sum(c, "siphon_cdr_receiver_connections_rejected", tr(transportSyslogTLS), reason("tls_handshake")))
			}, waitFor, time.Millisecond)
			assert.Zero(t, callIDs(sink)[tt.name])
		})
	}
	assert.Equal(t, map[string]int{"the CA's client certificate": 1}, callIDs(sink))
}

// TestSyslogIdleConnectionsFreeTheirSlots: a client holding every syslog
// TCP slot without sending locks other senders out (they are closed at
// once, counted as limit), until idle_timeout closes its connections,
// counted; then a sender gets through.
func TestSyslogIdleConnectionsFreeTheirSlots(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	tcp := cfg.Syslog.Get().TCP.Get()
	tcp.MaxConnections, tcp.IdleTimeout = 2, 300*time.Millisecond
	start(t, cfg, h, sink)
	var idle []net.Conn
	for range tcp.MaxConnections {
		c, err := net.Dial("tcp", h.tcp)
		require.NoError(t, err)
		defer c.Close()
		idle = append(idle, c)
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, int64(2), h.sum(c, "siphon_cdr_receiver_connections_active", tr(transportSyslogTCP)))
	}, waitFor, time.Millisecond)
	locked, err := net.Dial("tcp", h.tcp)
	if !resetAtConnect(err) {
		require.NoError(t, err)
		defer locked.Close()
		assert.True(t, closedByServer(locked), "over max_connections: reset at once")
	}
	assert.Equal(t, int64(1), h.sum(t, "siphon_cdr_receiver_connections_rejected", tr(transportSyslogTCP), reason("limit")))

	for _, c := range idle {
		assert.True(t, closedByServer(c), "closed after idle_timeout")
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, int64(2), h.sum(c, "siphon_cdr_receiver_connections_timed_out", tr(transportSyslogTCP)))
		assert.Zero(c, h.sum(c, "siphon_cdr_receiver_connections_active", tr(transportSyslogTCP)))
	}, waitFor, time.Millisecond)
	c, err := net.Dial("tcp", h.tcp)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(syslogCDR("after-idle"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return callIDs(sink)["after-idle"] == 1 }, waitFor, time.Millisecond)
}

// TestHTTPOverTLSHandshakeFailureIsCounted: plain HTTP on the HTTPS
// listener fails the handshake, counted.
func TestHTTPOverTLSHandshakeFailureIsCounted(t *testing.T) {
	certs := pki.New(t)
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	tlsCfg := cfg.HTTP.Get().TLS.GetOrInsertDefault()
	tlsCfg.CertFile, tlsCfg.KeyFile = certs.ServerCert, certs.ServerKey
	start(t, cfg, h, sink)
	_, _, _, _ = post(h.http, siphonRequest(h.http, "/v1/cdr", "", []byte(sample)))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, int64(1), h.sum(c, "siphon_cdr_receiver_connections_rejected", tr(transportHTTP), reason("tls_handshake")))
	}, waitFor, time.Millisecond)
	// a client that would take HTTP/2 if offered
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsClient(t, certs, "", ""), ForceAttemptHTTP2: true}}
	resp, err := client.Post("https://"+h.http+"/v1/cdr", "application/json", strings.NewReader(sample))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "HTTP/1.1", resp.Proto, "ALPN offers http/1.1 only")
	assert.Equal(t, int64(1), h.sum(t, "siphon_cdr_receiver_connections_rejected", tr(transportHTTP)))
}
