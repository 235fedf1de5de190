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
	"time"

	"go.uber.org/zap"
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
	// Rejected is told why a connection was closed at once: "limit" or
	// "tls_handshake".
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
	closing bool
}

// Serve starts accepting on ln.
func Serve(ln net.Listener, s Settings) *Server {
	srv := &Server{s: s, ln: ln, conns: make(map[net.Conn]struct{})}
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
				s.Logger.Warn("connection refused: max_connections reached",
					zap.String("transport", s.Name), zap.Int("max_connections", s.MaxConnections))
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
	if srv.closing {
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
func (srv *Server) Closing() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.closing
}

// Close stops accepting and makes every handler's blocked read return, so
// that it can deliver what it already framed; then waits for them.
func (srv *Server) Close() error {
	srv.s.Watch.Close()
	srv.mu.Lock()
	srv.closing = true
	for c := range srv.conns {
		_ = c.SetReadDeadline(time.Now())
	}
	srv.mu.Unlock()
	err := srv.ln.Close()
	srv.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
