package rtpengine

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startDaemon runs Debian's rtpengine-daemon in userspace mode (no kernel
// module, no tables) with its NG control port on loopback.
func startDaemon(t *testing.T) (addr string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("rtpengine")
	require.NoError(t, err, "rtpengine not found: install Debian's rtpengine-daemon (make deps-apt)")
	port := freeUDPPort(t)
	addr = "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--foreground", "--log-stderr", "--table=-1",
		"--interface=127.0.0.1", "--listen-ng="+addr, "--port-min=30000", "--port-max=30100", "--log-level=4")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-done
	}
	t.Cleanup(stop)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return Ping(ctx, addr) == nil
	}, 15*time.Second, 100*time.Millisecond, "rtpengine never answered ping on %s", addr)
	return addr, stop
}

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func TestCheckerAgainstRTPEngine(t *testing.T) {
	addr, stop := startDaemon(t)
	dead := "127.0.0.1:" + strconv.Itoa(freeUDPPort(t)) // nothing listens

	reports := make(chan map[string]bool, 16)
	c := &Checker{Instances: []string{addr, dead}, Interval: 200 * time.Millisecond, Timeout: 300 * time.Millisecond,
		Report: func(up map[string]bool) { reports <- up }}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() { c.Run(ctx); close(finished) }()
	defer func() { cancel(); <-finished }()

	first := <-reports
	assert.Equal(t, map[string]bool{addr: true, dead: false}, first)
	assert.Equal(t, first, c.Last())

	stop() // the instance dies: the next rounds report it down
	deadline := time.After(10 * time.Second)
	for {
		select {
		case up := <-reports:
			if !up[addr] {
				assert.False(t, up[dead])
				return
			}
		case <-deadline:
			t.Fatal("a killed rtpengine still reported up")
		}
	}
}

// TestPingRejectsForeignReply answers with the wrong body: an error, not up.
func TestPingRejectsForeignReply(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		cookie, _, _ := strings.Cut(string(buf[:n]), " ")
		_, _ = pc.WriteTo([]byte(cookie+" d6:result5:errore"), from)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = Ping(ctx, pc.LocalAddr().String())
	assert.ErrorContains(t, err, "unexpected reply")
}
