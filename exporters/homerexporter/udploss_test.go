package homerexporter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/internal/testenv/hepsink"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// TestUDPDeliveryAccounting: HEP packets go back to back into the hep
// receiver, whose records this exporter sends over UDP to a loopback port
// where nothing listens, where a capture node listens, or where one starts
// after a while. Every record the exporter took (exporterhelper's sent
// count: over UDP, written) ends up in exactly one of its own counters:
// packets_sent, or records_dropped{port_unreachable}; and packets_sent
// never holds more than what the capture node received.
func TestUDPDeliveryAccounting(t *testing.T) {
	const burst = 160
	portUnreachable := attribute.String("reason", "port_unreachable")
	for _, tc := range []struct {
		name      string
		listening []bool // per burst: whether the capture node is up
	}{
		{"target listening", []bool{true}},
		{"port closed", []bool{false}},
		{"target comes back", []bool{false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := ports.Addr(t) // reserved: nothing else binds it
			h := newHomer(t, func(c *Config) { c.Endpoint, c.Transport = addr, TransportUDP })
			in := hepReceiver(t, h.exp)

			var srv *hepsink.Server
			var wantDropped int64
			for b, listening := range tc.listening {
				if listening && srv == nil {
					srv = hepsink.NewUDP(t, addr)
				}
				for i := range burst {
					p := sipPacket(b*burst + i)
					raw, err := p.AppendV3(nil)
					require.NoError(t, err)
					_, err = in.Write(raw)
					require.NoError(t, err)
				}
				total := int64((b + 1) * burst)
				var sent, dropped, written int64
				read := func(t assert.TestingT) {
					sent = h.metrics.Sum(t, "homer_exporter_packets_sent")
					dropped = h.metrics.Sum(t, "homer_exporter_records_dropped", portUnreachable)
					written = h.metrics.Sum(t, "exporter_sent_log_records")
				}
				assert.EventuallyWithT(t, func(c *assert.CollectT) {
					read(c)
					assert.True(c, written == total && sent+dropped == total)
				}, waitFor, 5*time.Millisecond)
				read(t)
				require.Equal(t, total, written, "records the exporter took (burst %d)", b)
				require.Equal(t, total, sent+dropped, "sent %d + dropped %d == written (burst %d)", sent, dropped, b)
				t.Logf("after burst %d: written %d, sent %d, dropped{port_unreachable} %d", b, written, sent, dropped)

				if !listening {
					wantDropped += burst
					assert.Equal(t, wantDropped, dropped, "every datagram to the closed port is counted lost")
					continue
				}
				received := int64(len(srv.WaitFor(burst, waitFor)))
				assert.Equal(t, int64(burst), received)
				assert.LessOrEqual(t, sent, received, "a datagram counted sent reached the capture node")
				assert.Positive(t, sent, "datagrams to a listening target are counted sent")
				if b == 0 {
					assert.Equal(t, int64(burst), sent)
					assert.Zero(t, dropped)
				}
			}
		})
	}
}
