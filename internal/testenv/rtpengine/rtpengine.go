// Package rtpengine runs Debian's rtpengine-daemon for tests: userspace
// forwarding only (no kernel module, no iptables), its NG control port on a
// free loopback address, ready once it answers an NG ping.
package rtpengine

import (
	"context"
	"path/filepath"
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
	return Run(t, Options{NG: addr, PortMin: portMin, PortMax: portMax})
}

// Options configure Run.
type Options struct {
	NG               string // NG control address (UDP); default a free loopback port
	PortMin, PortMax int    // the media ports
	// Homer, when set, is where the engine sends its RTCP statistics as
	// HEP (type 5, over UDP), with capture id HomerID.
	Homer   string
	HomerID int
}

// Run runs rtpengine until the test ends and waits until it answers an NG
// ping. Every port it listens on comes from testenv/ports (its CLI port
// too, whose default would collide with a second engine).
func Run(t testing.TB, o Options) *Daemon {
	t.Helper()
	if o.NG == "" {
		o.NG = ports.Addr(t)
	}
	d := &Daemon{Addr: o.NG}
	args := rtpengine.Daemon{Interface: "127.0.0.1", NG: d.Addr, CLI: ports.Addr(t), PortMin: o.PortMin, PortMax: o.PortMax,
		Homer: o.Homer, HomerID: o.HomerID}.Args()
	d.Process = testenv.Start(t, childproc.Spec{Path: rtpengine.DaemonBinary, Log: filepath.Join(t.TempDir(), "rtpengine.log"), Args: args})
	testenv.WaitReady(t, d.Process, readyTimeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return rtpengine.Ping(ctx, d.Addr)
	})
	return d
}
