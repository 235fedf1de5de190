package sendconn

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peek looks at a stream connection's socket without blocking and without
// consuming: a FIN or RST already in the kernel shows as a zero-byte or
// failed MSG_PEEK.
func peek(c net.Conn) peekState {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peekUnknown
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return peekUnknown
	}
	state := peekUnknown
	_ = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case err == nil && n == 0:
			state = peekClosed
		case err == nil:
			state = peekData
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			state = peekEmpty
		default:
			state = peekClosed
		}
		return true // never wait for readability
	})
	return state
}
