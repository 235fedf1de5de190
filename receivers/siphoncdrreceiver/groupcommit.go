package siphoncdrreceiver

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/pdata/plog"
)

// groupRecords bounds the records of one group commit.
const groupRecords = 1000

// committer hands requests' records to the pipeline with group commit:
// while one ConsumeLogs call runs, the requests that arrive meanwhile are
// merged and handed over together as soon as it returns, and each of them
// gets that call's result. A lone request goes straight through (no added
// latency); under load, the per-call costs downstream (a disk queue
// transaction, or siphon_file's write and fsync, per call above all) are
// shared. SIPhon posts one record per
// request, so without this every CDR paid them alone. A request is still
// answered only after the pipeline accepted (or refused) its records.
type committer struct {
	consume func(context.Context, plog.Logs) error

	mu     sync.Mutex
	busy   bool     // a ConsumeLogs call runs, or its turn is being handed on
	groups []*group // waiting, oldest first; only the last takes more requests
}

type group struct {
	logs  plog.Logs
	nodes map[string]plog.LogRecordSlice // records of one sender share a resource
	n     int
	turn  chan struct{} // closed when the group's leader may commit
	done  chan struct{} // closed when the group was committed
	err   error
}

// submit hands the records of one request, all from node, to the pipeline
// and returns the pipeline's answer. logs must hold one resource; submit
// takes its records.
func (c *committer) submit(ctx context.Context, node string, logs plog.Logs, n int) error {
	c.mu.Lock()
	if !c.busy {
		c.busy = true
		c.mu.Unlock()
		err := c.consume(ctx, logs)
		c.handOn()
		return err
	}
	var g *group
	leader := false
	if last := len(c.groups) - 1; last >= 0 && c.groups[last].n+n <= groupRecords {
		g = c.groups[last]
	} else {
		g = &group{logs: plog.NewLogs(), nodes: map[string]plog.LogRecordSlice{},
			turn: make(chan struct{}), done: make(chan struct{})}
		c.groups = append(c.groups, g)
		leader = true
	}
	g.add(node, logs, n)
	c.mu.Unlock()

	if !leader {
		<-g.done
		return g.err
	}
	<-g.turn
	// the group's records are the callers' whole requests: a client that
	// went away must not cancel the others' commit
	g.err = c.consume(context.WithoutCancel(ctx), g.logs)
	close(g.done)
	c.handOn()
	return g.err
}

// handOn passes the turn to the oldest waiting group, or ends the busy
// state.
func (c *committer) handOn() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.groups) == 0 {
		c.busy = false
		return
	}
	g := c.groups[0]
	c.groups[0] = nil
	c.groups = c.groups[1:]
	close(g.turn)
}

func (g *group) add(node string, logs plog.Logs, n int) {
	g.n += n
	rl := logs.ResourceLogs().At(0)
	if slot, ok := g.nodes[node]; ok {
		rl.ScopeLogs().At(0).LogRecords().MoveAndAppendTo(slot)
		return
	}
	logs.ResourceLogs().MoveAndAppendTo(g.logs.ResourceLogs())
	rls := g.logs.ResourceLogs()
	g.nodes[node] = rls.At(rls.Len() - 1).ScopeLogs().At(0).LogRecords()
}
