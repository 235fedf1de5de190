package peertest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestStartAndStop(t *testing.T) {
	p := Start(t, "sh", "-c", "echo ready; exec sleep 30")
	assert.Eventually(t, func() bool { return p.Output() == "ready\n" }, 5*time.Second, 10*time.Millisecond)
	p.Stop()
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before the peer exited")
	}
	p.Stop() // again: a no-op
}
