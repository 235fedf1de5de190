package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/fakes"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordHandler keeps the records that reach it, from level up.
type recordHandler struct {
	level slog.Level
	attrs []slog.Attr
	mu    *sync.Mutex
	recs  *[]slog.Record
}

func newRecordHandler(level slog.Level) *recordHandler {
	return &recordHandler{level: level, mu: &sync.Mutex{}, recs: &[]slog.Record{}}
}

func (h *recordHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	h.mu.Lock()
	*h.recs = append(*h.recs, r)
	h.mu.Unlock()
	return nil
}
func (h *recordHandler) WithAttrs(a []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), a...)
	return &c
}
func (h *recordHandler) WithGroup(string) slog.Handler { return h }

func (h *recordHandler) records() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]slog.Record(nil), *h.recs...)
}

func attrs(r slog.Record) map[string]string {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	return m
}

// TestMalformedRecord feeds countingHandler the records sipgo v1.7.2
// writes, built as sipgo builds them: the same loggers (With "caller"), the
// same message and attributes, and the errors its parser and transaction
// keys return for such messages. See countingHandler for where each comes
// from.
func TestMalformedRecord(t *testing.T) {
	garbage := []byte("garbage\r\n\r\n")
	_, parseErr := sip.ParseMessage(garbage)
	require.Error(t, parseErr)
	noCSeq, err := sip.ParseMessage([]byte("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1\r\n" +
		"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"))
	require.NoError(t, err, "sipgo parses it: the transaction layer refuses it")
	_, serverKeyErr := sip.ServerTxKeyMake(noCSeq)
	require.Error(t, serverKeyErr)
	noVia, err := sip.ParseMessage([]byte("SIP/2.0 200 OK\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: x\r\n" +
		"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	require.NoError(t, err)
	_, clientKeyErr := sip.ClientTxKeyMake(noVia)
	require.Error(t, clientKeyErr)

	// the loggers New hands sipgo, as sipgo derives its own from them
	transport := func(l *slog.Logger, kind string) *slog.Logger {
		return l.With("caller", "TransportLayer").With("caller", "Transport<"+kind+">")
	}
	txLayer := func(l *slog.Logger) *slog.Logger { return l.With("caller", "TransactionLayer") }

	cases := []struct {
		name      string
		log       func(l *slog.Logger)
		malformed bool
	}{
		{"UDP parse failure", func(l *slog.Logger) {
			transport(l, "UDP").Error("failed to parse", "data", string(garbage), "error", parseErr)
		}, true},
		{"TCP parse failure", func(l *slog.Logger) {
			transport(l, "TCP").Error("failed to parse", "error", parseErr, "data", string(garbage))
		}, true},
		{"TCP message too large", func(l *slog.Logger) {
			transport(l, "TCP").Error("failed to parse", "error", sip.ErrMessageTooLarge, "data", string(garbage))
		}, true},
		{"request without CSeq", func(l *slog.Logger) {
			txLayer(l).Error("Server tx failed to handle request", "error", fmt.Errorf("make key failed: %w", serverKeyErr),
				"req", noCSeq.(*sip.Request).StartLine())
		}, true},
		{"response without Via", func(l *slog.Logger) {
			txLayer(l).Error("Client tx failed to handle response", "error", fmt.Errorf("make key failed: %w", clientKeyErr))
		}, true},
		// not malformed
		{"the stateless 400 that goes with a request without CSeq", func(l *slog.Logger) {
			txLayer(l).Error("Failed to send stateless 400 for malformed request", "error", errors.New("write: broken pipe"),
				"reason", serverKeyErr.Error(), "req", noCSeq.(*sip.Request).StartLine())
		}, false},
		{"a read error", func(l *slog.Logger) {
			transport(l, "UDP").Error("Read connection error", "laddr", "127.0.0.1:5060", "error", io.EOF)
		}, false},
		{"another transaction failure", func(l *slog.Logger) {
			txLayer(l).Error("Server tx failed to handle request", "error", errors.New("server tx get connection failed: refused"),
				"req", "INVITE sip:b@x SIP/2.0")
		}, false},
		{"below Error", func(l *slog.Logger) {
			transport(l, "UDP").Warn("failed to parse", "data", string(garbage), "error", parseErr)
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// the count does not depend on the log level; the record is
			// logged at debug level, without its bytes
			for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelError + 4} {
				under := newRecordHandler(level)
				count := prometheus.NewCounter(prometheus.CounterOpts{Name: "malformed"})
				c.log(slog.New(&countingHandler{Handler: under, malformed: count}))
				recs := under.records()
				if !c.malformed {
					assert.Equal(t, 0.0, counter(count), "level %v", level)
					if level > slog.LevelError {
						assert.Empty(t, recs, "level %v: filtered as before", level)
						continue
					}
					require.Len(t, recs, 1, "level %v: passed on as it is", level)
					assert.NotEqual(t, "malformed SIP message dropped", recs[0].Message)
					continue
				}
				assert.Equal(t, 1.0, counter(count), "level %v", level)
				if level > slog.LevelDebug {
					assert.Empty(t, recs, "level %v: nothing logged above debug", level)
					continue
				}
				require.Len(t, recs, 1)
				assert.Equal(t, slog.LevelDebug, recs[0].Level)
				assert.Equal(t, "malformed SIP message dropped", recs[0].Message)
				a := attrs(recs[0])
				assert.NotContains(t, a, "data", "not the bytes")
				assert.NotEmpty(t, a["error"])
				assert.NotEmpty(t, a["caller"], "the logger's attributes stay")
			}
		})
	}
}

// datagrams is a UDP socket's reads: one datagram each, then EOF.
type datagrams struct {
	mu sync.Mutex
	d  [][]byte
}

func (r *datagrams) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.d) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.d[0])
	r.d = r.d[1:]
	return n, nil
}

