package hepreceiver

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/siphon-otel/siphon-otel/internal/hep"
)

// streamListeners configures TCP and TLS with the given limits, and
// returns the client TLS settings.
func streamListeners(t *testing.T, maxConns int, idle time.Duration) (*Config, *tls.Config) {
	cfg, clientTLS := allListeners(t)
	for _, c := range []*TCPConfig{cfg.TCP.Get(), &cfg.TLS.Get().TCPConfig} {
		c.MaxConnections, c.IdleTimeout = maxConns, idle
	}
	return cfg, clientTLS
}

// dial connects to the transport's listener: a TLS client completes its
// handshake before it returns.
func (h *harness) dial(t *testing.T, transport string, clientTLS *tls.Config) net.Conn {
	t.Helper()
	addr := addrOf(t, h.r.sockets[transport])
	var c net.Conn
	var err error
	if transport == "tls" {
		c, err = tls.Dial("tcp", addr, clientTLS)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// endErr reads c until the connection ends, within waitFor, and returns
// the error that ended it.
func endErr(t *testing.T, c net.Conn) error {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	_, err := io.ReadAll(c)
	if err == nil {
		return io.EOF
	}
	return err
}

// refusedErr connects to addr and returns the error that ends the
// connection: a reset, after the connect or (when the reset arrives
// before the dialer looked at its socket) failing it.
func refusedErr(t *testing.T, addr string) error {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return endErr(t, c)
}

// keepAlive is a HEP3 keep-alive: capture id and chunk 0x0d, nothing to
// record.
func keepAlive(t *testing.T, authKey string) []byte {
	p := hep.Packet{CaptureID: 7, KeepAlive: 1, Fields: hep.HasCaptureID | hep.HasKeepAlive}
	if authKey != "" {
		p.AuthKey = []byte(authKey)
	}
	b, err := p.AppendV3(nil)
	require.NoError(t, err)
	return b
}

// TestConnectionLimit: beyond max_connections a connection is reset at
// once, each refusal counted and one log line for the burst; the
// connections held are served on, and a sender gets a slot once one
// frees.
func TestConnectionLimit(t *testing.T) {
	for _, transport := range []string{"tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			cfg, clientTLS := streamListeners(t, 2, 0)
			h := start(t, cfg, sink)
			held := []net.Conn{h.dial(t, transport, clientTLS), h.dial(t, transport, clientTLS)}
			for i, c := range held {
				_, err := c.Write(sipHEP(t, fmt.Sprintf("held-%d", i), 1))
				require.NoError(t, err)
			}
			require.Eventually(t, func() bool { return sink.LogRecordCount() == 2 }, waitFor, time.Millisecond)
			require.Equal(t, int64(2), h.counter(t, "hep_receiver_connections_active", tr(transport)))

			addr := addrOf(t, h.r.sockets[transport])
			for i := range 3 {
				assert.ErrorIs(t, refusedErr(t, addr), syscall.ECONNRESET, "refusal %d", i)
			}
			require.EventuallyWithT(t, func(ct *assert.CollectT) {
				assert.Equal(ct, int64(3), h.counter(ct, "hep_receiver_connections_rejected", tr(transport), reason("limit")))
			}, waitFor, time.Millisecond)
			assert.Equal(t, int64(2), h.counter(t, "hep_receiver_connections_active", tr(transport)))
			refusals := h.logs.FilterMessageSnippet("max_connections reached")
			assert.Equal(t, 1, refusals.Len(), "one line for the burst")

			// the held connections are served on
			_, err := held[0].Write(sipHEP(t, "held-0-again", 1))
			require.NoError(t, err)
			require.Eventually(t, func() bool { return sink.LogRecordCount() == 3 }, waitFor, time.Millisecond)
			// one frees its slot: a sender gets it
			require.NoError(t, held[1].Close())
			require.EventuallyWithT(t, func(ct *assert.CollectT) {
				assert.Equal(ct, int64(1), h.counter(ct, "hep_receiver_connections_active", tr(transport)))
			}, waitFor, time.Millisecond)
			_, err = h.dial(t, transport, clientTLS).Write(sipHEP(t, "newcomer", 1))
			require.NoError(t, err)
			require.Eventually(t, func() bool { return sink.LogRecordCount() == 4 }, waitFor, time.Millisecond)
			assert.Equal(t, map[string]int{"held-0": 1, "held-1": 1, "held-0-again": 1, "newcomer": 1}, callIDs(sink))
			assert.Equal(t, int64(3), h.counter(t, "hep_receiver_connections_rejected", tr(transport), reason("limit")))
		})
	}
}

