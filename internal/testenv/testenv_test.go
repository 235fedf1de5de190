package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
)

// recorder is a testing.TB that records what a helper does with it; its
// Fatal ends the calling goroutine, as the real one does.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	failed   bool
	fatal    string
	logs     []string
	cleanups []func()
}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.mu.Lock()
	r.fatal, r.failed = fmt.Sprint(args...), true
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }
func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Failed() bool     { return r.failed }
func (r *recorder) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// do runs f with r on a goroutine of its own, as a test would, and
// returns once f returned or called Fatal.
func (r *recorder) do(f func()) {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	<-done
}

func TestRepoRoot(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "go.mod"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), "module github.com/siphon-otel/siphon-otel\n"))
}

func TestNeed(t *testing.T) {
	assert.True(t, filepath.IsAbs(Need(t, "sh")))
	t.Setenv("PATH", t.TempDir())
	for bin, hint := range map[string]string{
		"not-a-peer": "not-a-peer not found: run `make deps-apt` (Debian package not-a-peer)",
		"svmap":      "svmap not found: run `make deps-apt` (Debian package sipvicious)", // not in /usr/sbin either
	} {
		r := &recorder{TB: t}
		r.do(func() { Need(r, bin) })
		assert.Equal(t, hint, r.fatal)
	}
}

func TestStart(t *testing.T) {
	for _, failed := range []bool{false, true} {
		t.Run("failed="+strconv.FormatBool(failed), func(t *testing.T) {
			r := &recorder{TB: t}
			var p *childproc.Process
			r.do(func() {
				p = Start(r, childproc.Spec{Path: "sh", Args: []string{"-c", "echo started; exec sleep 300"}})
			})
			require.Empty(t, r.fatal)
			WaitReady(t, p, 10*time.Second, func() error {
				if p.Log() != "started\n" {
					return fmt.Errorf("log %q", p.Log())
				}
				return nil
			})
			assert.FileExists(t, p.LogPath(), "a log file was made")
			r.failed = failed
			r.cleanup()
			assert.True(t, p.Exited(), "killed when the test ended")
			if failed {
				require.Len(t, r.logs, 1)
				assert.Contains(t, r.logs[0], "started\n", "the log of a failed test is printed")
			} else {
				assert.Empty(t, r.logs)
			}
		})
	}
}

func TestWaitReadyFails(t *testing.T) {
	r := &recorder{TB: t}
	p := Start(t, childproc.Spec{Path: "sh", Args: []string{"-c", "echo bye; exit 1"}})
	r.do(func() { WaitReady(r, p, time.Hour, func() error { return fmt.Errorf("never") }) })
	assert.Contains(t, r.fatal, "sh exited before it was ready (exit status 1)")
	assert.Contains(t, r.fatal, "bye")
}

func TestRun(t *testing.T) {
	out, err := Run(t, childproc.Spec{Path: "sh", Args: []string{"-c", "echo out; echo err >&2; exit 2"}})
	assert.Equal(t, "out\nerr\n", out)
	assert.EqualError(t, err, "exit status 2")
	out, err = Run(t, childproc.Spec{Path: "echo", Args: []string{"ok"}})
	assert.NoError(t, err)
	assert.Equal(t, "ok\n", out)
}

func TestGoBuild(t *testing.T) {
	bin := GoBuild(t, "./internal/testenv/testdata/hello")
	st, err := os.Stat(bin)
	require.NoError(t, err)
	out, err := Run(t, childproc.Spec{Path: bin})
	require.NoError(t, err)
	assert.Equal(t, "hello from a built binary\n", out)

	again := GoBuild(t, "./internal/testenv/testdata/hello")
	assert.Equal(t, bin, again)
	st2, err := os.Stat(again)
	require.NoError(t, err)
	assert.Equal(t, st.ModTime(), st2.ModTime(), "built once per process")

	r := &recorder{TB: t}
	r.do(func() { GoBuild(r, "./internal/testenv/testdata/nothing-here") })
	assert.Contains(t, r.fatal, "go build ./internal/testenv/testdata/nothing-here: exit status 1")
}

// A test process has no end hook: the next one removes the binaries of
// processes that have exited, and leaves those of running ones.
func TestBinDirSweep(t *testing.T) {
	require.NotEmpty(t, GoBuild(t, "./internal/testenv/testdata/hello"))
	own := buildDir
	exited, err := childproc.Start(childproc.Spec{Path: "true", Log: filepath.Join(t.TempDir(), "true.log")})
	require.NoError(t, err)
	require.NoError(t, exited.Wait(10*time.Second))
	dead := filepath.Join(os.TempDir(), binPrefix+strconv.Itoa(exited.Pid()))
	live := filepath.Join(os.TempDir(), binPrefix+"1") // init runs
	for _, d := range []string{dead, live} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	defer os.RemoveAll(live)

	buildMu.Lock()
	buildDir = ""
	d, err := binDir()
	buildMu.Unlock()
	require.NoError(t, err)
	assert.Equal(t, own, d)
	assert.NoDirExists(t, dead)
	assert.DirExists(t, live)
	assert.FileExists(t, filepath.Join(own, "hello"), "this process's binaries stay")
}
