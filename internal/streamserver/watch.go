package streamserver

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Outcomes of a listener error, as WatchSettings.Errors is told them.
const (
	Retried = "retried" // temporary: the loop waited and went on
	Stopped = "stopped" // the socket is unusable: the loop ended and the status was reported
)

// Back-off after a temporary error, as net/http's accept loop does: long
// enough not to spin while descriptors are exhausted, short enough to pick up
// again at once.
const (
	minRetryDelay = 5 * time.Millisecond
	maxRetryDelay = time.Second
)

// WatchSettings configure a Watch.
type WatchSettings struct {
	Component string   // "hep receiver": prefix of the reported error
	Listener  string   // "udp", "tcp", "syslog_tcp", "http": for the log and the error
	Addr      net.Addr // where it listens
	// Host receives the status event; the collector's host implements
	// componentstatus.Reporter.
	Host component.Host
	// Logger is the component's logger, not rate-limited: the one line of a
	// stopped listener is never dropped. Watch rate-limits its retry lines.
	Logger *zap.Logger
	// Errors counts the listener's errors by outcome: Retried or Stopped.
	Errors func(outcome string)
}

// Watch is the failure policy of one listening socket, shared by every loop
// that waits on one: Serve's accept loop, an HTTP server's (through
// Listener) and the receivers' UDP read loops. A temporary error is counted,
// logged (rate-limited) and waited out; any other error ends the loop and,
// unless the receiver's own Close caused it, is logged, counted and reported
// to the host as a permanent error: the collector goes on with its other
// listeners, and health_check (component_health.include_permanent_errors)
// turns unhealthy.
type Watch struct {
	s        WatchSettings
	retryLog *zap.Logger
	closing  atomic.Bool
	done     chan struct{}
	close    sync.Once
	stop     sync.Once
}

// NewWatch returns the watch of one listening socket.
func NewWatch(s WatchSettings) *Watch {
	return &Watch{
		s: s,
		retryLog: s.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return zapcore.NewSamplerWithOptions(c, 10*time.Second, 1, 0)
		})),
		done: make(chan struct{}),
	}
}

// Close tells that the receiver is about to close the socket itself (its
// Shutdown): the error its loops get next ends them without a report, and a
// back-off in progress ends at once. Call it before closing the socket.
func (w *Watch) Close() {
	w.close.Do(func() {
		w.closing.Store(true)
		close(w.done)
	})
}

// Stop ends the listener after err, the error its loop could not go on
// from. Unless Close came first, err is logged, counted and reported as the
// component's permanent error status, once per listener however many loops
// (UDP readers) stop.
func (w *Watch) Stop(err error) {
	if w.closing.Load() {
		return
	}
	w.stop.Do(func() {
		w.s.Errors(Stopped)
		w.s.Logger.Error("Listener stopped: nothing is received on it until the collector restarts",
			zap.String("transport", w.s.Listener), zap.Stringer("address", w.s.Addr), zap.Error(err))
		componentstatus.ReportStatus(w.s.Host, componentstatus.NewPermanentErrorEvent(
			fmt.Errorf("%s: %s listener on %s stopped: %w", w.s.Component, w.s.Listener, w.s.Addr, err)))
	})
}

// Backoff returns the retry state of one loop goroutine.
func (w *Watch) Backoff() *Backoff { return &Backoff{w: w} }

// Backoff is one loop's retry state; it is not safe for concurrent use.
type Backoff struct {
	w     *Watch
	delay time.Duration
}

// Retry tells whether the loop goes on after err. A temporary error is
// counted, logged at most once per 10 s, and waited out (5 ms, doubling up
// to 1 s while the errors go on; Close ends the wait): true. Otherwise, or
// once Close was called, false: the loop ends, calling Stop.
func (b *Backoff) Retry(err error) bool {
	w := b.w
	if w.closing.Load() || !Temporary(err) {
		return false
	}
	b.delay = min(max(2*b.delay, minRetryDelay), maxRetryDelay)
	w.s.Errors(Retried)
	w.retryLog.Warn("Listener error, retrying", zap.String("transport", w.s.Listener),
		zap.Stringer("address", w.s.Addr), zap.Duration("retry_in", b.delay), zap.Error(err))
	t := time.NewTimer(b.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.done:
	}
	return true
}

// Reset follows a success: the next error waits the shortest delay again.
func (b *Backoff) Reset() { b.delay = 0 }

// Temporary tells whether an accept or read error leaves the socket usable:
// descriptors or memory exhausted, a connection that failed before it was
// accepted (Linux passes its network error to accept), a timeout. Anything
// else ends the loop: the socket closed under it (net.ErrClosed), no longer
// listening (EINVAL: `ss -K` destroyed it), not a socket any more, or an
// error of no known kind, which a loop retrying it forever would hide.
func Temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EINTR, syscall.EAGAIN,
		syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ETIMEDOUT, syscall.EPERM,
		syscall.EPROTO, syscall.ENOPROTOOPT, syscall.EOPNOTSUPP,
		syscall.ENETDOWN, syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.EHOSTUNREACH:
		return true
	}
	return false
}

// Listener returns ln with an Accept that waits out temporary errors as the
// other loops do, so that the server using it (net/http) only sees the
// error that ends it; the server's caller then calls Stop.
func (w *Watch) Listener(ln net.Listener) net.Listener {
	return &watchedListener{Listener: ln, b: w.Backoff()}
}

type watchedListener struct {
	net.Listener
	b *Backoff // Accept is called by one goroutine
}

func (l *watchedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			l.b.Reset()
			return c, nil
		}
		if !l.b.Retry(err) {
			return nil, err
		}
	}
}
