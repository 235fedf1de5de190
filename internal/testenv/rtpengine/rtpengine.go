// Package rtpengine runs Debian's rtpengine-daemon for tests: userspace
// forwarding only (no kernel module, no iptables), its NG control port on a
// free loopback address.
package rtpengine

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/proxy/rtpengine"
)

// Daemon is one running rtpengine.
type Daemon struct {
	// Addr is the NG control address (UDP).
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs rtpengine with media ports in [portMin, portMax] (keep the
// ranges of tests that may run at once apart) and waits until it answers
// an NG ping. It is killed when the test ends.
func Start(t testing.TB, portMin, portMax int) *Daemon {
	t.Helper()
	return StartOn(t, ports.Addr(t), portMin, portMax)
}

// StartOn is Start with the NG control address given (to restart an engine
// where a proxy expects it).
func StartOn(t testing.TB, addr string, portMin, portMax int) *Daemon {
	t.Helper()
	bin, err := exec.LookPath("rtpengine")
	if err != nil {
		t.Fatal("rtpengine not found: install Debian's rtpengine-daemon (make deps-apt)")
	}
	d := &Daemon{Addr: addr, done: make(chan struct{})}
	d.cmd = exec.Command(bin, "--foreground", "--log-stderr", "--table=-1", "--interface=127.0.0.1",
		"--listen-ng="+d.Addr, "--port-min="+strconv.Itoa(portMin), "--port-max="+strconv.Itoa(portMax), "--log-level=4")
	d.cmd.Stdout, d.cmd.Stderr = os.Stderr, os.Stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(d.Kill)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rtpengine.Ping(ctx, d.Addr)
		cancel()
		if err == nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("rtpengine never answered ping on %s: %v", d.Addr, err)
		}
	}
}

// Kill stops the daemon and waits for it to exit.
func (d *Daemon) Kill() {
	_ = d.cmd.Process.Kill()
	<-d.done
}
