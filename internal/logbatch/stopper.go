package logbatch

import (
	"context"
	"sync"
	"time"
)

// ShutdownGrace bounds how long a receiver's shutdown keeps retrying a
// batch the pipeline refuses before counting it as dropped.
const ShutdownGrace = 5 * time.Second

// Stopper ends the retries of a receiver's batchers (Settings.Stopping) at
// shutdown, once.
type Stopper struct {
	once sync.Once
	ch   chan struct{}
}

// NewStopper returns a Stopper that has not stopped.
func NewStopper() *Stopper { return &Stopper{ch: make(chan struct{})} }

// Stopping is closed when Stop has been called.
func (s *Stopper) Stopping() <-chan struct{} { return s.ch }

// Stop ends retries; batches still refused are dropped as "shutdown".
func (s *Stopper) Stop() { s.once.Do(func() { close(s.ch) }) }

// Drain runs closeAll (stop the listeners, wait for the readers, flush the
// batchers) and returns its error. While it runs, refused batches are
// retried for at most ShutdownGrace or until ctx ends; then Stop ends the
// retries so that closeAll returns. Retries are over when Drain returns.
func (s *Stopper) Drain(ctx context.Context, closeAll func() error) error {
	grace := time.AfterFunc(ShutdownGrace, s.Stop)
	defer grace.Stop()
	done := make(chan error, 1)
	go func() { done <- closeAll() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		s.Stop()
		err = <-done
	}
	s.Stop()
	return err
}
