package ports

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
)

const perProcess = 200

// TestHelperProcess is the second process of TestNoPortTwiceAcrossProcesses.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("PORTS_HELPER") != "1" {
		t.Skip("run by TestNoPortTwiceAcrossProcesses")
	}
	startAtFirst()
	for range perProcess {
		fmt.Println(Port(t))
	}
	fmt.Println("done")
	// hold the ports until the parent has taken its own and kills this
	// process
	time.Sleep(time.Minute)
}

func TestNoPortTwiceAcrossProcesses(t *testing.T) {
	startAtFirst() // both processes walk the same ports: only the locks keep them apart
	helper := testenv.Start(t, childproc.Spec{Path: os.Args[0], Args: []string{"-test.run", "^TestHelperProcess$", "-test.count=1"},
		Env: map[string]string{"PORTS_HELPER": "1"}})

	seen := map[int]string{}
	for range perProcess { // this process takes ports while the helper does
		p := Port(t)
		assert.Empty(t, seen[p], "port %d twice", p)
		seen[p] = "parent"
	}
	testenv.WaitReady(t, helper, 30*time.Second, func() error {
		if !strings.Contains(helper.Log(), "done\n") {
			return errors.New("the helper is still taking ports")
		}
		return nil
	})
	n := 0
	for _, line := range strings.Split(helper.Log(), "\n") {
		p, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			continue // "done", test framework output
		}
		n++
		assert.Empty(t, seen[p], "port %d handed to both processes", p)
		seen[p] = "helper"
	}
	require.Equal(t, perProcess, n, "helper's ports")
	assert.Len(t, seen, 2*perProcess)
}

func TestPortIsBindableAndOutsideEphemeralRange(t *testing.T) {
	lo, hi := portRange()
	for range 20 {
		a := Addr(t)
		host, ps, err := net.SplitHostPort(a)
		require.NoError(t, err)
		assert.Equal(t, "127.0.0.1", host)
		p, _ := strconv.Atoi(ps)
		assert.True(t, p >= lo && p <= hi, "%d in %d-%d", p, lo, hi)
		ln, err := net.Listen("tcp", a)
		require.NoError(t, err)
		pc, err := net.ListenPacket("udp", a)
		require.NoError(t, err)
		ln.Close()
		pc.Close()
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		f := strings.Fields(string(b))
		elo, _ := strconv.Atoi(f[0])
		ehi, _ := strconv.Atoi(f[1])
		assert.True(t, hi < elo || lo > ehi, "range %d-%d overlaps the ephemeral %d-%d", lo, hi, elo, ehi)
	}
}

func startAtFirst() {
	mu.Lock()
	defer mu.Unlock()
	first, last = portRange()
	next = first
}

func TestSkipsPortInUse(t *testing.T) {
	// occupy the next port this process could take, by someone not using locks
	mu.Lock()
	if next == 0 {
		first, last = portRange()
		next = first
	}
	var ln net.Listener
	for ln == nil {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(next)))
		if err == nil {
			ln = l
			break
		}
		next++
	}
	want := next
	mu.Unlock()
	defer ln.Close()
	assert.NotEqual(t, want, Port(t))
}
