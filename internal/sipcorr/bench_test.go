package sipcorr

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// b2buaCall is the records of one B2BUA call of a-leg Call-ID id: both
// legs' INVITE, 100, 180, 200, ACK, BYE and 200, and both CDRs.
func b2buaCall(t testing.TB, id string) plog.Logs {
	b := newBatch()
	for _, leg := range []struct{ callID, xcid string }{{id, ""}, {"b-" + id, "X-CID: " + id}} {
		var extra []string
		if leg.xcid != "" {
			extra = []string{leg.xcid}
		}
		b.msg(t, sip("INVITE", "INVITE", leg.callID, "", extra...))
		b.msg(t, sip("100", "INVITE", leg.callID, ""))
		b.msg(t, sip("180", "INVITE", leg.callID, "tt"))
		b.msg(t, sip("200", "INVITE", leg.callID, "tt"))
		b.msg(t, sip("ACK", "ACK", leg.callID, "tt"))
		b.msg(t, sip("BYE", "BYE", leg.callID, "tt"))
		b.msg(t, sip("200", "BYE", leg.callID, "tt"))
		b.cdr(leg.callID)
	}
	return b.ld
}

// BenchmarkB2BUACall keys one B2BUA call (16 records, two new Call-IDs)
// per iteration on a table of 100,000; it checks that the b-leg's records
// took the a-leg's key.
func BenchmarkB2BUACall(b *testing.B) {
	c, err := New(Config{Sources: DefaultSources(), MaxCallIDs: 100_000, TTL: time.Hour}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		id := fmt.Sprintf("call-%d@127.0.0.1", i)
		ld := b2buaCall(b, id)
		i++
		b.StartTimer()
		st := c.Process(ld)
		if st.Records[KindTable] != 7 || st.Records[KindHeader] != 1 {
			b.Fatalf("%s: %v", id, st.Records)
		}
	}
}

// BenchmarkTableMemory reports the heap a table entry takes (with its
// ghost, once evicted): the table full of B2BUA b-legs whose key is a
// 30-byte Call-ID, then all of them evicted by as many others.
func BenchmarkTableMemory(b *testing.B) {
	const n = 10_000
	for b.Loop() {
		c, err := New(Config{Sources: DefaultSources(), MaxCallIDs: n, TTL: time.Hour}, nil)
		if err != nil {
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		now := time.Now()
		for round := range 2 {
			for i := range n {
				h := uint64(round*n + i)
				e, _ := c.table.add(h, now)
				e.matched, e.key = true, fmt.Sprintf("a-leg-%024d", i)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if c.Len() != n || len(c.table.ghosts.seq) != n {
			b.Fatalf("%d entries, %d ghosts", c.Len(), len(c.table.ghosts.seq))
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/entry")
		runtime.KeepAlive(c)
	}
}
