package sendconn

import (
	"encoding/binary"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
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

// watchErrors has the kernel queue every ICMP error about the socket's
// datagrams (IP_RECVERR), besides setting the one pending error: a write
// consumes the pending error, and sendmmsg(2) drops it when a message
// after the first meets it, returning the count so far. The queue keeps
// each report for the next check.
func watchErrors(conn net.Conn) {
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		if domain, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil && domain == unix.AF_INET6 {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
		}
		// on an IPv6 socket this serves IPv4-mapped targets
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
	})
}

// maxQueued bounds the reports one check reads; the rest wait for the
// next.
const maxQueued = 1024

// pendingLoss reads, without waiting, the ICMP errors queued on the socket
// and its pending error, and returns the reason of the last that means a
// datagram was lost. Reading clears them.
func pendingLoss(conn net.Conn, scratch *[]byte) (reason string, lost bool) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return "", false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return "", false
	}
	if cap(*scratch) < 256 {
		*scratch = make([]byte, 256) // one datagram byte, then control messages
	}
	buf := (*scratch)[:256]
	_ = raw.Control(func(fd uintptr) {
		for range maxQueued {
			_, oobn, _, _, err := unix.Recvmsg(int(fd), buf[:1], buf[1:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err != nil {
				break // EAGAIN: the queue is empty
			}
			msgs, err := unix.ParseSocketControlMessage(buf[1 : 1+oobn])
			if err != nil {
				continue
			}
			for _, m := range msgs {
				if r, ok := queuedLoss(m); ok {
					reason, lost = r, true
				}
			}
		}
		if e, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR); err == nil && e != 0 {
			if r, ok := lossReason(syscall.Errno(e)); ok {
				reason, lost = r, true
			}
		}
	})
	return reason, lost
}

// queuedLoss reads one IP_RECVERR/IPV6_RECVERR control message: a struct
// sock_extended_err (errno, origin, ICMP type and code, ...).
func queuedLoss(m unix.SocketControlMessage) (string, bool) {
	ipv4 := m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR
	ipv6 := m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR
	if !ipv4 && !ipv6 || len(m.Data) < int(unsafe.Sizeof(unix.SockExtendedErr{})) {
		return "", false
	}
	if origin := m.Data[4]; origin != unix.SO_EE_ORIGIN_ICMP && origin != unix.SO_EE_ORIGIN_ICMP6 {
		return "", false // a local error (EMSGSIZE, say) is not a report of loss
	}
	return lossReason(syscall.Errno(binary.NativeEndian.Uint32(m.Data)))
}
