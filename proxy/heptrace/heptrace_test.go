package heptrace

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/hepsink"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// counts is what a Tracer reports to the proxy's metrics, and its log.
type counts struct {
	mu      sync.Mutex
	sent    int
	dropped map[string]int
	log     bytes.Buffer
}

func (c *counts) settings(endpoint string) Settings {
	c.dropped = map[string]int{}
	return Settings{
		Endpoint: endpoint, Transport: "udp", AgentID: "2001", QueueSize: 4096,
		Sent:    func(n int) { c.mu.Lock(); c.sent += n; c.mu.Unlock() },
		Dropped: func(reason string, n int) { c.mu.Lock(); c.dropped[reason] += n; c.mu.Unlock() },
		Logger:  slog.New(slog.NewTextHandler(lockedWriter{c}, nil)),
	}
}

type lockedWriter struct{ c *counts }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.log.Write(p)
}

func (c *counts) read() (sent, sendError, queueFull int, log string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent, c.dropped["send_error"], c.dropped["queue_full"], c.log.String()
}

// TestUDPLossIsCounted: the tracer captures messages back to back and
// sends them over UDP to a loopback port where nothing listens, or where a
// HEP collector listens. Every packet is counted once, sent or dropped;
// the closed port's are all dropped (send_error) and warned about once,
// not once per batch; none counted sent is missing at the collector.
func TestUDPLossIsCounted(t *testing.T) {
	const n = 160 // what a capture node's default socket buffer holds at once
	for _, tc := range []struct {
		name      string
		listening bool
	}{{"collector listening", true}, {"port closed", false}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := ports.Addr(t)
			var srv *hepsink.Server
			if tc.listening {
				srv = hepsink.NewUDP(t, addr)
			}
			var c counts
			tr, err := New(c.settings(addr))
			require.NoError(t, err)
			defer tr.Close()
			src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060}
			dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5060}
			for i := range n {
				msg := fmt.Sprintf("OPTIONS sip:x@127.0.0.2 SIP/2.0\r\nCall-ID: trace-%d\r\nCSeq: 1 OPTIONS\r\n\r\n", i)
				tr.Capture("udp", src, dst, []byte(msg), time.Now())
			}
			var sent, sendError, queueFull int
			var log string
			assert.Eventually(t, func() bool {
				sent, sendError, queueFull, log = c.read()
				return sent+sendError+queueFull == n
			}, 10*time.Second, time.Millisecond)
			sent, sendError, queueFull, log = c.read()
			t.Logf("captured %d: sent %d, send_error %d, queue_full %d", n, sent, sendError, queueFull)
			require.Equal(t, n, sent+sendError+queueFull)
			require.Zero(t, queueFull, "the queue holds them all")
			warnings := strings.Count(log, "HEP collector unreachable")
			if !tc.listening {
				assert.Equal(t, n, sendError, "every packet to the closed port is lost")
				assert.Equal(t, 1, warnings, "one warning per period: %s", log)
				return
			}
			assert.Equal(t, n, sent)
			assert.Zero(t, warnings)
			assert.Len(t, srv.WaitFor(n, 10*time.Second), n)
		})
	}
}
