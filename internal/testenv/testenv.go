// Package testenv is the root of the test support: it finds the
// repository, starts the processes a test runs (peers, the collector,
// sipproxy) through internal/childproc and cleans up after them, finds the
// peers' binaries and builds the repository's own with `go build`.
//
// Its subpackages each run one thing: collector (otelcol-siphon), sipproxy,
// sipp, kamailio, prometheus, rtpengine, jaeger (a tracing backend to read
// call traces back from); hepsink is a HEP capture node in
// the test process; ports hands out loopback ports, pki a throwaway CA,
// procstat reads /proc, fixture the shared samples, records builds batches
// of records.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// debianPackage names the package of each peer binary, for the hint.
var debianPackage = map[string]string{
	"sipp": "sip-tester", "kamailio": "kamailio", "prometheus": "prometheus", "promtool": "prometheus",
	"rtpengine": "rtpengine-daemon", "svmap": "sipvicious", "systemd-analyze": "systemd",
}

// Need returns the path of a peer binary, or fails the test with the
// install hint: the tests that use peers are part of `make test`, which
// installs them. /usr/sbin is searched too, for a PATH that lacks it.
func Need(t testing.TB, bin string) string {
	t.Helper()
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	if p := filepath.Join("/usr/sbin", bin); isExecutable(p) {
		return p
	}
	pkg := debianPackage[bin]
	if pkg == "" {
		pkg = bin
	}
	t.Fatalf("%s not found: run `make deps-apt` (Debian package %s)", bin, pkg)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// Start runs s until the test ends: a Path without a slash is found with
// Need, the log goes to a file in a temp dir unless s names one. When the
// test ends the process group is killed, and if the test failed the log is
// printed.
func Start(t testing.TB, s childproc.Spec) *childproc.Process {
	t.Helper()
	if !strings.ContainsRune(s.Path, '/') {
		s.Path = Need(t, s.Path)
	}
	if s.Log == "" && s.Output == nil {
		s.Log = filepath.Join(t.TempDir(), filepath.Base(s.Path)+".log")
	}
	p, err := childproc.Start(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() && s.Log != "" {
			t.Logf("%s %s: log %s:\n%s", p.Name(), strings.Join(s.Args, " "), s.Log, p.Log())
		}
	})
	return p
}

// WaitReady waits until check passes on p, or fails the test (with the end
// of p's log) when p exits first or timeout passes.
func WaitReady(t testing.TB, p *childproc.Process, timeout time.Duration, check func() error) {
	t.Helper()
	if err := p.WaitReady(context.Background(), timeout, check); err != nil {
		t.Fatal(err)
	}
}

// runBound bounds a one-shot command.
const runBound = 5 * time.Minute

// Run runs a one-shot command (promtool, systemd-analyze, svmap, a
// collector subcommand) to completion and returns its output (stdout and
// stderr) and how it exited. It fails the test if the command does not end
// within 5 minutes.
func Run(t testing.TB, s childproc.Spec) (string, error) {
	t.Helper()
	p := Start(t, s)
	err := p.Wait(runBound)
	if !p.Exited() {
		t.Fatalf("%s %s: %v", p.Name(), strings.Join(s.Args, " "), err)
	}
	return p.Log(), err
}

var (
	buildMu  sync.Mutex
	builds   = map[string]*build{}
	buildDir string
)

type build struct {
	once sync.Once
	path string
	err  error
}

// GoBuild builds a main package of this repository (./proxy/cmd/sipproxy,
// say) with `go build`, once per test process, and returns the binary.
func GoBuild(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	b := builds[pkg]
	if b == nil {
		b = &build{}
		builds[pkg] = b
	}
	buildMu.Unlock()
	b.once.Do(func() { b.path, b.err = goBuild(pkg) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func goBuild(pkg string) (string, error) {
	buildMu.Lock()
	dir, err := binDir()
	buildMu.Unlock()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// binPrefix names the per-process directories the binaries go to.
const binPrefix = "siphon-otel-gobuild-"

// binDir is this process's directory for built binaries. A test binary
// has no hook for its end, so the directories of processes that have
// exited are removed here instead, by the next one.
func binDir() (string, error) {
	if buildDir != "" {
		return buildDir, nil
	}
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), binPrefix+"*"))
	for _, d := range old {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), binPrefix))
		if err == nil && pid != os.Getpid() && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
	d := filepath.Join(os.TempDir(), binPrefix+strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("go build: %w", err)
	}
	buildDir = d
	return d, nil
}

// Receive returns the next value from ch, failing the test if none comes
// within timeout: a wait on a goroutine that hangs must end the test with a
// message, not at the test binary's deadline.
func Receive[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("%s: nothing after %s", what, timeout)
		var zero T
		return zero
	}
}
