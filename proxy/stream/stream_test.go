package stream

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/siphon-otel/siphon-otel/internal/testenv/pki"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every wait; a test that reaches it failed.
const waitFor = 10 * time.Second

// events records what a Listener reports.
type events struct {
	mu                                sync.Mutex
	active                            int
	refused, idle, handshake, retried int
	handshakeErr                      error
}

func (e *events) hooks() Events {
	return Events{
		Active:  func(d int) { e.mu.Lock(); e.active += d; e.mu.Unlock() },
		Refused: func(net.Addr) { e.mu.Lock(); e.refused++; e.mu.Unlock() },
		Idle:    func(net.Addr) { e.mu.Lock(); e.idle++; e.mu.Unlock() },
		HandshakeFailed: func(_ net.Addr, err error) {
			e.mu.Lock()
			e.handshake++
			e.handshakeErr = err
			e.mu.Unlock()
		},
		AcceptRetried: func(error) { e.mu.Lock(); e.retried++; e.mu.Unlock() },
	}
}

// read returns a copy of the counts: active, refused, idle, handshake.
func (e *events) read() (active, refused, idle, handshake int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.active, e.refused, e.idle, e.handshake
}

// server is sipgo serving a Listener, answering OPTIONS with 200: the
// proxy's own stack, with its own connection pool.
type server struct {
	l  *Listener
	ua *sipgo.UserAgent
	ev *events
}

func serve(t *testing.T, s Settings) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ev := &events{}
	s.Events = ev.hooks()
	l := Listen(ln, s)
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)))
	require.NoError(t, err)
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	require.NoError(t, err)
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	served := make(chan error, 1)
	go func() {
		if s.TLS != nil {
			served <- srv.ServeTLS(l)
		} else {
			served <- srv.ServeTCP(l)
		}
	}()
	t.Cleanup(func() {
		require.NoError(t, l.Close())
		select {
		case err := <-served:
			assert.ErrorIs(t, err, net.ErrClosed, "sipgo stops serving at the close")
		case <-time.After(waitFor):
			t.Error("sipgo still serving after the close")
		}
		_ = ua.Close()
	})
	return &server{l: l, ua: ua, ev: ev}
}

// pooled tells whether sipgo's pool holds a connection to addr. The
// lookup takes a reference; Ref(-1) gives it back without closing.
func (s *server) pooled(network, addr string) bool {
	c, err := s.ua.TransportLayer().GetConnection(network, addr)
	if err == nil {
		c.Ref(-1)
	}
	return err == nil
}

var optionsSeq sync.Mutex
var optionsN int

// options is an OPTIONS from c to the server.
func options(c net.Conn) string {
	optionsSeq.Lock()
	optionsN++
	n := optionsN
	optionsSeq.Unlock()
	id := "opt-" + strconv.Itoa(n)
	return "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP " + c.LocalAddr().String() + ";branch=z9hG4bK-" + id +
		"\r\nFrom: <sip:t@127.0.0.1>;tag=" + id + "\r\nTo: <sip:127.0.0.1>\r\nCall-ID: " + id +
		"\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
}

// ask sends an OPTIONS on c and returns the answer's first line ("" when
// the connection ended instead).
func ask(t *testing.T, c net.Conn) string {
	t.Helper()
	if _, err := c.Write([]byte(options(c))); err != nil {
		return ""
	}
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	line, err := bufio.NewReader(c).ReadString('\n')
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "no answer and no close on %s", c.LocalAddr())
	return strings.TrimSpace(line)
}

// ended waits until the server ends c (EOF or reset) and fails the test if
// it does not. It reads what comes until then.
func ended(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection from %s is still open after %s", c.LocalAddr(), waitFor)
	}
}

func dial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestMaxConnections: the listener serves MaxConnections at once and
// resets the next at once, counting it; a closed connection frees its
// slot; a connection the proxy dialled is served beside them.
func TestMaxConnections(t *testing.T) {
	const max = 3
	s := serve(t, Settings{Transport: "tcp", MaxConnections: max, IdleTimeout: time.Hour})
	var open []net.Conn
	for range max {
		c := dial(t, s.l.Addr())
		require.Equal(t, "SIP/2.0 200 OK", ask(t, c), "within the cap")
		open = append(open, c)
	}
	for i := range 5 {
		// the reset may come before connect returns
		if c, err := net.Dial("tcp", s.l.Addr().String()); err == nil {
			ended(t, c)
			c.Close()
		} else {
			require.ErrorIs(t, err, syscall.ECONNRESET)
		}
		_, refused, _, _ := s.ev.read()
		assert.Equal(t, i+1, refused, "each refusal counted")
	}
	active, _, _, _ := s.ev.read()
	assert.Equal(t, max, active, "refused connections never counted active")
	for _, c := range open {
		assert.Equal(t, "SIP/2.0 200 OK", ask(t, c), "the connections within the cap go on")
	}

	// a next hop the proxy dials, with the cap reached
	hop, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer hop.Close()
	out, err := net.Dial("tcp", hop.Addr().String())
	require.NoError(t, err)
	far, err := hop.Accept()
	require.NoError(t, err)
	defer far.Close()
	require.True(t, s.l.Inject(out))
	assert.Equal(t, "SIP/2.0 200 OK", ask(t, far), "a dialled connection is served, not refused")
	active, refused, _, _ := s.ev.read()
	assert.Equal(t, max+1, active)
	assert.Equal(t, 5, refused)

	require.NoError(t, open[0].Close())
	require.Eventually(t, func() bool { a, _, _, _ := s.ev.read(); return a == max }, waitFor, 10*time.Millisecond,
		"the slot comes back when the peer hangs up")
	assert.Equal(t, "SIP/2.0 200 OK", ask(t, dial(t, s.l.Addr())), "a new connection takes the free slot")
	_, refused, _, _ = s.ev.read()
	assert.Equal(t, 5, refused)
}

