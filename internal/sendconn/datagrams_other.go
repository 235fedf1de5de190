//go:build !linux

package sendconn

import "net"

func newBatchWriter(conn net.Conn) batchWriter { return plainWriter{conn} }
