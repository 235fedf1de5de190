// Package ports hands tests loopback ports for listeners that someone
// else opens (a collector, Kamailio, sipp, kfake), which a test can only
// name in advance.
//
// Asking the kernel for an ephemeral port and closing it is not enough: the
// kernel may hand the same port out again (to the next ask in this test, to
// a test binary running alongside, or to any outgoing connection) before
// the child binds it. So ports come from below the kernel's ephemeral range,
// each is handed out once per process, and a lock file held for the life of
// the process keeps other test processes off it.
package ports

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const (
	// lowest is the bottom of the range we take ports from; ports below are
	// left to services a developer may run.
	lowest = 20000
	// span keeps the range below 30000, where tests run rtpengine's media
	// ports.
	span = 10000
)

var (
	mu          sync.Mutex
	next        int
	first, last int
	held        []*os.File // lock files, open until the process exits
)

// Addr returns "127.0.0.1:port" for a port free for both TCP and UDP (many
// of our listeners take both on one address: HEP, syslog, SIP), reserved
// for this process.
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(t)))
}

// Port is Addr's port.
func Port(t testing.TB) int {
	t.Helper()
	p, err := take()
	if err != nil {
		t.Fatalf("ports: %v", err)
	}
	return p
}

func take() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	if next == 0 {
		first, last = portRange()
		next = first + rand.IntN(last-first+1)
	}
	dir := filepath.Join(os.TempDir(), "siphon-otel-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, fmt.Errorf("lock directory: %w", err)
	}
	for range last - first + 1 {
		p := next
		next++
		if next > last {
			next = first
		}
		f, err := lock(dir, p)
		if err != nil {
			return 0, err
		}
		if f == nil {
			continue // another process (or this one) has it
		}
		if !bindable(p) {
			f.Close()
			continue
		}
		held = append(held, f)
		return p, nil
	}
	return 0, fmt.Errorf("no port free in %d-%d", first, last)
}

// lock returns the port's lock file, held, or nil if someone else holds it.
func lock(dir string, port int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if err == syscall.EWOULDBLOCK {
			return nil, nil
		}
		return nil, fmt.Errorf("lock port %d: %w", port, err)
	}
	return f, nil
}

func bindable(port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// portRange is [lowest, lowest+span) cut below the kernel's ephemeral
// range, or the room above it when there is none below.
func portRange() (int, int) {
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if a, err := strconv.Atoi(f[0]); err == nil {
				lo = a
			}
			if a, err := strconv.Atoi(f[1]); err == nil {
				hi = a
			}
		}
	}
	if lo-lowest >= 1000 {
		return lowest, min(lo-1, lowest+span-1)
	}
	if 65535-hi >= 1000 {
		return hi + 1, 65535
	}
	return lowest, lowest + span - 1 // ephemeral range covers all; the lock and bind check still apply
}
