package sendconn

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
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
	dials := 0
	c := &Conn{Transport: TCP, Endpoint: addr, Timeout: time.Second, Logger: zap.NewNop(), Dialed: func(bool) { dials++ }}
	defer c.Close()
	sent, from, err := c.Send(context.Background(), 5, enc(2))
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
	sent, from, err = c.Send(context.Background(), 3, enc(-1))
	require.Error(t, err)
	assert.Equal(t, 0, sent)
	assert.Equal(t, 0, from)
	assert.Equal(t, 2, dials)
	// and backs off before the next dial
	_, _, err = c.Send(context.Background(), 1, enc(-1))
	assert.ErrorContains(t, err, "unreachable, next attempt in")
	assert.Equal(t, 2, dials)
}

func TestDatagramRefusalAccounting(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close())
	var lostWritten, dropped int
	c := &Conn{Transport: UDP, Endpoint: addr, Timeout: time.Second, Logger: zap.NewNop(),
		Unreachable: func(written bool) {
			if written {
				lostWritten++
			} else {
				dropped++
			}
		}}
	defer c.Close()
	total, sentAll := 0, 0
	for range 200 {
		sent, from, err := c.Send(context.Background(), 10, enc(-1))
		require.NoError(t, err, "a closed UDP port does not stall the sender")
		assert.Equal(t, 10, from)
		total += 10
		sentAll += sent
	}
	assert.Positive(t, lostWritten+dropped, "the ICMP port unreachables are reported")
	assert.Equal(t, total, sentAll+dropped, "every record is written or dropped and counted")
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
		sent, from, err := c.Send(context.Background(), n, func(dst []byte, i int) ([]byte, bool) {
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
		assert.Equal(t, len(want), sent)
		var got []string
		buf := make([]byte, 100)
		require.NoError(t, pc.SetReadDeadline(time.Now().Add(5*time.Second)))
		for len(got) < len(want) {
			m, _, err := pc.ReadFrom(buf)
			require.NoError(t, err, "after %d datagrams", len(got))
			got = append(got, string(buf[:m]))
		}
		assert.Equal(t, want, got, network)
		c.Close()
		pc.Close()
	}
}
