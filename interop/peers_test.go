package interop

import (
	"net"
	"strconv"
	"testing"

	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// port returns a free loopback port (for both UDP and TCP on this host).
func port(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(ports.Addr(t))
	n, _ := strconv.Atoi(p)
	return n
}
