package sendconn

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// lines is a TCP server collecting newline-terminated lines.
func lines(t *testing.T) (string, <-chan string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	out := make(chan string, 1000)
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go func() {
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					out <- sc.Text()
				}
			}()
		}
	}()
	return ln.Addr().String(), out, func() {
		ln.Close()
		for _, c := range conns {
			c.Close()
		}
	}
}

func enc(skip int) Encoder {
	return func(dst []byte, i int) ([]byte, bool) {
		if i == skip {
			return dst, false
		}
		return fmt.Appendf(dst, "record-%d\n", i), true
	}
}

func TestStreamSendSkipsAndRedials(t *testing.T) {
	addr, out, stop := lines(t)
	dials, sent := 0, 0
	c := &Conn{Transport: TCP, Endpoint: addr, Timeout: time.Second, Logger: zap.NewNop(),
		Dialed: func(bool) { dials++ }, Sent: func(n int) { sent += n }}
	defer c.Close(context.Background())
	from, err := c.Send(context.Background(), 5, enc(2))
	require.NoError(t, err)
	assert.Equal(t, 4, sent)
	assert.Equal(t, 5, from)
	var got []string
	for range 4 {
		got = append(got, <-out)
	}
	assert.Equal(t, []string{"record-0", "record-1", "record-3", "record-4"}, got)

	// the target goes away: the next send notices before writing, redials
	// and fails without claiming anything was sent
	stop()
	time.Sleep(50 * time.Millisecond) // let the FIN arrive
	from, err = c.Send(context.Background(), 3, enc(-1))
	require.Error(t, err)
	assert.Equal(t, 4, sent)
	assert.Equal(t, 0, from)
	assert.Equal(t, 2, dials)
	// and backs off before the next dial
	_, err = c.Send(context.Background(), 1, enc(-1))
	assert.ErrorContains(t, err, "unreachable, next attempt in")
	assert.Equal(t, 2, dials)
}

// tally counts what a Conn reports; the timer reports from its own
// goroutine.
type tally struct {
	mu         sync.Mutex
	sent, lost int
	reasons    map[string]int
}

func (ta *tally) conn(endpoint string) *Conn {
	ta.reasons = map[string]int{}
	return &Conn{Transport: UDP, Endpoint: endpoint, Timeout: time.Second, Logger: zap.NewNop(),
		Sent: func(n int) { ta.mu.Lock(); ta.sent += n; ta.mu.Unlock() },
		Lost: func(reason string, n int) { ta.mu.Lock(); ta.lost += n; ta.reasons[reason] += n; ta.mu.Unlock() },
	}
}

func (ta *tally) read() (sent, lost int) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return ta.sent, ta.lost
}

// sink is a UDP listener counting the datagrams it receives.
type sink struct {
	pc       net.PacketConn
	mu       sync.Mutex
	received int
	done     chan struct{}
}

func listen(t *testing.T, addr string) *sink {
	pc, err := net.ListenPacket("udp", addr)
	require.NoError(t, err)
	require.NoError(t, pc.(*net.UDPConn).SetReadBuffer(4<<20))
	s := &sink{pc: pc, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 100)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			s.mu.Lock()
			s.received++
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { pc.Close(); <-s.done })
	return s
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
}

// closedPort returns a loopback address where nothing listens, on host
// "127.0.0.1" or "::1" (a port testport reserved for this process), or ""
// when the system has no such loopback.
func closedPort(t *testing.T, host string) string {
	addr := net.JoinHostPort(host, strconv.Itoa(ports.Port(t)))
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return ""
	}
	require.NoError(t, pc.Close())
	return addr
}

// TestDatagramLossAccounting: datagrams written back to back, in batches
// larger than one sendmmsg call and in several sends, to a closed port, a
// listening one, and one that starts listening after a while, over IPv4
// and IPv6 loopback. Every datagram written is reported exactly once, sent
// or lost; none counted sent is missing at the receiver; a closed port's
// are all lost, by reason port_unreachable.
func TestDatagramLossAccounting(t *testing.T) {
	const sends, perSend = 4, datagramBatch + 44
	for _, host := range []string{"127.0.0.1", "::1"} {
		for _, tc := range []struct {
			name      string
			listening []bool // per round of sends
		}{
			{"listening", []bool{true}},
			{"closed", []bool{false}},
			{"comes back", []bool{false, true}},
		} {
			t.Run(host+" "+tc.name, func(t *testing.T) {
				addr := closedPort(t, host)
				if addr == "" {
					t.Skipf("no %s loopback", host)
				}
				var ta tally
				c := ta.conn(addr)
				defer c.Close(context.Background())
				var s *sink
				wantLost := 0
				for round, listening := range tc.listening {
					if listening {
						s = listen(t, addr)
					}
					for range sends {
						from, err := c.Send(context.Background(), perSend, enc(-1))
						require.NoError(t, err, "a closed UDP port does not fail the send")
						require.Equal(t, perSend, from)
					}
					written := (round + 1) * sends * perSend
					assert.Eventually(t, func() bool {
						sent, lost := ta.read()
						return sent+lost == written
					}, 10*time.Second, time.Millisecond)
					sent, lost := ta.read()
					t.Logf("round %d: written %d, sent %d, lost %d", round, written, sent, lost)
					require.Equal(t, written, sent+lost, "sent %d + lost %d", sent, lost)
					if !listening {
						wantLost += sends * perSend
						assert.Equal(t, wantLost, lost, "every datagram to the closed port is lost")
						assert.Equal(t, lost, ta.reasons[PortUnreachable])
						continue
					}
					assert.Eventually(t, func() bool { return s.count() == sends*perSend }, 10*time.Second, time.Millisecond)
					assert.Equal(t, sends*perSend, s.count(), "all arrive")
					assert.LessOrEqual(t, sent, s.count(), "a datagram counted sent arrived")
					assert.Positive(t, sent)
					if round == 0 {
						assert.Zero(t, lost)
					}
				}
			})
		}
	}
}