// TestIdleConnectionIsReset: a connection that brings no packet for
// idle_timeout (from the start, or after some) is reset and counted, which
// frees its slot for a real sender.
func TestIdleConnectionIsReset(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, transport := range []string{"tcp", "tls"} {
		for _, sendFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, a packet first: %v", transport, sendFirst), func(t *testing.T) {
				sink := new(consumertest.LogsSink)
				cfg, clientTLS := streamListeners(t, 1, idle)
				h := start(t, cfg, sink)
				holder := h.dial(t, transport, clientTLS)
				if sendFirst {
					_, err := holder.Write(sipHEP(t, "before-idle", 1))
					require.NoError(t, err)
				}
				require.ErrorIs(t, endErr(t, holder), syscall.ECONNRESET, "the receiver resets an idle connection")
				require.EventuallyWithT(t, func(ct *assert.CollectT) {
					assert.Equal(ct, int64(1), h.counter(ct, "hep_receiver_connections_closed", tr(transport), reason("idle_timeout")))
					assert.Equal(ct, int64(0), h.counter(ct, "hep_receiver_connections_active", tr(transport)))
				}, waitFor, time.Millisecond)
				idleLog := h.logs.FilterMessageSnippet("idle")
				require.Equal(t, 1, idleLog.Len())
				assert.Equal(t, idle, idleLog.All()[0].ContextMap()["idle_timeout"])

				// the slot is free: a real sender gets it
				_, err := h.dial(t, transport, clientTLS).Write(sipHEP(t, "real-sender", 1))
				require.NoError(t, err)
				want := map[string]int{"real-sender": 1}
				if sendFirst {
					want["before-idle"] = 1
				}
				require.Eventually(t, func() bool { return sink.LogRecordCount() == len(want) }, waitFor, time.Millisecond)
				assert.Equal(t, want, callIDs(sink))
				assert.Zero(t, h.counter(t, "hep_receiver_connections_rejected"))
			})
		}
	}
}

// sendEvery writes each packet of next, one per interval, until n are
// written or a write fails; it returns how many were written.
func sendEvery(c net.Conn, interval time.Duration, n int, next func(i int) []byte) int {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := range n {
		if _, err := c.Write(next(i)); err != nil {
			return i
		}
		<-tick.C
	}
	return n
}

// TestTrafficAndKeepAlivesKeepConnectionOpen: a connection that brings a
// packet, or a HEP keep-alive, more often than idle_timeout stays open
// however long it lives: here three times idle_timeout.
func TestTrafficAndKeepAlivesKeepConnectionOpen(t *testing.T) {
	const idle = time.Second
	for _, tc := range []struct {
		name    string
		authKey string
		next    func(t *testing.T, i int) []byte
		records int
	}{
		{"traffic", "", func(t *testing.T, i int) []byte { return sipHEP(t, fmt.Sprint("traffic-", i), 1) }, 30},
		{"keep-alives", "", func(t *testing.T, _ int) []byte { return keepAlive(t, "") }, 0},
		{"keep-alives with the auth key", "s3cret", func(t *testing.T, _ int) []byte { return keepAlive(t, "s3cret") }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			cfg, clientTLS := streamListeners(t, 1, idle)
			cfg.AuthKey = configopaque.String(tc.authKey)
			h := start(t, cfg, sink)
			c := h.dial(t, "tcp", clientTLS)
			packets := make([][]byte, 30) // built here: sipHEP may fail the test
			for i := range packets {
				packets[i] = tc.next(t, i)
			}
			// 30 packets 100 ms apart: three idle_timeouts
			require.Equal(t, 30, sendEvery(c, 100*time.Millisecond, 30, func(i int) []byte { return packets[i] }))
			last := sipHEP(t, "still-open", 1, func(p *hep.Packet) {
				if tc.authKey != "" {
					p.AuthKey = []byte(tc.authKey)
				}
			})
			_, err := c.Write(last)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return sink.LogRecordCount() == tc.records+1 }, waitFor, time.Millisecond)
			assert.Equal(t, 1, callIDs(sink)["still-open"])
			assert.Zero(t, h.counter(t, "hep_receiver_connections_closed"))
			assert.Equal(t, int64(1), h.counter(t, "hep_receiver_connections_active", tr("tcp")))
			assert.Equal(t, int64(31), h.counter(t, "hep_receiver_packets_received", tr("tcp")))
		})
	}
}

