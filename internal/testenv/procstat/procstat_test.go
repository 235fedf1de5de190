package procstat

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
)

func TestSelf(t *testing.T) {
	pid := os.Getpid()
	before, err := CPU(pid)
	require.NoError(t, err)
	// burn CPU until the kernel's 10 ms tick shows it (bounded)
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
		if now, _ := CPU(pid); now >= before+50*time.Millisecond {
			break
		}
	}
	after, err := CPU(pid)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, after-before, 50*time.Millisecond, "busy loop %d", x)

	rss, err := RSS(pid)
	require.NoError(t, err)
	peak, err := PeakRSS(pid)
	require.NoError(t, err)
	assert.Positive(t, rss)
	assert.GreaterOrEqual(t, peak, rss)
	anon, err := AnonRSS(pid)
	require.NoError(t, err)
	assert.Positive(t, anon)
	assert.Less(t, anon, rss, "the executable's pages are resident too")

	_, err = CPU(-1)
	assert.Error(t, err)
}

func TestTree(t *testing.T) {
	child := testenv.Start(t, childproc.Spec{Path: "sleep", Args: []string{"30"}})
	tree := Tree(os.Getpid())
	assert.Equal(t, os.Getpid(), tree[0])
	assert.True(t, slices.Contains(tree, child.Pid()), "the child is in the tree: %v", tree)
	// own first: CPU time only grows, so the tree's, read later, is at
	// least as much
	own, err := CPU(os.Getpid())
	require.NoError(t, err)
	total, err := TreeCPU(os.Getpid())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, total, own)
}
