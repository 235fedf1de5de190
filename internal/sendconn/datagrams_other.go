//go:build !linux

package sendconn

import "net"

func newBatchWriter(conn net.Conn) batchWriter { return plainWriter{conn} }

// watchErrors has no error queue to turn on off Linux.
func watchErrors(net.Conn) {}

// pendingLoss cannot read queued ICMP errors off Linux: only a write that
// fails reports a loss there.
func pendingLoss(net.Conn, *[]byte) (string, bool) { return "", false }
