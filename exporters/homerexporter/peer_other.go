//go:build !linux

package homerexporter

import "net"

// peerClosed relies on the watcher goroutine alone off Linux.
func peerClosed(net.Conn) bool { return false }
