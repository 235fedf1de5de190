package streamserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/siphon-otel/siphon-otel/internal/streamserver/streamservertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitFor = 10 * time.Second

// outcomes counts what WatchSettings.Errors is told.
type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) add(outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n[outcome]++
}

func (o *outcomes) get(outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[outcome]
}

// served is a running Server on a loopback listener and what it told.
type served struct {
	srv      *Server
	ln       net.Listener
	host     *streamservertest.Host
	logs     *observer.ObservedLogs
	outcomes *outcomes
	got      chan string // what each connection sent
}

// serve runs a Server whose handler reads a connection to its end, unless
// an option changes the settings.
func serve(t *testing.T, opts ...func(*Settings)) *served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	core, logs := observer.New(zapcore.InfoLevel)
	s := &served{ln: ln, host: streamservertest.NewHost(), logs: logs,
		outcomes: &outcomes{n: map[string]int{}}, got: make(chan string, 8)}
	logger := zap.New(core)
	set := Settings{
		Name: "tcp", MaxConnections: 4, Logger: logger,
		Watch: NewWatch(WatchSettings{
			Component: "test receiver", Listener: "tcp", Addr: ln.Addr(),
			Host: s.host, Logger: logger, Errors: s.outcomes.add,
		}),
		Handle: func(_ *Server, c net.Conn) {
			b, _ := io.ReadAll(c)
			s.got <- string(b)
		},
		Rejected: func(string) {}, Active: func(int64) {},
	}
	for _, o := range opts {
		o(&set)
	}
	s.srv = Serve(ln, set)
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// send writes msg on a new connection and closes it.
func (s *served) send(t *testing.T, msg string) {
	t.Helper()
	c, err := net.Dial("tcp", s.ln.Addr().String())
	require.NoError(t, err)
	_, err = c.Write([]byte(msg))
	require.NoError(t, err)
	require.NoError(t, c.Close())
}

func (s *served) received(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-s.got:
		assert.Equal(t, want, got)
	case <-time.After(waitFor):
		t.Fatalf("%q not received within %s", want, waitFor)
	}
}

func TestTemporary(t *testing.T) {
	accept := func(errno syscall.Errno) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{accept(syscall.EMFILE), true},
		{accept(syscall.ENFILE), true},
		{accept(syscall.ENOBUFS), true},
		{accept(syscall.ECONNABORTED), true},
		{accept(syscall.EPROTO), true},
		{os.ErrDeadlineExceeded, true},
		{accept(syscall.EINVAL), false}, // no longer listening: destroyed with ss -K, or shut down
		{accept(syscall.EBADF), false},
		{fmt.Errorf("accept tcp: %w", net.ErrClosed), false},
		{errors.New("an error of no known kind"), false},
	} {
		assert.Equal(t, tc.want, Temporary(tc.err), tc.err.Error())
	}
}

func TestCloseReportsNothing(t *testing.T) {
	s := serve(t)
	s.send(t, "one")
	s.received(t, "one")
	open, err := net.Dial("tcp", s.ln.Addr().String())
	require.NoError(t, err)
	defer open.Close()
	require.Eventually(t, func() bool { return len(s.srv.openConns()) == 1 }, waitFor, time.Millisecond)
	require.NoError(t, s.srv.Close())
	s.received(t, "") // the handler's read was ended by Close
	assert.Empty(t, s.host.Events())
	assert.Zero(t, s.outcomes.get(Stopped)+s.outcomes.get(Retried))
	assert.Zero(t, s.logs.Len())
}

// openConns lists the open connections, for tests to wait on.
func (srv *Server) openConns() []net.Conn {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var out []net.Conn
	for c := range srv.conns {
		out = append(out, c)
	}
	return out
}
