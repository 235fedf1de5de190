package siphoncdrreceiver

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/internal/testenv/pki"
)

func outcome(s string) attribute.KeyValue { return attribute.String("outcome", s) }

func syslogCDR(callID string) []byte {
	return []byte(lineWithCallID(callID) + "\n")
}

// TestListenerFailureIsReported takes each listener's socket away under the
// running receiver: the test closes it. To the loop waiting on the socket
// that is what a failure from outside looks like (its accept or read
// returns an error it cannot go on from; for a TCP listener destroyed with
// `ss -K` the error is EINVAL, see streamserver's TestListenerTakenAway),
// and it is no shutdown, which the receiver announces to the loop before
// closing. The receiver must report a permanent error naming the listener
// and its address, count it, serve on with its other listeners and already
// open connections, and shut down cleanly without reporting more.
func TestListenerFailureIsReported(t *testing.T) {
	for _, transport := range []string{transportHTTP, transportSyslogUDP, transportSyslogTCP, transportSyslogTLS} {
		t.Run(transport, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			cfg, h := testConfig(t)
			if transport == transportSyslogTLS {
				withSyslogTLS(t, cfg, h, pki.New(t), "")
			}
			start(t, cfg, h, sink)
			addr := map[string]string{transportHTTP: h.http, transportSyslogUDP: h.udp, transportSyslogTCP: h.tcp, transportSyslogTLS: h.tls}[transport]
			sock := h.r.sockets[transport]
			require.NotNil(t, sock)
			// open before the failure: whichever listener dies, this
			// connection goes on
			survivor, err := net.Dial("tcp", h.tcp)
			require.NoError(t, err)
			defer survivor.Close()
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.Equal(c, int64(1), h.sum(c, "siphon_cdr_receiver_connections_active", tr(transportSyslogTCP)))
			}, waitFor, time.Millisecond)

			require.NoError(t, sock.Close())
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.Len(c, h.host.Events(), 1)
			}, waitFor, time.Millisecond)
			ev := h.host.Events()[0]
			assert.Equal(t, componentstatus.StatusPermanentError, ev.Status())
			assert.ErrorIs(t, ev.Err(), net.ErrClosed)
			assert.ErrorContains(t, ev.Err(), "siphon_cdr receiver: "+transport+" listener on "+addr+" stopped: ")
			assert.Equal(t, int64(1), h.sum(t, "siphon_cdr_receiver_listener_errors", tr(transport), outcome("stopped")))
			assert.Zero(t, h.sum(t, "siphon_cdr_receiver_listener_errors", outcome("retried")))

			_, err = survivor.Write(syslogCDR("after-" + transport))
			require.NoError(t, err)
			require.Eventually(t, func() bool { return sink.LogRecordCount() == 1 }, waitFor, time.Millisecond)
			assert.Equal(t, map[string]int{"after-" + transport: 1}, callIDs(sink))

			h.shutdown(t)
			assert.Len(t, h.host.Events(), 1, "shutdown reports nothing more")
			assert.Equal(t, int64(1), h.sum(t, "siphon_cdr_receiver_listener_errors", tr(transport), outcome("stopped")))
		})
	}
}

// TestShutdownReportsNoStatus runs every listener, with traffic and an open
// connection, and shuts down: no status event, no listener error.
func TestShutdownReportsNoStatus(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	start(t, cfg, h, sink)
	status, _, body := rawPOST(t, h.http, "/v1/cdr", "", withCallID("http"))
	require.Equal(t, http.StatusOK, status, body)
	u, err := net.Dial("udp", h.udp)
	require.NoError(t, err)
	defer u.Close()
	_, err = u.Write(syslogCDR("syslog_udp"))
	require.NoError(t, err)
	c, err := net.Dial("tcp", h.tcp)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(syslogCDR("syslog_tcp"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 3 }, waitFor, time.Millisecond)

	h.shutdown(t)
	assert.Empty(t, h.host.Events())
	assert.Zero(t, h.sum(t, "siphon_cdr_receiver_listener_errors"))
	assert.Equal(t, map[string]int{"http": 1, "syslog_udp": 1, "syslog_tcp": 1}, callIDs(sink))
}
