// Package rtpengine runs Debian's rtpengine-daemon for tests: userspace
// forwarding only (no kernel module, no iptables), its NG control port on a
// free loopback address, ready once it answers an NG ping.
package rtpengine

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/proxy/rtpengine"
)

// Daemon is one running rtpengine.
type Daemon struct {
	*childproc.Process
	// Addr is the NG control address (UDP).
	Addr string
}

// readyTimeout is how long rtpengine may take to answer its first ping.
const readyTimeout = 15 * time.Second

// Start runs rtpengine with media ports in [portMin, portMax] (keep the
// ranges of tests that may run at once apart) until the test ends and
// waits until it answers an NG ping.
func Start(t testing.TB, portMin, portMax int) *Daemon {
	t.Helper()
	return StartOn(t, ports.Addr(t), portMin, portMax)
}

// StartOn is Start with the NG control address given (to restart an engine
// where a proxy expects it).
func StartOn(t testing.TB, addr string, portMin, portMax int) *Daemon {
	t.Helper()
	d := &Daemon{Addr: addr}
	d.Process = testenv.Start(t, childproc.Spec{Path: "rtpengine", Log: filepath.Join(t.TempDir(), "rtpengine.log"),
		Args: []string{"--foreground", "--log-stderr", "--table=-1", "--interface=127.0.0.1", "--listen-ng=" + d.Addr,
			"--port-min=" + strconv.Itoa(portMin), "--port-max=" + strconv.Itoa(portMax), "--log-level=4"}})
	testenv.WaitReady(t, d.Process, readyTimeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return rtpengine.Ping(ctx, d.Addr)
	})
	return d
}
