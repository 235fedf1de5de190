package rtpengine_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	engine "github.com/siphon-otel/siphon-otel/internal/testenv/rtpengine"
	"github.com/siphon-otel/siphon-otel/proxy/rtpengine"
)

func TestCheckerAgainstRTPEngine(t *testing.T) {
	d := engine.Start(t, 30000, 30100)
	addr := d.Addr
	dead := "127.0.0.1:" + strconv.Itoa(ports.Port(t)) // nothing listens

	reports := make(chan map[string]bool, 16)
	c := &rtpengine.Checker{Instances: []string{addr, dead}, Interval: 200 * time.Millisecond, Timeout: 300 * time.Millisecond,
		Report: func(up map[string]bool) { reports <- up }}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() { c.Run(ctx); close(finished) }()
	defer func() { cancel(); <-finished }()

	first := <-reports
	assert.Equal(t, map[string]bool{addr: true, dead: false}, first)
	assert.Equal(t, first, c.Last())

	d.Kill() // the instance dies: the next rounds report it down
	deadline := time.After(10 * time.Second)
	for {
		select {
		case up := <-reports:
			if !up[addr] {
				assert.False(t, up[dead])
				return
			}
		case <-deadline:
			t.Fatal("a killed rtpengine still reported up")
		}
	}
}

// TestPingRejectsForeignReply answers with the wrong body: an error, not up.
func TestPingRejectsForeignReply(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		cookie, _, _ := strings.Cut(string(buf[:n]), " ")
		_, _ = pc.WriteTo([]byte(cookie+" d6:result5:errore"), from)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = rtpengine.Ping(ctx, pc.LocalAddr().String())
	assert.ErrorContains(t, err, "unexpected reply")
}
