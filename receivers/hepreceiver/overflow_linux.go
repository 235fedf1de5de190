package hepreceiver

import (
	"encoding/binary"
	"net"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// oobSize fits one SO_RXQ_OVFL control message.
var oobSize = unix.CmsgSpace(4)

// overflowCounter turns the kernel's per-socket count of datagrams dropped
// for a full receive buffer (SO_RXQ_OVFL, sent with every datagram) into
// deltas, so that drops the receiver never saw are counted too.
type overflowCounter struct {
	mu   sync.Mutex
	last uint32
}

func enableOverflowCounter(conn *net.UDPConn) *overflowCounter {
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
	return &overflowCounter{}
}

// update parses the control messages of one datagram and returns how many
// datagrams the kernel dropped since the last call.
func (o *overflowCounter) update(oob []byte) uint32 {
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
			delta := total - o.last
			o.last = total
			o.mu.Unlock()
			return delta
		}
		oob = oob[min(unix.CmsgSpace(int(h.Len)-unix.CmsgLen(0)), len(oob)):]
	}
	return 0
}
