package pool

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type obs struct {
	size, inflight, queue, completed, shed atomic.Int64
}

func (o *obs) Size(n int)     { o.size.Store(int64(n)) }
func (o *obs) Inflight(n int) { o.inflight.Store(int64(n)) }
func (o *obs) Queue(n int)    { o.queue.Store(int64(n)) }
func (o *obs) Completed()     { o.completed.Add(1) }
func (o *obs) Shed()          { o.shed.Add(1) }

func TestSizes(t *testing.T) {
	core, ceiling := Sizes(0, 0)
	assert.Equal(t, max(8, 2*runtime.NumCPU()), core)
	assert.Equal(t, max(32, 4*core), ceiling)
	core, ceiling = Sizes(4, 2)
	assert.Equal(t, 4, core)
	assert.Equal(t, 4, ceiling, "the ceiling is never below the core")
}

// TestGrowQueueShed fills the pool: it grows from core to ceiling, then
// queues, then sheds, and every accepted job runs.
func TestGrowQueueShed(t *testing.T) {
	o := &obs{}
	p := New(2, 4, 3, o)
	defer p.Close()
	require.EqualValues(t, 2, o.size.Load())

	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock() // lets Close return if an assertion fails
	var ran sync.WaitGroup
	accepted := 0
	started := make(chan struct{})
	block := func() { started <- struct{}{}; <-release; ran.Done() }
	for range 4 { // one per worker up to the ceiling
		ran.Add(1)
		require.True(t, p.Submit(block))
		accepted++
		<-started
	}
	assert.EqualValues(t, 4, o.size.Load(), "grew to the ceiling")
	assert.EqualValues(t, 4, o.inflight.Load())

	for range 3 { // the queue
		ran.Add(1)
		require.True(t, p.Submit(func() { ran.Done() }))
		accepted++
	}
	assert.EqualValues(t, 3, o.queue.Load())
	assert.False(t, p.Submit(func() { t.Error("a shed job ran") }))
	assert.EqualValues(t, 1, o.shed.Load())

	unblock()
	ran.Wait()
	require.Eventually(t, func() bool { return o.completed.Load() == int64(accepted) }, 5*time.Second, time.Millisecond)
	assert.EqualValues(t, 0, o.inflight.Load())
	assert.EqualValues(t, 4, o.size.Load(), "never shrinks")
}
