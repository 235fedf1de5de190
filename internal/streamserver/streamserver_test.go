package streamserver

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv"
)

// connectErr connects to addr and reads until the connection ends, within
// waitFor: the error that ends it, io.EOF for an orderly close. The kernel
// completes the handshake before the server sees the connection, so a
// reset comes after a successful connect, or fails the connect itself
// when it arrives before the dialer looked at the socket.
func connectErr(t *testing.T, addr string) error {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	if _, err := io.ReadAll(c); err != nil {
		return err
	}
	return io.EOF // ReadAll reports the orderly end as no error
}

// TestRefusedOverLimitIsReset: beyond MaxConnections a connection is reset
// at once, each refusal counted, one log line for a burst of them; the
// connections within the limit are served on.
func TestRefusedOverLimitIsReset(t *testing.T) {
	var limit atomic.Int64
	s := serve(t, func(set *Settings) {
		set.MaxConnections = 1
		set.Rejected = func(reason string) {
			if reason == "limit" {
				limit.Add(1)
			}
		}
	})
	held, err := net.Dial("tcp", s.ln.Addr().String())
	require.NoError(t, err)
	defer held.Close()
	require.Eventually(t, func() bool { return len(s.srv.openConns()) == 1 }, waitFor, time.Millisecond)

	for i := range 3 {
		assert.ErrorIs(t, connectErr(t, s.ln.Addr().String()), syscall.ECONNRESET, "refusal %d", i)
	}
	assert.Equal(t, int64(3), limit.Load())
	refusals := s.logs.FilterMessageSnippet("max_connections reached")
	require.Equal(t, 1, refusals.Len(), "one line per 10 s")
	assert.Equal(t, "tcp", refusals.All()[0].ContextMap()["transport"])

	_, err = held.Write([]byte("still served"))
	require.NoError(t, err)
	require.NoError(t, held.Close())
	s.received(t, "still served")
}

// TestAbortResets: a connection the handler aborted ends with a reset; one
// it just returned from ends with an orderly close.
func TestAbortResets(t *testing.T) {
	for _, tc := range []struct {
		abort bool
		want  error
	}{{true, syscall.ECONNRESET}, {false, io.EOF}} {
		s := serve(t, func(set *Settings) {
			set.Handle = func(_ *Server, c net.Conn) {
				if tc.abort {
					Abort(c)
				}
			}
		})
		assert.ErrorIs(t, connectErr(t, s.ln.Addr().String()), tc.want, "abort=%v", tc.abort)
	}
}

// TestSetReadDeadlineAfterCloseBegan: a handler that sets a far deadline
// after Close expired the deadlines (the interleaving a check of Closing
// followed by a plain SetReadDeadline loses) still has its read end at
// once, and Close returns.
func TestSetReadDeadlineAfterCloseBegan(t *testing.T) {
	proceed := make(chan struct{})
	readDone := make(chan error, 1)
	s := serve(t, func(set *Settings) {
		set.Handle = func(srv *Server, c net.Conn) {
			<-proceed
			_ = srv.SetReadDeadline(c, time.Now().Add(time.Hour))
			_, err := c.Read(make([]byte, 1))
			readDone <- err
		}
	})
	c, err := net.Dial("tcp", s.ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool { return len(s.srv.openConns()) == 1 }, waitFor, time.Millisecond)

	closed := make(chan error, 1)
	go func() { closed <- s.srv.Close() }()
	// openConns takes the lock Close holds while it expires the deadlines
	require.Eventually(t, func() bool { return s.srv.Closing() && len(s.srv.openConns()) == 1 }, waitFor, time.Millisecond)
	close(proceed)

	err = testenv.Receive(t, readDone, waitFor, "the handler's read, after Close began")
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "the read ends on the expired deadline")
	assert.NoError(t, testenv.Receive(t, closed, waitFor, "Close"))
}