// pipeListener hands sipgo the server ends of in-memory connections.
type pipeListener struct{ conns chan net.Conn }

func (l *pipeListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (l *pipeListener) Close() error   { return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060} }

// tcpPipe is a net.Pipe end with TCP addresses (sipgo keys its pool by
// address).
type tcpPipe struct {
	net.Conn
	local, remote net.Addr
}

func (c tcpPipe) LocalAddr() net.Addr  { return c.local }
func (c tcpPipe) RemoteAddr() net.Addr { return c.remote }

// TestMalformedFromSipgo sends what sipgo cannot parse through the
// proxy's own sipgo transports, in memory (sipgo's fakes.UDPConn, net.Pipe
// for TCP): each unparseable message counts once, other records do not (the
// end of the UDP reads is logged at Error as well).
func TestMalformedFromSipgo(t *testing.T) {
	t.Run("udp", func(t *testing.T) {
		logs := newRecordHandler(slog.LevelDebug)
		h := newHarness(t, nil, func(o *Options) { o.Logger = slog.New(logs) })
		conn := &fakes.UDPConn{
			LAddr: net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060},
			RAddr: net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5070},
			Reader: &datagrams{d: [][]byte{
				[]byte("garbage\r\n\r\n"),
				{0, 1, 2, 3, 0xff, 0xfe, 10, 13, 10, 13, 10, 9, 9, 9, 9},
				[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
				[]byte("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK2\r\nFrom: <sip:a@x>;tag=1\r\n" +
					"To: <sip:b@x>\r\nCall-ID: x1\r\nCSeq: abc OPTIONS\r\nContent-Length: 0\r\n\r\n"),
				[]byte("\r\n\r\n"), // a keep-alive
				make([]byte, 16),   // zeros: skipped
			}},
		}
		require.NoError(t, h.p.srv.ServeUDP(conn), "returns at the end of the reads")
		assert.Equal(t, 4.0, counter(h.p.m.MalformedMessages))
		var dropped, readErr int
		for _, r := range logs.records() {
			switch r.Message {
			case "malformed SIP message dropped":
				dropped++
				assert.NotContains(t, attrs(r), "data")
			case "Read connection error":
				readErr++
			case "failed to parse":
				t.Errorf("a parse failure logged as sipgo wrote it: %v", attrs(r))
			}
		}
		assert.Equal(t, 4, dropped)
		assert.Equal(t, 1, readErr, "logged, not counted")
	})

	t.Run("tcp", func(t *testing.T) {
		// the harness logs nowhere (slog.DiscardHandler): the count must
		// not depend on the logger
		h := newHarness(t, nil)
		l := &pipeListener{conns: make(chan net.Conn)}
		served := make(chan error, 1)
		go func() { served <- h.p.srv.ServeTCP(l) }()
		for i, payload := range []string{
			"garbage\r\n\r\n",
			// past sipgo's message bound (ParseMaxMessageLength) without an end
			"OPTIONS sip:127.0.0.1 SIP/2.0\r\nX-Big: " + strings.Repeat("a", 100_000),
		} {
			client, server := net.Pipe()
			l.conns <- tcpPipe{Conn: server, local: l.Addr(), remote: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 40000 + i}}
			_, _ = client.Write([]byte(payload))                // fails once sipgo hangs up
			_ = client.SetReadDeadline(time.Now().Add(waitFor)) // an error: sipgo hung up already
			_, err := client.Read(make([]byte, 1))
			assert.ErrorIs(t, err, io.EOF, "sipgo closes a connection it cannot frame")
			client.Close()
			assert.Equal(t, float64(i+1), counter(h.p.m.MalformedMessages), "counted before the close")
		}
		close(l.conns)
		select {
		case err := <-served:
			assert.ErrorIs(t, err, net.ErrClosed)
		case <-time.After(waitFor):
			t.Fatal("ServeTCP did not return")
		}
	})
}
