//go:build !linux

package udpdrops

import "net"

// OOBSize is 0: only Linux reports drops.
const OOBSize = 0

// Counter counts nothing off Linux.
type Counter struct{}

// Enable returns nil off Linux.
func Enable(*net.UDPConn) *Counter { return nil }

// Update reports 0 off Linux.
func (*Counter) Update([]byte) uint32 { return 0 }
