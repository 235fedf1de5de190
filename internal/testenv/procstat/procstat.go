// Package procstat reads what benchmarks and load tests measure of another
// process from Linux's /proc: its CPU time, its resident memory and its
// descendants (Kamailio's workers are child processes).
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on
// every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// statFields returns the fields of /proc/<pid>/stat after the command name
// (which may hold spaces): field 3 of stat(5) is index 0.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return nil, fmt.Errorf("procstat: /proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// CPU returns the user+system CPU time process pid has used.
func CPU(pid int) (time.Duration, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14 of stat(5)
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("procstat: /proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// TreeCPU returns the CPU time of pid and its descendants alive now.
func TreeCPU(pid int) (time.Duration, error) {
	var total time.Duration
	for _, p := range Tree(pid) {
		c, err := CPU(p)
		if err != nil && p == pid {
			return 0, err
		}
		total += c // a child that just exited reads as 0
	}
	return total, nil
}

// Tree returns pid and its descendants.
func Tree(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f, err := statFields(p); err == nil {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				children[pp] = append(children[pp], p)
			}
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// RSS returns the resident set size of process pid (VmRSS).
func RSS(pid int) (int64, error) { return status(pid, "VmRSS:") }

// PeakRSS returns the peak resident set size of process pid (VmHWM).
func PeakRSS(pid int) (int64, error) { return status(pid, "VmHWM:") }

// AnonRSS returns the resident anonymous memory of process pid (RssAnon):
// its heap and stacks without the pages of its mapped executable, which
// VmRSS counts as they happen to be in the page cache.
func AnonRSS(pid int) (int64, error) { return status(pid, "RssAnon:") }

// status reads a kB field of /proc/<pid>/status, in bytes.
func status(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("procstat: /proc/%d/status: no %s", pid, field)
}
