// Package periodic runs a function at a fixed interval on a goroutine of
// its own until stopped: the flush loops of the stateful connectors (sipkpi,
// sipcall), whose Shutdown must know the last timed flush has finished
// before it emits what is left.
package periodic

import "time"

// Loop is a running loop; the nil Loop is one never started.
type Loop struct {
	stop, done chan struct{}
}

// Start calls f every interval until Stop.
func Start(interval time.Duration, f func()) *Loop {
	l := &Loop{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				f()
			}
		}
	}()
	return l
}

// Stop ends the loop and waits for a call of f in progress to return. It
// reports false, doing nothing, on a nil Loop (a component shut down
// without having started).
func (l *Loop) Stop() bool {
	if l == nil {
		return false
	}
	close(l.stop)
	<-l.done
	return true
}
