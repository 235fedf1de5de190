package sendconn

import (
	"errors"
	"net"
	"os"
	"time"
)

type peekState int

const (
	peekUnknown peekState = iota
	peekEmpty
	peekData
	peekClosed
)

// peerClosed reports whether the capture node closed or reset a stream
// connection. Writing into such a socket "succeeds" and loses the data, so
// every push checks first. A HEP collector never writes, but a TLS server
// sends session tickets: whatever is pending is read (with a 1 ms deadline,
// which also surfaces a close_notify or EOF behind it) and discarded.
func peerClosed(c net.Conn) bool {
	var buf [512]byte
	for range 8 {
		switch peek(c) {
		case peekClosed:
			return true
		case peekEmpty, peekUnknown:
			return false
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := c.Read(buf[:])
		_ = c.SetReadDeadline(time.Time{})
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return true
		}
	}
	return false
}