// TestIdleTimeout: a connection that carries no message for IdleTimeout
// is closed, counted and gone from sipgo's pool; one that sends RFC 5626
// pings stays open past it; one that trickles a message that never ends is
// closed like a silent one.
func TestIdleTimeout(t *testing.T) {
	const idle = 1500 * time.Millisecond
	s := serve(t, Settings{Transport: "tcp", MaxConnections: 10, IdleTimeout: idle})

	pinging := dial(t, s.l.Addr())
	silent := dial(t, s.l.Addr())
	trickling := dial(t, s.l.Addr())
	require.Equal(t, "SIP/2.0 200 OK", ask(t, silent), "served, then silent")
	require.True(t, s.pooled("tcp", silent.LocalAddr().String()), "sipgo pools the connection")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	loop := func(each func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(idle / 10)
			defer tick.Stop()
			for i := 0; i < 1000; i++ { // bounded: 150 s at most
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if each(i) != nil {
					return
				}
			}
		}()
	}
	loop(func(int) error {
		if _, err := pinging.Write([]byte("\r\n\r\n")); err != nil {
			return err
		}
		_ = pinging.SetReadDeadline(time.Now().Add(waitFor))
		_, err := io.ReadFull(pinging, make([]byte, 2)) // the pong
		return err
	})
	head := options(trickling)
	loop(func(i int) error {
		_, err := trickling.Write([]byte(head[i%20 : i%20+1]))
		return err
	})

	ended(t, silent)
	ended(t, trickling)
	close(stop)
	wg.Wait()
	_, _, idleClosed, _ := s.ev.read()
	assert.Equal(t, 2, idleClosed, "the silent and the trickling connections")
	// sipgo drops a connection from its pool once its read loop ended
	for _, c := range []net.Conn{silent, trickling} {
		assert.Eventually(t, func() bool { return !s.pooled("tcp", c.LocalAddr().String()) }, waitFor, 10*time.Millisecond,
			"sipgo dropped %s from its pool", c.LocalAddr())
	}
	// opened before the silent one, which was closed only after idle
	// without a message: the pings kept it open past the timeout
	assert.Equal(t, "SIP/2.0 200 OK", ask(t, pinging), "the pinging connection is served")
	// a connection is counted closed once its socket is
	assert.Eventually(t, func() bool { a, _, _, _ := s.ev.read(); return a == 1 }, waitFor, 10*time.Millisecond, "active")
}

// TestTLSHandshake: a client that opens a connection to a TLS listener
// and never completes the handshake is cut after HandshakeTimeout, one
// that sends no TLS at all at once; both are counted. A real client is
// served.
func TestTLSHandshake(t *testing.T) {
	certs := pki.New(t)
	cert, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	require.NoError(t, err)
	s := serve(t, Settings{Transport: "tls", MaxConnections: 10, IdleTimeout: time.Hour, HandshakeTimeout: 500 * time.Millisecond,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})

	mute := dial(t, s.l.Addr())
	ended(t, mute)
	_, _, _, hs := s.ev.read()
	assert.Equal(t, 1, hs, "a silent client")
	s.ev.mu.Lock()
	assert.ErrorIs(t, s.ev.handshakeErr, os.ErrDeadlineExceeded)
	s.ev.mu.Unlock()

	plain := dial(t, s.l.Addr())
	_, _ = plain.Write([]byte(options(plain)))
	ended(t, plain)
	_, _, _, hs = s.ev.read()
	assert.Equal(t, 2, hs, "SIP without TLS")

	roots := x509.NewCertPool()
	ca, err := os.ReadFile(certs.CAFile)
	require.NoError(t, err)
	require.True(t, roots.AppendCertsFromPEM(ca))
	good, err := tls.Dial("tcp", s.l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost"})
	require.NoError(t, err)
	defer good.Close()
	assert.Equal(t, "SIP/2.0 200 OK", ask(t, good))
	_, _, _, hs = s.ev.read()
	assert.Equal(t, 2, hs)
	assert.Eventually(t, func() bool { a, _, _, _ := s.ev.read(); return a == 1 }, waitFor, 10*time.Millisecond, "active")
}
