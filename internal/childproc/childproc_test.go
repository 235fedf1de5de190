package childproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// helperEnv makes the test binary act as a parent that starts a child and
// waits (TestParentDeathKillsChild).
const helperEnv = "CHILDPROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		p, err := Start(Spec{Path: "sleep", Args: []string{"300"}, Log: filepath.Join(dir, "sleep.log")})
		if err != nil {
			fmt.Println("start:", err)
			os.Exit(1)
		}
		fmt.Printf("child %d\n", p.Pid())
		<-p.Done()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func sh(t *testing.T, script string) Spec {
	return Spec{Path: "/bin/sh", Args: []string{"-c", script}, Log: filepath.Join(t.TempDir(), "sh.log"), Dir: t.TempDir()}
}

func start(t *testing.T, s Spec) *Process {
	t.Helper()
	p, err := Start(s)
	require.NoError(t, err)
	t.Cleanup(p.Kill)
	return p
}

// alive reports whether pid runs: a zombie (killed, not yet reaped by
// whoever inherited it) does not.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// fileHolds is a readiness check: the file exists and is not empty.
func fileHolds(path string) func() error {
	return func() error {
		b, err := os.ReadFile(path)
		if err == nil && len(b) == 0 {
			err = errors.New(path + " is empty")
		}
		return err
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

func TestKillReachesGrandchildren(t *testing.T) {
	for _, stop := range []struct {
		name string
		do   func(p *Process)
	}{
		{"Kill", func(p *Process) { p.Kill() }},
		{"Stop", func(p *Process) { _ = p.Stop(10 * time.Second) }},
		{"Stop after the leader exited", func(p *Process) {
			require.NoError(t, p.Signal(syscall.SIGKILL)) // the leader alone
			<-p.Done()
			_ = p.Stop(10 * time.Second)
		}},
	} {
		t.Run(stop.name, func(t *testing.T) {
			s := sh(t, `sleep 300 & echo $! > grandchild.pid; wait`)
			p := start(t, s)
			pidFile := filepath.Join(s.Dir, "grandchild.pid")
			require.NoError(t, p.WaitReady(context.Background(), 10*time.Second, fileHolds(pidFile)))
			gc := readPid(t, pidFile)
			require.True(t, alive(gc), "the grandchild runs")
			stop.do(p)
			assert.True(t, p.Exited())
			require.Eventually(t, func() bool { return !alive(gc) }, 10*time.Second, 10*time.Millisecond,
				"the grandchild %d died with the group", gc)
		})
	}
}

func TestParentDeathKillsChild(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	parent := start(t, Spec{Path: self, Args: []string{"-test.run=^$"}, Env: map[string]string{helperEnv: dir},
		Log: filepath.Join(dir, "parent.log")})
	var child int
	require.NoError(t, parent.WaitReady(context.Background(), 10*time.Second, func() error {
		_, err := fmt.Sscanf(parent.Log(), "child %d", &child)
		return err
	}))
	require.True(t, alive(child))
	// SIGKILL to the parent alone: the child leads its own group, so only
	// the parent-death signal can end it
	require.NoError(t, parent.Signal(syscall.SIGKILL))
	<-parent.Done()
	require.Eventually(t, func() bool { return !alive(child) }, 10*time.Second, 10*time.Millisecond,
		"the child %d died with its parent", child)
}

func TestWaitReady(t *testing.T) {
	never := func() error { return errors.New("the check's own reason") }
	tests := []struct {
		name    string
		script  string
		check   func(dir string) func() error
		timeout time.Duration
		wantErr []string // substrings of the error; none: ready
	}{
		{"ready", `sleep 0.2; echo up > ready; exec sleep 300`,
			func(dir string) func() error { return fileHolds(filepath.Join(dir, "ready")) }, time.Minute, nil},
		{"exits before ready", `echo boom; exit 3`,
			func(string) func() error { return never }, time.Hour,
			// an hour's timeout: only the exit can end the wait
			[]string{"sh exited before it was ready", "exit status 3", "boom"}},
		{"not ready in time", `echo still starting; exec sleep 300`,
			func(string) func() error { return never }, 300 * time.Millisecond,
			[]string{"sh not ready after 300ms", "the check's own reason", "still starting"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sh(t, tt.script)
			p := start(t, s)
			err := p.WaitReady(context.Background(), tt.timeout, tt.check(s.Dir))
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.False(t, p.Exited())
				return
			}
			require.Error(t, err)
			for _, w := range tt.wantErr {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	t.Run("context ends", func(t *testing.T) {
		p := start(t, sh(t, `exec sleep 300`))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := p.WaitReady(ctx, time.Hour, never)
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestStop(t *testing.T) {
	t.Run("clean exit on SIGTERM", func(t *testing.T) {
		s := sh(t, `trap 'echo got TERM; exit 0' TERM; echo trapped; while :; do sleep 0.05; done`)
		p := start(t, s)
		require.NoError(t, p.WaitReady(context.Background(), 10*time.Second, func() error {
			if !strings.Contains(p.Log(), "trapped") {
				return errors.New("no trap yet")
			}
			return nil
		}))
		require.NoError(t, p.Stop(30*time.Second))
		assert.Contains(t, p.Log(), "got TERM")
		assert.NoError(t, p.Err())
	})
	t.Run("SIGKILL after the timeout", func(t *testing.T) {
		s := sh(t, `trap '' TERM; echo ignoring; while :; do sleep 0.05; done`)
		p := start(t, s)
		require.NoError(t, p.WaitReady(context.Background(), 10*time.Second, func() error {
			if !strings.Contains(p.Log(), "ignoring") {
				return errors.New("no trap yet")
			}
			return nil
		}))
		err := p.Stop(300 * time.Millisecond)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "sh did not exit within 300ms of SIGTERM; killed")
		require.True(t, p.Exited())
		assert.EqualError(t, p.Err(), "signal: killed")
	})
}

func TestWait(t *testing.T) {
	p := start(t, sh(t, `exec sleep 300`))
	err := p.Wait(50 * time.Millisecond)
	assert.EqualError(t, err, "childproc: sh still running after 50ms")
	assert.False(t, p.Exited(), "Wait leaves it running")
	assert.NoError(t, p.Err(), "no exit error while it runs")
	p.Kill()
	assert.EqualError(t, p.Wait(time.Second), "signal: killed")
	assert.Error(t, p.Signal(syscall.SIGTERM), "no signal to an exited child")
}

func TestSpec(t *testing.T) {
	dir := t.TempDir()
	p := start(t, Spec{Name: "env-and-dir", Path: "sh", Args: []string{"-c", `echo "$CHILDPROC_FOO"; pwd; echo oops >&2`},
		Env: map[string]string{"CHILDPROC_FOO": "bar"}, Dir: dir, Log: filepath.Join(t.TempDir(), "x.log")})
	require.NoError(t, p.Wait(10*time.Second))
	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	assert.Equal(t, "bar\n"+real+"\noops\n", p.Log(), "env, dir, stdout and stderr")
	assert.Equal(t, "oops", p.Tail(1))
	assert.Equal(t, "env-and-dir", p.Name())

	var out bytes.Buffer
	p = start(t, Spec{Path: "echo", Args: []string{"to the terminal"}, Output: &out})
	require.NoError(t, p.Wait(10*time.Second))
	assert.Equal(t, "to the terminal\n", out.String())
	assert.Empty(t, p.Log())

	_, err = Start(Spec{Path: "echo"})
	assert.EqualError(t, err, "childproc: echo: neither Log nor Output given")
	_, err = Start(Spec{Path: "/nonexistent/prog", Log: filepath.Join(t.TempDir(), "x.log")})
	assert.ErrorContains(t, err, "childproc: start prog:")
}

func TestHTTPOK(t *testing.T) {
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
	defer srv.Close()
	check := HTTPOK(srv.URL)
	assert.EqualError(t, check(), "GET "+srv.URL+": 503 Service Unavailable")
	status = http.StatusOK
	assert.NoError(t, check())
	srv.Close()
	assert.Error(t, check())
}

func TestUDPBound(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	bound := pc.LocalAddr().(*net.UDPAddr).Port
	assert.NoError(t, UDPBound(bound)())

	// a port nobody binds, though a socket is connected to it: only the
	// local address counts
	free, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	port := free.LocalAddr().(*net.UDPAddr).Port
	require.NoError(t, free.Close())
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(port))
	require.NoError(t, err)
	defer c.Close()
	assert.EqualError(t, UDPBound(port)(), fmt.Sprintf("nothing bound UDP port %d", port))
}
