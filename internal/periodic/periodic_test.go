package periodic

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLoop: f runs on every tick, Stop waits for the call in progress
// and for the loop to end; a nil Loop stops as a no-op.
func TestLoop(t *testing.T) {
	var calls atomic.Int64
	var running atomic.Bool
	release := make(chan struct{})
	l := Start(time.Millisecond, func() {
		running.Store(true)
		if calls.Add(1) == 3 {
			<-release // a slow call: Stop must wait for it
		}
		running.Store(false)
	})
	require.Eventually(t, func() bool { return calls.Load() == 3 }, 5*time.Second, time.Millisecond)
	stopped := make(chan bool)
	go func() { stopped <- l.Stop() }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a call was in progress")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	assert.True(t, <-stopped)
	assert.False(t, running.Load(), "the slow call finished before Stop returned")
	select {
	case <-l.done: // the loop's goroutine is gone: no call can follow
	default:
		t.Fatal("Stop returned with the loop still running")
	}

	var never *Loop
	assert.False(t, never.Stop())
}
