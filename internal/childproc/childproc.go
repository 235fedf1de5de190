// Package childproc runs a program as a child process the way the tests,
// the benchmarks and the demo need it: in its own process group (so that
// stopping it reaches every process it started, Kamailio's workers say),
// killed if this process dies, its stdout and stderr in a log file, with a
// readiness wait that gives up as soon as the child exits.
package childproc

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Spec says what to run.
type Spec struct {
	// Name names the process in messages (default: the base of Path).
	Name string
	// Path is the program; a name without a slash is looked up in PATH.
	Path string
	Args []string
	// Env is added to this process's environment (and wins over it).
	Env map[string]string
	// Dir is the working directory (default: this process's).
	Dir string
	// Log is the file that gets the child's stdout and stderr (created or
	// truncated). Either Log or Output is required.
	Log string
	// Output, when Log is empty, gets stdout and stderr instead (the
	// terminal of a foreground run); Log() and Tail() are then empty.
	Output io.Writer
}

// Process is a started child.
type Process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// Start runs the program. The child leads a new process group and gets
// SIGKILL when this process dies (Linux's parent-death signal).
func Start(s Spec) (*Process, error) {
	name := s.Name
	if name == "" {
		name = filepath.Base(s.Path)
	}
	if s.Log == "" && s.Output == nil {
		return nil, fmt.Errorf("childproc: %s: neither Log nor Output given", name)
	}
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Dir = s.Dir
	if len(s.Env) > 0 {
		cmd.Env = os.Environ()
		for k, v := range s.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var logf *os.File
	if s.Log != "" {
		var err error
		if logf, err = os.Create(s.Log); err != nil {
			return nil, fmt.Errorf("childproc: %s: log file: %w", name, err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
	} else {
		cmd.Stdout, cmd.Stderr = s.Output, s.Output
		// a grandchild holding the pipe must not keep Wait from returning
		cmd.WaitDelay = 5 * time.Second
	}
	err := cmd.Start()
	if logf != nil {
		logf.Close() // the child has its own descriptor
	}
	if err != nil {
		return nil, fmt.Errorf("childproc: start %s: %w", name, err)
	}
	p := &Process{name: name, cmd: cmd, log: s.Log, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Name is the process's name in messages.
func (p *Process) Name() string { return p.name }

// Pid is the child's process id, which is also its process group's.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the child exited (nil: status 0); nil while it runs.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// LogPath is the log file's path ("" with Spec.Output).
func (p *Process) LogPath() string { return p.log }

// Log is what the child wrote so far.
func (p *Process) Log() string {
	if p.log == "" {
		return ""
	}
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// Tail is the last n lines of the log.
func (p *Process) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Signal sends sig to the child itself (not its group): SIGTERM starts
// sipproxy's drain, say.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return fmt.Errorf("childproc: %s has exited (%v)", p.name, p.err)
	}
	return p.cmd.Process.Signal(sig)
}

// signalGroup sends sig to every process of the child's group, including
// what is left of it after the leader exited.
func (p *Process) signalGroup(sig syscall.Signal) {
	_ = syscall.Kill(-p.Pid(), sig) // ESRCH: nobody left
}

// Wait waits up to timeout for the child to exit and returns how it
// exited, or an error saying it still runs (it is left running).
func (p *Process) Wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return fmt.Errorf("childproc: %s still running after %s", p.name, timeout)
	}
}

// Stop sends SIGTERM to the group and waits up to timeout for the child
// to exit, then kills the group. It returns how the child exited, or an
// error when it had to be killed.
func (p *Process) Stop(timeout time.Duration) error {
	if p.Exited() {
		p.signalGroup(syscall.SIGKILL) // stragglers of an exited leader
		return p.err
	}
	p.signalGroup(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		p.signalGroup(syscall.SIGKILL)
		return p.err
	case <-t.C:
		p.Kill()
		return fmt.Errorf("childproc: %s did not exit within %s of SIGTERM; killed", p.name, timeout)
	}
}

// Kill sends SIGKILL to the group, as a crash would, and waits for the
// child to exit.
func (p *Process) Kill() {
	p.signalGroup(syscall.SIGKILL)
	<-p.done
}

// pollEvery is how often WaitReady runs its check.
const pollEvery = 50 * time.Millisecond

// WaitReady runs check until it succeeds. It fails when the child exits
// first (with the tail of its log), when timeout passes (with check's last
// error and the tail) or when ctx ends.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration, check func() error) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("childproc: %s exited before it was ready (%v); the end of its log:\n%s", p.name, p.err, p.Tail(40))
		case <-deadline.C:
			return fmt.Errorf("childproc: %s not ready after %s: %w; the end of its log:\n%s", p.name, timeout, err, p.Tail(40))
		case <-ctx.Done():
			return fmt.Errorf("childproc: waiting for %s: %w", p.name, ctx.Err())
		case <-tick.C:
		}
	}
}

// HTTPOK is a readiness check: a GET of url answers 200.
func HTTPOK(url string) func() error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// UDPBound is a readiness check: some process has bound UDP port on
// 127.0.0.1 or the wildcard address (read from /proc/net/udp, so that
// nothing is sent to a peer that does not listen yet).
func UDPBound(port int) func() error {
	suffix := fmt.Sprintf(":%04X", port)
	return func() error {
		b, err := os.ReadFile("/proc/net/udp")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			// "  sl  local_address rem_address ...": the local address only
			f := strings.Fields(line)
			if len(f) > 1 && (f[1] == "0100007F"+suffix || f[1] == "00000000"+suffix) {
				return nil
			}
		}
		return fmt.Errorf("nothing bound UDP port %d", port)
	}
}
