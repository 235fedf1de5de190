//go:build integration

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/siphon-otel/siphon-otel/internal/testenv"
)

// EnvBinCache names the directory of otelcol-siphon binaries built at other
// commits, one <commit>/otelcol-siphon each (default .bench/bin): a
// baseline is built once and shared by every benchmark, and by every
// worktree that names the same directory.
const EnvBinCache = "SIPHON_BENCH_BIN_CACHE"

// distroAt returns otelcol-siphon built at the git ref (a commit, branch or
// tag of this repository), building it if the cache lacks it: `make
// distro` in a detached worktree of that commit, sharing the Go build
// cache. A build takes minutes (about 9 cold), so it happens once per
// commit; a file lock makes a second process wait for the first one's
// build instead of building the same again.
func distroAt(tb testing.TB, ref string) string {
	tb.Helper()
	bin, err := buildDistroAt(tb, ref)
	if err != nil {
		tb.Fatalf("otelcol-siphon at %s: %v", ref, err)
	}
	return bin
}

func buildDistroAt(tb testing.TB, ref string) (string, error) {
	root := testenv.RepoRoot()
	out, err := exec.Command("git", "-C", root, "rev-parse", "--verify", ref+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("git rev-parse %s: %w", ref, err)
	}
	commit := strings.TrimSpace(string(out))
	cache := os.Getenv(EnvBinCache)
	if cache == "" {
		cache = filepath.Join(root, ".bench", "bin")
	}
	dir := filepath.Join(cache, commit)
	bin := filepath.Join(dir, "otelcol-siphon")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	// held until the binary is in place; another builder waits here, then
	// finds it
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing unlocks as well
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	src, err := os.MkdirTemp("", "siphon-distro-"+commit[:12]+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	src = filepath.Join(src, "src")
	if out, err := exec.Command("git", "-C", root, "worktree", "add", "--detach", src, commit).CombinedOutput(); err != nil {
		return "", fmt.Errorf("git worktree add: %w: %s", err, out)
	}
	defer exec.Command("git", "-C", root, "worktree", "remove", "--force", src).Run() //nolint:errcheck // best effort: the temp dir goes anyway
	tb.Logf("building otelcol-siphon at %s into %s (make distro: minutes)", commit[:12], bin)
	build := exec.Command("make", "-C", src, "distro")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // the Makefile's, so the build cache is shared
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make distro: %w: %s", err, tail(out, 4000))
	}
	// copied under another name, then renamed: a reader never sees half
	tmp := bin + ".tmp"
	if err := copyFile(filepath.Join(src, "distro", "_build", "otelcol-siphon"), tmp); err != nil {
		return "", err
	}
	return bin, os.Rename(tmp, bin)
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}

// tail is the end of a build's output, where its error is.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
