// Package streamserver runs the accept side of a TCP or TLS receiver:
// a bounded number of connections, each served by its own goroutine, TLS
// handshakes with a deadline, and a shutdown that stops accepting, lets
// every handler finish what it already read, and waits for them. Its Watch
// is the failure policy of every listening socket of the receivers, UDP
// and HTTP included.
package streamserver

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// HandshakeTimeout bounds a client's TLS handshake.
const HandshakeTimeout = 10 * time.Second

// Settings configure a Server. The callbacks feed the receiver's telemetry.
type Settings struct {
	Name           string // for logs: "tcp", "tls", "syslog/tcp", ...
	MaxConnections int
	TLS            *tls.Config // nil for plain TCP
	Logger         *zap.Logger
	// Watch (required) handles accept errors: temporary ones are waited
	// out, any other ends accepting (connections already open are served
	// on) and is reported unless Close caused it.
	Watch *Watch
	// Handle serves one connection and returns when it is done; the server
	// closes the connection afterwards.
	Handle func(srv *Server, conn net.Conn)
	// Rejected is told why a connection was closed at once: "limit" (it
	// is reset, see Serve) or "tls_handshake".
	Rejected func(reason string)
	// Active is told +1 and -1 as connections start and end.
	Active func(delta int64)
}

// Server accepts connections until Close.
type Server struct {
	s       Settings
	ln      net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing atomic.Bool // set under mu, read without it by SetReadDeadline
	// refusedLog is Logger at most once per 10 s: the refusals of a flood of
	// connections are counted (Rejected), not each logged.
	refusedLog *zap.Logger
}

// Serve starts accepting on ln. A connection beyond MaxConnections is
// accepted by the kernel before the server sees it, so the sender's connect
// succeeds; the server then resets it at once (RST, see Abort), counts it
// (Rejected "limit") and logs it at most once per 10 s. The reset, rather
// than an orderly close, makes the sender's next write fail instead of
// vanishing into a closed socket.
func Serve(ln net.Listener, s Settings) *Server {
	srv := &Server{s: s, ln: ln, conns: make(map[net.Conn]struct{}),
		refusedLog: s.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			return zapcore.NewSamplerWithOptions(c, 10*time.Second, 1, 0)
		}))}
	slots := make(chan struct{}, s.MaxConnections)
	accepting := s.Watch.Listener(ln)
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		for {
			conn, err := accepting.Accept()
			if err != nil {
				s.Watch.Stop(err)
				return
			}
			select {
			case slots <- struct{}{}:
			default:
				s.Rejected("limit")
				srv.refusedLog.Warn("Connection refused: max_connections reached; it was reset, the refusals are counted",
					zap.String("transport", s.Name), zap.Int("max_connections", s.MaxConnections),
					zap.Stringer("peer", conn.RemoteAddr()))
				Abort(conn)
				_ = conn.Close()
				continue
			}
			if !srv.track(conn) {
				<-slots
				_ = conn.Close()
				return
			}
			s.Active(1)
			srv.wg.Add(1)
			go func() {
				defer srv.wg.Done()
				srv.serve(conn)
				srv.untrack(conn)
				<-slots
				// only now, so that "active" never reads lower than the slots held
				s.Active(-1)
			}()
		}
	}()
	return srv
}

func (srv *Server) serve(conn net.Conn) {
	if srv.s.TLS != nil {
		tc := tls.Server(conn, srv.s.TLS)
		_ = conn.SetDeadline(time.Now().Add(HandshakeTimeout))
		if err := tc.Handshake(); err != nil {
			srv.s.Rejected("tls_handshake")
			srv.s.Logger.Warn("TLS handshake failed", zap.String("transport", srv.s.Name),
				zap.Stringer("peer", conn.RemoteAddr()), zap.Error(err))
			return
		}
		_ = conn.SetDeadline(time.Time{})
		conn = tc
	}
	srv.s.Handle(srv, conn)
}

func (srv *Server) track(c net.Conn) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closing.Load() {
		return false
	}
	srv.conns[c] = struct{}{}
	return true
}

func (srv *Server) untrack(c net.Conn) {
	srv.mu.Lock()
	delete(srv.conns, c)
	srv.mu.Unlock()
	_ = c.Close()
}

// Addr is the listening address.
func (srv *Server) Addr() net.Addr { return srv.ln.Addr() }

// Closing reports whether Close has begun; a handler whose read timed out
// uses it to tell shutdown from an idle timeout.
func (srv *Server) Closing() bool { return srv.closing.Load() }

// expired is a read deadline long past: a read with it returns at once.
var expired = time.Unix(1, 0)

// SetReadDeadline sets conn's read deadline to t, unless Close has begun:
// the deadline then stays expired, so the handler's next read returns at
// once. Handlers set their (idle) deadlines through it: checking Closing
// and then setting a deadline would race with Close, which could expire
// the deadlines in between and have the later one block the shutdown
// until it passed.
func (srv *Server) SetReadDeadline(conn net.Conn, t time.Time) error {
	err := conn.SetReadDeadline(t)
	// Close sets closing before it expires the deadlines: either this sees
	// it, or Close's deadline comes after the one just set
	if srv.closing.Load() {
		return conn.SetReadDeadline(expired)
	}
	return err
}

// Abort makes the coming close of conn (a TCP connection, or TLS over
// one) a reset, RST, instead of an orderly FIN. A sender that writes
// without reading (heplify, captagent) gets an error at its next write and
// reconnects, and resends that message where it does; after a FIN, that
// write would succeed into a socket already gone, and be lost.
func Abort(conn net.Conn) {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
}

// Close stops accepting and makes every handler's blocked read return, so
// that it can deliver what it already framed; then waits for them.
func (srv *Server) Close() error {
	srv.s.Watch.Close()
	srv.mu.Lock()
	srv.closing.Store(true)
	for c := range srv.conns {
		_ = c.SetReadDeadline(expired)
	}
	srv.mu.Unlock()
	err := srv.ln.Close()
	srv.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
