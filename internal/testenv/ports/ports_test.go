package ports

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const perProcess = 200

// TestHelperProcess is the second process of TestNoPortTwiceAcrossProcesses.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("TESTPORT_HELPER") != "1" {
		t.Skip("run by TestNoPortTwiceAcrossProcesses")
	}
	startAtFirst()
	for range perProcess {
		fmt.Println(Port(t))
	}
	// hold the ports until the parent has taken its own
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

func TestNoPortTwiceAcrossProcesses(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TESTPORT_HELPER=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	startAtFirst() // both processes walk the same ports: only the locks keep them apart
	require.NoError(t, cmd.Start())
	defer func() { stdin.Close(); _ = cmd.Wait() }()

	seen := map[int]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // this process takes ports while the helper does
		defer wg.Done()
		for range perProcess {
			p := Port(t)
			mu.Lock()
			assert.Empty(t, seen[p], "port %d twice", p)
			seen[p] = "parent"
			mu.Unlock()
		}
	}()
	sc := bufio.NewScanner(stdout)
	n := 0
	for n < perProcess && sc.Scan() {
		p, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			continue // test framework output
		}
		n++
		mu.Lock()
		assert.Empty(t, seen[p], "port %d handed to both processes", p)
		seen[p] = "helper"
		mu.Unlock()
	}
	wg.Wait()
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
