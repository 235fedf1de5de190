//go:build integration

package rtpengine_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	engine "github.com/siphon-otel/siphon-otel/internal/testenv/rtpengine"
	"github.com/siphon-otel/siphon-otel/proxy/rtpengine"
)

// The checker against Debian's rtpengine-daemon (-tags integration).

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