// TestCloseSettles: Close leaves nothing unconfirmed. To a listening port
// it waits out the grace and counts the datagrams sent; to a closed port
// it counts them lost without waiting for RefusingGrace.
func TestCloseSettles(t *testing.T) {
	for _, tc := range []struct {
		name      string
		listening bool
	}{{"listening", true}, {"closed", false}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := closedPort(t, "127.0.0.1")
			if tc.listening {
				listen(t, addr)
			}
			var ta tally
			c := ta.conn(addr)
			for range 3 {
				_, err := c.Send(context.Background(), 100, enc(-1))
				require.NoError(t, err)
			}
			c.Close(context.Background())
			sent, lost := ta.read()
			assert.Equal(t, 300, sent+lost, "sent %d + lost %d", sent, lost)
			if tc.listening {
				assert.Equal(t, 300, sent)
			} else {
				assert.Equal(t, 300, lost)
			}
		})
	}
}

// TestDatagramBatches: more records than one batch write carries, some
// skipped by the encoder, arrive one datagram each, in order, on IPv4 and
// IPv6 loopback.
func TestDatagramBatches(t *testing.T) {
	for _, network := range []string{"127.0.0.1:0", "[::1]:0"} {
		pc, err := net.ListenPacket("udp", network)
		if err != nil && network[0] == '[' {
			t.Logf("no IPv6 loopback: %v", err)
			continue
		}
		require.NoError(t, err)
		require.NoError(t, pc.(*net.UDPConn).SetReadBuffer(4<<20))
		c := &Conn{Transport: UDP, Endpoint: pc.LocalAddr().String(), Timeout: time.Second, Logger: zap.NewNop()}
		const n = 2*datagramBatch + 37
		sent := 0
		c.Sent = func(k int) { sent += k }
		from, err := c.Send(context.Background(), n, func(dst []byte, i int) ([]byte, bool) {
			if i%7 == 3 {
				return dst, false
			}
			return fmt.Appendf(dst, "record-%d", i), true
		})
		require.NoError(t, err)
		assert.Equal(t, n, from)
		var want []string
		for i := range n {
			if i%7 != 3 {
				want = append(want, fmt.Sprintf("record-%d", i))
			}
		}
		var got []string
		buf := make([]byte, 100)
		require.NoError(t, pc.SetReadDeadline(time.Now().Add(5*time.Second)))
		for len(got) < len(want) {
			m, _, err := pc.ReadFrom(buf)
			require.NoError(t, err, "after %d datagrams", len(got))
			got = append(got, string(buf[:m]))
		}
		assert.Equal(t, want, got, network)
		c.Close(context.Background())
		assert.Equal(t, len(want), sent, "confirmed by Close")
		pc.Close()
	}
}

// TestBatchWriteKeepsTheReport: on loopback the ICMP error about a batch's
// first datagram comes back while sendmmsg(2) is still writing; the next
// message consumes the socket's pending error and the call returns the
// count so far, without it. The report must still be read by the next
// check (from the error queue).
func TestBatchWriteKeepsTheReport(t *testing.T) {
	addr := closedPort(t, "127.0.0.1")
	var ta tally
	c := ta.conn(addr)
	defer c.Close(context.Background())
	conn, err := c.get(context.Background())
	require.NoError(t, err)
	buf, ends := []byte("aaaabbbbccccdddd"), []int{4, 8, 12, 16}
	w, err := newBatchWriter(conn).write(buf, ends, 0)
	require.NoError(t, err, "sendmmsg returns what it wrote, not the error")
	require.Positive(t, w)
	var scratch []byte
	var reason string
	assert.Eventually(t, func() bool {
		var lost bool
		reason, lost = pendingLoss(conn, &scratch)
		return lost
	}, 5*time.Second, time.Millisecond, "the report about the %d datagrams written", w)
	assert.Equal(t, PortUnreachable, reason)
}