// TestOnlyAcceptedPacketsKeepConnectionOpen: bytes arriving more often than
// idle_timeout that are no accepted packet (keep-alives without the auth
// key, malformed packets, garbage skipped by resync) do not keep a slot.
func TestOnlyAcceptedPacketsKeepConnectionOpen(t *testing.T) {
	const idle = 300 * time.Millisecond
	malformed := append([]byte(hep.Magic), 0, 8, 0, 0) // a chunk header cut short
	for _, tc := range []struct {
		name    string
		authKey string
		send    []byte
		counter string // counts what was sent, by reason
		reason  string
	}{
		{"keep-alives without the auth key", "s3cret", keepAlive(t, ""), "hep_receiver_packets_dropped", "unauthorized"},
		{"keep-alives with another key", "s3cret", keepAlive(t, "s3cre"), "hep_receiver_packets_dropped", "unauthorized"},
		{"malformed packets", "", malformed, "hep_receiver_packets_malformed", "chunk_overrun"},
		{"garbage", "", []byte("x"), "hep_receiver_packets_malformed", "stream_garbage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			cfg, clientTLS := streamListeners(t, 1, idle)
			cfg.AuthKey = configopaque.String(tc.authKey)
			h := start(t, cfg, sink)
			c := h.dial(t, "tcp", clientTLS)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				// at most 10 s of it; the reset ends it long before
				sendEvery(c, 50*time.Millisecond, 200, func(int) []byte { return tc.send })
			}()
			require.EventuallyWithT(t, func(ct *assert.CollectT) {
				assert.Equal(ct, int64(1), h.counter(ct, "hep_receiver_connections_closed", tr("tcp"), reason("idle_timeout")))
			}, waitFor, time.Millisecond)
			wg.Wait()
			assert.Positive(t, h.counter(t, tc.counter, tr("tcp"), reason(tc.reason)))
			assert.Zero(t, sink.LogRecordCount())
		})
	}
}

// TestConnectionsClosedByReason: how each served connection ended is
// counted: the sender closed it, in or between packets; garbage closed it;
// the receiver shut down.
func TestConnectionsClosedByReason(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg, clientTLS := streamListeners(t, 8, 0)
	cfg.TCP.Get().OnGarbage = garbageClose
	h := start(t, cfg, sink)

	clean := h.dial(t, "tls", clientTLS)
	_, err := clean.Write(sipHEP(t, "clean", 1))
	require.NoError(t, err)
	require.NoError(t, clean.Close())
	cut := h.dial(t, "tcp", clientTLS)
	p := sipHEP(t, "cut", 1)
	_, err = cut.Write(p[:len(p)-1])
	require.NoError(t, err)
	require.NoError(t, cut.Close())
	garbage := h.dial(t, "tcp", clientTLS)
	_, err = garbage.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	require.NoError(t, err)
	assert.ErrorIs(t, endErr(t, garbage), io.EOF, "closed on garbage")
	open := []net.Conn{h.dial(t, "tcp", clientTLS), h.dial(t, "tls", clientTLS)}
	for _, c := range open {
		_, err := c.Write(sipHEP(t, "open", 1))
		require.NoError(t, err)
	}

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, int64(1), h.counter(ct, "hep_receiver_connections_closed", tr("tls"), reason("peer")))
		assert.Equal(ct, int64(1), h.counter(ct, "hep_receiver_connections_closed", tr("tcp"), reason("peer")))
		assert.Equal(ct, int64(1), h.counter(ct, "hep_receiver_connections_closed", tr("tcp"), reason("garbage")))
		assert.Equal(ct, 3, sink.LogRecordCount())
	}, waitFor, time.Millisecond)
	assert.Equal(t, int64(1), h.counter(t, "hep_receiver_packets_malformed", tr("tcp"), reason("truncated")))
	assert.Equal(t, int64(1), h.counter(t, "hep_receiver_packets_malformed", tr("tcp"), reason("bad_magic")))

	require.NoError(t, h.shutdown(t.Context()))
	for _, transport := range []string{"tcp", "tls"} {
		assert.Equal(t, int64(1), h.counter(t, "hep_receiver_connections_closed", tr(transport), reason("shutdown")), transport)
	}
	assert.Zero(t, h.counter(t, "hep_receiver_connections_closed", reason("idle_timeout")))
	assert.Zero(t, h.counter(t, "hep_receiver_connections_closed", reason("error")))
}
