package interop

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/heptest"
)

// kamailioModules finds Debian's module directory (/usr/lib/<multiarch>/...).
func kamailioModules(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/*/kamailio/modules")
	if len(dirs) == 0 {
		t.Fatal("kamailio modules not found: run `make deps-apt` (Debian package kamailio)")
	}
	return dirs[0] + "/"
}

// need fails the test with the install hint when a peer is missing: these
// tests are part of `make test`, which installs them. /usr/sbin is searched
// too, for shells whose PATH lacks it.
func need(t *testing.T, bin string) string {
	t.Helper()
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	if p := filepath.Join("/usr/sbin", bin); fileExists(p) {
		return p
	}
	t.Fatalf("%s not found: run `make deps-apt` (Debian packages kamailio, sip-tester)", bin)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
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

type peer struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// startPeer runs a peer until the test ends; its output is printed if the
// test fails.
func startPeer(t *testing.T, name string, args ...string) *peer {
	t.Helper()
	p := &peer{name: name, out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(need(t, name), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s %s output:\n%s", name, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// kamailio renders a config template into a temp dir and starts kamailio on
// it in the foreground.
func kamailio(t *testing.T, cfgTemplate string, data map[string]any) *peer {
	t.Helper()
	dir := t.TempDir()
	data["ModulesDir"] = kamailioModules(t)
	data["DBDir"] = dir
	tmpl := template.Must(template.ParseFiles(filepath.Join("testdata", cfgTemplate)))
	var cfg bytes.Buffer
	if err := tmpl.Execute(&cfg, data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(path, cfg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return startPeer(t, "kamailio", "-f", path, "-DD", "-E", "-w", dir, "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"))
}

// port returns a free loopback port (for both UDP and TCP on this host).
func port(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(heptest.FreeAddr(t, "udp"))
	n, _ := strconv.Atoi(p)
	return n
}

// waitUDP waits until a process bound 127.0.0.1:port for UDP, read from
// /proc/net/udp so that nothing is sent to a peer that is not listening.
func waitUDP(t *testing.T, p *peer, port int) {
	t.Helper()
	want := fmt.Sprintf("0100007F:%04X", port)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before binding UDP %d:\n%s", p.name, port, p.out.String())
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
	t.Fatalf("%s did not bind UDP port %d:\n%s", p.name, port, p.out.String())
}
