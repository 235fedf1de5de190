package hepreceiver

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/logbatch"
)

// stall blocks every delivery until released.
type stall struct {
	consumertest.LogsSink
	release chan struct{}
}

func (s *stall) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	<-s.release
	return s.LogsSink.ConsumeLogs(ctx, ld)
}

// TestKernelDropsAreCounted overflows a tiny socket buffer while the only
// reader is stuck in a delivery, and checks that every datagram sent is
// either received or counted as dropped by the kernel.
func TestKernelDropsAreCounted(t *testing.T) {
	s := &stall{release: make(chan struct{})}
	cfg := testConfig()
	cfg.TCP.Get().Endpoint = "127.0.0.1:0"
	u := cfg.UDP.Get()
	u.Readers, u.ReadBufferSize = 1, 4096
	cfg.Batch = logbatch.Config{MaxSize: 1, Timeout: time.Hour}
	h := start(t, cfg, s)
	c := h.udp(t)
	const sent = 300
	for i := range sent {
		_, err := c.Write(sipHEP(t, fmt.Sprint(i), 1))
		require.NoError(t, err)
	}
	close(s.release)
	// The kernel's drop count travels with the next datagram it accepts, so
	// keep sending markers until every datagram is accounted for: received
	// by the receiver or counted as dropped by the kernel, never neither.
	marker := sipHEP(t, "marker", 1)
	var markers atomic.Int64
	received := func(ct assert.TestingT) int64 { return h.counter(ct, "hep_receiver_packets_received") }
	overflow := func(ct assert.TestingT) int64 {
		return h.counter(ct, "hep_receiver_packets_dropped", tr("udp"), reason("socket_overflow"))
	}
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		want := sent + markers.Load()
		if got := received(ct) + overflow(ct); got != want {
			ct.Errorf("%d of %d datagrams accounted for", got, want)
			_, err := c.Write(marker)
			assert.NoError(ct, err)
			markers.Add(1)
		}
	}, waitFor, 50*time.Millisecond)
	t.Logf("sent %d + %d markers: received %d, kernel drops %d", sent, markers.Load(), received(t), overflow(t))
	assert.Positive(t, overflow(t), "the tiny buffer overflowed")
	// every datagram received is delivered (one record each)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, received(ct), int64(s.LogRecordCount()))
	}, waitFor, time.Millisecond)
}
