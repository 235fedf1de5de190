package heptrace

import (
	"net"
	"time"
)

// Observer is told about every SIP message crossing a wrapped socket: the
// UDP PacketConn here, TCP and TLS connections in package stream.
type Observer interface {
	Capture(transport string, src, dst net.Addr, payload []byte, at time.Time)
}

// PacketConn wraps a UDP socket: every datagram read or written is one SIP
// message (or a keep-alive, which is skipped).
type PacketConn struct {
	net.PacketConn
	Obs Observer
}

// ReadFrom reads a datagram and captures it.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if n > 4 && c.Obs != nil {
		c.Obs.Capture("udp", addr, c.LocalAddr(), b[:n], time.Now())
	}
	return n, addr, err
}

// WriteTo writes a datagram and captures it.
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(b, addr)
	if err == nil && n > 4 && c.Obs != nil {
		c.Obs.Capture("udp", c.LocalAddr(), addr, b[:n], time.Now())
	}
	return n, err
}
