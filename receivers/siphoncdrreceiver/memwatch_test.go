package siphoncdrreceiver

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/testenv/procstat"
)

const mib = 1 << 20

// heapObjects is the heap the Go runtime holds for objects, live or not
// yet swept: what a burst of allocations costs before the GC catches up.
const heapObjects = "/memory/classes/heap/objects:bytes"

// memWatch samples this process's heap while an attack runs (the receiver
// runs in the test process) and keeps the peak; RSS is read from /proc
// for the report. It ends early, calling abort once, when the heap grows
// by more than abortAt, so that a receiver without its limits (today's main)
// fails the test before it takes the machine's memory.
type memWatch struct {
	base, rssBase uint64
	peak          atomic.Uint64
	over          chan struct{} // closed when the growth passed abortAt
	stop, done    chan struct{}
	once          sync.Once
}

func watchMemory(t *testing.T, abortAt uint64) *memWatch {
	t.Helper()
	runtime.GC()
	m := &memWatch{over: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	m.base = s[0].Value.Uint64()
	m.peak.Store(m.base)
	if rss, err := procstat.RSS(os.Getpid()); err == nil {
		m.rssBase = uint64(rss)
	}
	// VmHWM from now on: writing 5 to clear_refs resets the peak RSS
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	go func() {
		defer close(m.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
			metrics.Read(s)
			v := s[0].Value.Uint64()
			if v > m.peak.Load() {
				m.peak.Store(v)
			}
			if v > m.base+abortAt {
				m.once.Do(func() { close(m.over) })
			}
		}
	}()
	t.Cleanup(m.end)
	return m
}

func (m *memWatch) end() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
}

// growth is the peak heap growth so far.
func (m *memWatch) growth() uint64 { return m.peak.Load() - m.base }

// report ends the watch and describes what it saw.
func (m *memWatch) report() string {
	m.end()
	out := fmt.Sprintf("heap objects %d MiB -> peak %d MiB (+%d MiB)", m.base/mib, m.peak.Load()/mib, m.growth()/mib)
	if hwm, err := procstat.PeakRSS(os.Getpid()); err == nil && m.rssBase > 0 {
		out += fmt.Sprintf("; RSS %d MiB -> peak %d MiB", m.rssBase/mib, uint64(hwm)/mib)
	}
	return out
}

// unread returns the bytes a loopback TCP connection's client sent that the
// server has not read yet: the client socket's unacknowledged bytes plus
// the server socket's receive queue, from /proc/net/tcp (tx_queue and
// rx_queue). 0 means the server's process has read all of it.
func unread(c net.Conn) (int, error) {
	local, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		return 0, err
	}
	remote, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	hexAddr := func(a netip.AddrPort) string {
		b := a.Addr().Unmap().As4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", b[3], b[2], b[1], b[0], a.Port())
	}
	client, server := hexAddr(local)+" "+hexAddr(remote), hexAddr(remote)+" "+hexAddr(local)
	total, found := 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		pair := fields[1] + " " + fields[2]
		if pair != client && pair != server {
			continue
		}
		tx, rx, ok := strings.Cut(fields[4], ":")
		if !ok {
			return 0, fmt.Errorf("/proc/net/tcp: queues %q", fields[4])
		}
		q := tx // the client's unacknowledged bytes
		if pair == server {
			q = rx // what the server's process has not read
		}
		n, err := strconv.ParseInt(q, 16, 64)
		if err != nil {
			return 0, err
		}
		total += int(n)
		found++
	}
	if found < 2 {
		return 0, fmt.Errorf("/proc/net/tcp: %d of the 2 sockets of %s", found, client)
	}
	return total, sc.Err()
}
