// Package pool runs request handlers on SIPhon's "pyexec" model: a core of
// workers, a ceiling, growth on demand (never shrinking), a bounded queue,
// and shedding when the pool is at its ceiling and the queue is full.
package pool

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Observer receives the pool's gauges and counters (siphon_pyexec_*).
type Observer interface {
	Size(n int)
	Inflight(n int)
	Queue(n int)
	Completed()
	Shed()
}

// Pool runs jobs.
type Pool struct {
	max      int
	queue    chan func()
	obs      Observer
	mu       sync.Mutex
	workers  int
	inflight atomic.Int64
	// pending counts jobs accepted and not finished (queued or running);
	// growth decides on it because a job a worker has just taken is in
	// neither the queue nor inflight yet.
	pending atomic.Int64
	quit    chan struct{}
	wg      sync.WaitGroup
}

// Sizes returns SIPhon's defaults: core max(8, 2*CPUs), ceiling max(32,
// 4*core); zero arguments take the default.
func Sizes(core, ceiling int) (int, int) {
	if core <= 0 {
		core = max(8, 2*runtime.NumCPU())
	}
	if ceiling <= 0 {
		ceiling = max(32, 4*core)
	}
	return core, max(core, ceiling)
}

// New starts core workers.
func New(core, ceiling, queue int, obs Observer) *Pool {
	p := &Pool{max: ceiling, queue: make(chan func(), queue), obs: obs, quit: make(chan struct{})}
	p.mu.Lock()
	for range core {
		p.spawn()
	}
	p.mu.Unlock()
	return p
}

// Max is the ceiling.
func (p *Pool) Max() int { return p.max }

// spawn adds a worker; the caller holds mu.
func (p *Pool) spawn() {
	p.workers++
	p.obs.Size(p.workers)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			select {
			case job := <-p.queue:
				p.obs.Queue(len(p.queue))
				p.obs.Inflight(int(p.inflight.Add(1)))
				job()
				p.obs.Inflight(int(p.inflight.Add(-1)))
				p.pending.Add(-1)
				p.obs.Completed()
			case <-p.quit:
				return
			}
		}
	}()
}

// Submit queues a job. When every worker is busy the pool grows (up to its
// ceiling); when it is at the ceiling and the queue is full the job is shed
// and Submit returns false.
func (p *Pool) Submit(job func()) bool {
	p.mu.Lock()
	if int(p.pending.Add(1)) > p.workers && p.workers < p.max {
		p.spawn()
	}
	p.mu.Unlock()
	select {
	case p.queue <- job:
		p.obs.Queue(len(p.queue))
		return true
	default:
		p.pending.Add(-1)
		p.obs.Shed()
		return false
	}
}

// Close stops the workers after the jobs they are running.
func (p *Pool) Close() {
	close(p.quit)
	p.wg.Wait()
}
