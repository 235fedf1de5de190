package hepreceiver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/internal/testenv/pki"
)

// allListeners configures UDP, TCP and TLS on loopback.
func allListeners(t *testing.T) (*Config, *tls.Config) {
	certs := pki.New(t)
	cfg := testConfig()
	tc := cfg.TLS.GetOrInsertDefault()
	tc.Endpoint = "127.0.0.1:0"
	tc.CertFile, tc.KeyFile = certs.ServerCert, certs.ServerKey
	caPEM, err := os.ReadFile(certs.CAFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	return cfg, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// addrOf is the address a listening socket is bound to.
func addrOf(t *testing.T, sock io.Closer) string {
	switch s := sock.(type) {
	case net.Listener:
		return s.Addr().String()
	case net.PacketConn:
		return s.LocalAddr().String()
	}
	t.Fatalf("%T is no listening socket", sock)
	return ""
}

func outcome(s string) attribute.KeyValue { return attribute.String("outcome", s) }

// TestListenerFailureIsReported takes each listener's socket away under the
// running receiver: the test closes it. To the loop waiting on the socket
// that is what a failure from outside looks like (its accept or read
// returns an error it cannot go on from; for a TCP listener destroyed with
// `ss -K` the error is EINVAL, see streamserver's TestListenerTakenAway and
// distro's TestHEPListenerKilled), and it is no shutdown, which the
// receiver announces to the loop before closing. The receiver must report
// a permanent error naming the listener and its address, count it, serve
// on with its other listeners and already open connections, and shut down
// cleanly without reporting more.
func TestListenerFailureIsReported(t *testing.T) {
	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			cfg, _ := allListeners(t)
			h := start(t, cfg, sink)
			sock := h.r.sockets[transport]
			require.NotNil(t, sock)
			addr := addrOf(t, sock)
			// open before the failure: whichever listener dies, this
			// connection goes on
			survivor, err := net.Dial("tcp", addrOf(t, h.r.sockets["tcp"]))
			require.NoError(t, err)
			defer survivor.Close()
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.Equal(c, int64(1), h.counter(c, "hep_receiver_connections_active", tr("tcp")))
			}, waitFor, time.Millisecond)

			require.NoError(t, sock.Close())
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.Len(c, h.host.Events(), 1)
			}, waitFor, time.Millisecond)
			ev := h.host.Events()[0]
			assert.Equal(t, componentstatus.StatusPermanentError, ev.Status())
			assert.ErrorIs(t, ev.Err(), net.ErrClosed)
			assert.ErrorContains(t, ev.Err(), "hep receiver: "+transport+" listener on "+addr+" stopped: ")
			assert.Equal(t, int64(1), h.counter(t, "hep_receiver_listener_errors", tr(transport), outcome("stopped")))
			assert.Zero(t, h.counter(t, "hep_receiver_listener_errors", outcome("retried")))

			_, err = survivor.Write(sipHEP(t, "after-"+transport, 1))
			require.NoError(t, err)
			require.Eventually(t, func() bool { return sink.LogRecordCount() == 1 }, waitFor, time.Millisecond)
			assert.Equal(t, map[string]int{"after-" + transport: 1}, callIDs(sink))

			require.NoError(t, h.shutdown(context.Background()))
			assert.Len(t, h.host.Events(), 1, "shutdown reports nothing more")
			assert.Equal(t, int64(1), h.counter(t, "hep_receiver_listener_errors", tr(transport), outcome("stopped")))
		})
	}
}

// TestShutdownReportsNoStatus runs every listener, with traffic and open
// connections, and shuts down: no status event, no listener error.
func TestShutdownReportsNoStatus(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg, clientTLS := allListeners(t)
	h := start(t, cfg, sink)
	u, err := net.Dial("udp", addrOf(t, h.r.sockets["udp"]))
	require.NoError(t, err)
	defer u.Close()
	_, err = u.Write(sipHEP(t, "udp", 1))
	require.NoError(t, err)
	c, err := net.Dial("tcp", addrOf(t, h.r.sockets["tcp"]))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(sipHEP(t, "tcp", 1))
	require.NoError(t, err)
	s, err := tls.Dial("tcp", addrOf(t, h.r.sockets["tls"]), clientTLS)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Write(sipHEP(t, "tls", 1))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 3 }, waitFor, time.Millisecond)

	require.NoError(t, h.shutdown(context.Background()))
	assert.Empty(t, h.host.Events())
	assert.Zero(t, h.counter(t, "hep_receiver_listener_errors"))
	assert.Equal(t, map[string]int{"udp": 1, "tcp": 1, "tls": 1}, callIDs(sink))
}
