// Package kamailio runs the real peers of the tests and benchmarks
// (Kamailio, sipp) as child processes: each in its own process group,
// stopped when the test ends, its output kept and printed if the test
// failed.
package kamailio

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Need fails the test with the install hint when a peer is missing: the
// tests that use them are part of `make test`, which installs them.
// /usr/sbin is searched too, for shells whose PATH lacks it.
func Need(t testing.TB, bin string) string {
	t.Helper()
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	p := filepath.Join("/usr/sbin", bin)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Fatalf("%s not found: run `make deps-apt` (Debian packages kamailio, sip-tester)", bin)
	return ""
}

// Peer is a running peer process.
type Peer struct {
	Name string
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan struct{}
}

// Start runs bin until the test ends.
func Start(t testing.TB, bin string, args ...string) *Peer {
	t.Helper()
	p := &Peer{Name: bin, done: make(chan struct{})}
	p.cmd = exec.Command(Need(t, bin), args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s %s output:\n%s", bin, strings.Join(args, " "), p.Output())
		}
	})
	return p
}

// Pid is the peer's process id (the leader of its process group).
func (p *Peer) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the peer has exited.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Output is what the peer wrote so far.
func (p *Peer) Output() string { return p.out.String() }

// Stop ends the peer's process group: SIGTERM, SIGKILL after 5 s.
func (p *Peer) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
}

// WaitUDP waits until a process bound 127.0.0.1:port for UDP, read from
// /proc/net/udp so that nothing is sent to a peer that is not listening.
func (p *Peer) WaitUDP(t testing.TB, port int) {
	t.Helper()
	want := fmt.Sprintf("0100007F:%04X", port)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before binding UDP %d:\n%s", p.Name, port, p.Output())
		default:
		}
		b, err := os.ReadFile("/proc/net/udp")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(want)) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not bind UDP port %d:\n%s", p.Name, port, p.Output())
}

// KamailioModules finds Debian's module directory (/usr/lib/<multiarch>/...).
func KamailioModules(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/*/kamailio/modules")
	if len(dirs) == 0 {
		t.Fatal("kamailio modules not found: run `make deps-apt` (Debian package kamailio)")
	}
	return dirs[0] + "/"
}

// Kamailio renders the config template at path (with data, plus
// ModulesDir and DBDir, a temp dir) and runs kamailio on it in the
// foreground; args go before the foreground flags (-m 512, say).
func Kamailio(t testing.TB, path string, data map[string]any, args ...string) *Peer {
	t.Helper()
	dir := t.TempDir()
	data["ModulesDir"] = KamailioModules(t)
	data["DBDir"] = dir
	var cfg bytes.Buffer
	if err := template.Must(template.ParseFiles(path)).Execute(&cfg, data); err != nil {
		t.Fatal(err)
	}
	rendered := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(rendered, cfg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(append([]string{"-f", rendered}, args...),
		"-DD", "-E", "-w", dir, "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"))
	return Start(t, "kamailio", args...)
}

// lockedBuffer collects a process's output while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
