// Package udpdrops counts the datagrams the kernel dropped because a UDP
// socket's receive buffer was full, which the receiving program otherwise
// never sees: Linux reports a running count (SO_RXQ_OVFL) with every
// datagram it does deliver.
package udpdrops

import (
	"encoding/binary"
	"net"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OOBSize fits one SO_RXQ_OVFL control message; pass a buffer this big as
// the oob argument of ReadMsgUDP.
var OOBSize = unix.CmsgSpace(4)

// Counter turns the kernel's per-socket drop count into deltas.
type Counter struct {
	mu   sync.Mutex
	last uint32
}

// Enable asks the kernel for drop counts on conn; nil when it cannot.
func Enable(conn *net.UDPConn) *Counter {
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
	}); err != nil || serr != nil {
		return nil
	}
	return &Counter{}
}

// Update parses the control messages of one datagram and returns how many
// datagrams the kernel dropped since the last call. A nil Counter reports 0.
func (o *Counter) Update(oob []byte) uint32 {
	if o == nil {
		return 0
	}
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && int(h.Len) >= unix.CmsgLen(4) {
			total := binary.NativeEndian.Uint32(oob[unix.CmsgLen(0):])
			o.mu.Lock()
			defer o.mu.Unlock()
			// Readers sharing the socket report its count out of order: a
			// count older than the last one seen is no drop (the wrapping
			// difference would read as 4 billion).
			delta := total - o.last
			if int32(delta) <= 0 {
				return 0
			}
			o.last = total
			return delta
		}
		oob = oob[min(unix.CmsgSpace(int(h.Len)-unix.CmsgLen(0)), len(oob)):]
	}
	return 0
}
