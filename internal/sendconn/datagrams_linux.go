package sendconn

import (
	"net"

	"golang.org/x/net/ipv4"
)

// mmsgWriter writes many datagrams per sendmmsg(2) call. The socket is
// connected, so the messages carry no address (and ipv4's batch writer
// serves IPv6 sockets as well: it only fills msghdr).
type mmsgWriter struct {
	pc   *ipv4.PacketConn
	msgs []ipv4.Message
	bufs [][]byte // one per message, so that Buffers need no allocation
}

func newBatchWriter(conn net.Conn) batchWriter {
	pc, ok := conn.(net.PacketConn)
	if !ok {
		return plainWriter{conn}
	}
	return &mmsgWriter{pc: ipv4.NewPacketConn(pc)}
}

func (m *mmsgWriter) write(buf []byte, ends []int, k int) (int, error) {
	if len(ends)-k == 1 { // one datagram: a plain write is one call too
		return plainWriter{m.pc.PacketConn.(net.Conn)}.write(buf, ends, k)
	}
	if len(m.bufs) < len(ends) {
		m.bufs = make([][]byte, len(ends))
	}
	m.msgs = m.msgs[:0]
	start := 0
	if k > 0 {
		start = ends[k-1]
	}
	for i, end := range ends[k:] {
		m.bufs[i] = buf[start:end]
		m.msgs = append(m.msgs, ipv4.Message{Buffers: m.bufs[i : i+1]})
		start = end
	}
	n, err := m.pc.WriteBatch(m.msgs, 0)
	return max(n, 0), err // n is -1 when the first message failed
}
