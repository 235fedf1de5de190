package siphoncdrreceiver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

// request builds one request's logs: n records from node, bodies tagged.
func request(node string, n int, tag string) plog.Logs {
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.instance.id", node)
	sl := rl.ScopeLogs().AppendEmpty()
	for i := range n {
		sl.LogRecords().AppendEmpty().Body().SetStr(fmt.Sprintf("%s-%d", tag, i))
	}
	return logs
}

// recorder is a pipeline that records each call and can be held.
type recorder struct {
	mu      sync.Mutex
	calls   []plog.Logs
	gate    chan struct{} // when set, the first call waits for it
	entered chan struct{}
	refuse  string // a call holding a body with this prefix is refused
}

func (r *recorder) consume(_ context.Context, ld plog.Logs) error {
	r.mu.Lock()
	first := len(r.calls) == 0
	r.calls = append(r.calls, ld)
	r.mu.Unlock()
	if first && r.gate != nil {
		close(r.entered)
		<-r.gate
	}
	if r.refuse == "" {
		return nil
	}
	var err error
	for _, it := range record.All(ld) {
		if strings.HasPrefix(it.Log.Body().Str(), r.refuse) {
			err = errors.New("refused")
		}
	}
	return err
}

func TestGroupCommitLoneRequestsGoStraightThrough(t *testing.T) {
	rec := &recorder{}
	c := committer{consume: rec.consume}
	for i := range 3 {
		require.NoError(t, c.submit(context.Background(), "n1", request("n1", 2, fmt.Sprint(i)), 2))
	}
	assert.Len(t, rec.calls, 3, "one call per request when none overlap")
}

func TestGroupCommitMergesWhileBusy(t *testing.T) {
	rec := &recorder{gate: make(chan struct{}), entered: make(chan struct{}), refuse: "bad"}
	c := committer{consume: rec.consume}
	first := make(chan error, 1)
	go func() { first <- c.submit(context.Background(), "n0", request("n0", 1, "first"), 1) }()
	testenv.Receive(t, rec.entered, waitFor, "the first call holds the pipeline")

	const requests = 60
	errs := make([]error, requests)
	var wg sync.WaitGroup
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := fmt.Sprintf("n%d", i%3)
			errs[i] = c.submit(context.Background(), node, request(node, 20, fmt.Sprintf("r%d", i)), 20)
		}()
	}
	// wait until all are queued behind the first call
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		n := 0
		for _, g := range c.groups {
			n += g.n
		}
		return n == requests*20
	}, 5*time.Second, time.Millisecond)
	close(rec.gate)
	wg.Wait()
	require.NoError(t, testenv.Receive(t, first, waitFor, "the first call"))
	for i, err := range errs {
		assert.NoError(t, err, "request %d", i)
	}
	// 1,200 records behind the first call: two groups of at most 1,000
	require.Len(t, rec.calls, 3)
	total := 0
	for _, ld := range rec.calls[1:] {
		assert.LessOrEqual(t, ld.LogRecordCount(), groupRecords)
		total += ld.LogRecordCount()
		seen := map[string]bool{}
		for _, rl := range ld.ResourceLogs().All() {
			node, _ := rl.Resource().Attributes().Get("service.instance.id")
			assert.False(t, seen[node.Str()], "one resource per node in a group")
			seen[node.Str()] = true
		}
	}
	assert.Equal(t, requests*20, total)
	assert.False(t, c.busy, "idle again")
}

func TestGroupCommitRefusalReachesTheWholeGroup(t *testing.T) {
	rec := &recorder{gate: make(chan struct{}), entered: make(chan struct{}), refuse: "bad"}
	c := committer{consume: rec.consume}
	first := make(chan error, 1)
	go func() { first <- c.submit(context.Background(), "n0", request("n0", 1, "first"), 1) }()
	testenv.Receive(t, rec.entered, waitFor, "the first call holds the pipeline")
	errs := make(chan error, 3)
	for _, tag := range []string{"ok1", "bad", "ok2"} {
		go func() { errs <- c.submit(context.Background(), "n1", request("n1", 1, tag), 1) }()
	}
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.groups) == 1 && c.groups[0].n == 3
	}, 5*time.Second, time.Millisecond)
	close(rec.gate)
	require.NoError(t, testenv.Receive(t, first, waitFor, "the first call"))
	for range 3 {
		// accepted whole or not at all: every request of the refused group is told
		assert.Error(t, testenv.Receive(t, errs, waitFor, "a request of the refused group"))
	}
}
