package streamserver

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap/zapcore"
)

// TestListenerTakenAway fails the listener under a running server the two
// ways it can fail from outside: closed (what any loss of the socket looks
// like to the loop: net.ErrClosed) and shut down (shutdown(2) leaves it
// open but no longer listening, the state `ss -K` leaves it in: accept
// returns EINVAL).
func TestListenerTakenAway(t *testing.T) {
	for _, tc := range []struct {
		how  string
		take func(net.Listener) error
		want error
	}{
		{"closed", func(ln net.Listener) error { return ln.Close() }, net.ErrClosed},
		{"shut down", shutdown, syscall.EINVAL},
	} {
		t.Run(tc.how, func(t *testing.T) {
			s := serve(t)
			// a connection open before the failure is served on after it
			open, err := net.Dial("tcp", s.ln.Addr().String())
			require.NoError(t, err)
			defer open.Close()
			require.Eventually(t, func() bool { return len(s.srv.openConns()) == 1 }, waitFor, time.Millisecond)

			require.NoError(t, tc.take(s.ln))
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.Len(c, s.host.Events(), 1)
			}, waitFor, time.Millisecond)
			ev := s.host.Events()[0]
			assert.Equal(t, componentstatus.StatusPermanentError, ev.Status())
			assert.ErrorIs(t, ev.Err(), tc.want)
			assert.ErrorContains(t, ev.Err(), "test receiver: tcp listener on "+s.ln.Addr().String()+" stopped: ")
			assert.Equal(t, 1, s.outcomes.get(Stopped))
			assert.Zero(t, s.outcomes.get(Retried))
			stopped := s.logs.FilterMessageSnippet("Listener stopped").All()
			require.Len(t, stopped, 1)
			assert.Equal(t, zapcore.ErrorLevel, stopped[0].Level)
			assert.Equal(t, s.ln.Addr().String(), stopped[0].ContextMap()["address"])

			_, err = open.Write([]byte("after"))
			require.NoError(t, err)
			require.NoError(t, open.Close())
			s.received(t, "after")

			require.NoError(t, s.srv.Close())
			assert.Len(t, s.host.Events(), 1, "Close reports nothing more")
			assert.Equal(t, 1, s.outcomes.get(Stopped))
		})
	}
}

// shutdown shuts ln down with shutdown(2): the socket stays open but no
// longer listens.
func shutdown(ln net.Listener) error {
	rc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) }); err != nil {
		return err
	}
	return serr
}

// TestAcceptWaitsOutEMFILE runs the process out of descriptors while a
// connection waits to be accepted: accept fails with EMFILE, which must not
// end the listener. It is counted, logged once however often it recurs, and
// once descriptors are free again the connection is accepted and served.
// Not parallel: it lowers the process's descriptor limit.
func TestAcceptWaitsOutEMFILE(t *testing.T) {
	s := serve(t)
	var orig syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig))
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	low := orig
	low.Cur = uint64(len(entries)) + 32
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))
	var fill []*os.File
	release := func() {
		for _, f := range fill {
			_ = f.Close()
		}
		fill = nil
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig)
	}
	t.Cleanup(release)
	for len(fill) < int(low.Cur) {
		f, err := os.Open(os.DevNull)
		if err != nil {
			require.ErrorIs(t, err, syscall.EMFILE)
			break
		}
		fill = append(fill, f)
	}
	require.NotEmpty(t, fill)
	// free one descriptor for the client's socket: none is left for accept
	require.NoError(t, fill[len(fill)-1].Close())
	fill = fill[:len(fill)-1]
	c, err := net.Dial("tcp", s.ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("waited"))
	require.NoError(t, err)

	// several retries: the back-off goes on while the descriptors stay taken
	require.Eventually(t, func() bool { return s.outcomes.get(Retried) >= 3 }, waitFor, time.Millisecond)
	release()
	require.NoError(t, c.Close())
	s.received(t, "waited")

	assert.Empty(t, s.host.Events(), "a temporary error reports no status")
	assert.Zero(t, s.outcomes.get(Stopped))
	retries := s.logs.FilterMessageSnippet("Listener error, retrying").All()
	require.Len(t, retries, 1, "logged at most once per 10 s")
	assert.Equal(t, zapcore.WarnLevel, retries[0].Level)
	assert.Contains(t, retries[0].ContextMap()["error"], "too many open files")
}
