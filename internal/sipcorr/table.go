package sipcorr

import "time"

// entry is what the table holds for one Call-ID (known by its hash: a
// Call-ID's length is the sender's choice, the table's memory is not).
type entry struct {
	hash       uint64
	key        string // "" while the Call-ID keys itself
	touched    time.Time
	matched    bool // a source established key; it never changes again
	late       bool // made after the Call-ID's earlier entry was evicted
	prev, next *entry
}

// table maps Call-IDs to keys, bounded in entries (the least recently
// used goes first) and in idle time (ttl). It also remembers the hashes of
// as many evicted Call-IDs, so that a record arriving after its entry went
// can be told from one of a Call-ID never seen.
type table struct {
	max    int
	ttl    time.Duration
	m      map[uint64]*entry
	root   entry // root.next is the most recently used, root.prev the least
	ghosts ghosts

	evictedCapacity, evictedExpired int64
}

func newTable(maxEntries int, ttl time.Duration) *table {
	t := &table{max: maxEntries, ttl: ttl, m: map[uint64]*entry{}, ghosts: newGhosts(maxEntries)}
	t.root.next, t.root.prev = &t.root, &t.root
	return t
}

func (t *table) len() int { return len(t.m) }

// get returns h's entry, marked used at now.
func (t *table) get(h uint64, now time.Time) *entry {
	e := t.m[h]
	if e != nil {
		e.touched = now
		t.unlink(e)
		t.pushFront(e)
	}
	return e
}

// peek returns h's entry without marking it used.
func (t *table) peek(h uint64) *entry { return t.m[h] }

// add inserts an entry for h, which has none, evicting the least recently
// used entry when full. late tells whether h had an entry that was evicted
// (its ghost is consumed).
func (t *table) add(h uint64, now time.Time) (e *entry, late bool) {
	if len(t.m) >= t.max {
		t.evict(t.root.prev)
		t.evictedCapacity++
	}
	late = t.ghosts.remove(h)
	e = &entry{hash: h, touched: now, late: late}
	t.m[h] = e
	t.pushFront(e)
	return e, late
}

// expire evicts every entry idle for longer than ttl at now.
func (t *table) expire(now time.Time) {
	for e := t.root.prev; e != &t.root && now.Sub(e.touched) > t.ttl; e = t.root.prev {
		t.evict(e)
		t.evictedExpired++
	}
}

func (t *table) evict(e *entry) {
	t.unlink(e)
	delete(t.m, e.hash)
	t.ghosts.add(e.hash)
}

func (t *table) pushFront(e *entry) {
	e.prev, e.next = &t.root, t.root.next
	t.root.next.prev = e
	t.root.next = e
}

func (t *table) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

// ghosts is a bounded set of hashes of evicted Call-IDs, the oldest
// forgotten first.
type ghosts struct {
	max  int
	ring []ghost           // grows to max
	next int               // where the next ghost goes once ring is full
	seq  map[uint64]uint64 // hash -> the sequence number of its ring slot
	n    uint64
}

type ghost struct{ hash, seq uint64 }

func newGhosts(capacity int) ghosts {
	return ghosts{max: capacity, seq: map[uint64]uint64{}}
}

func (g *ghosts) add(h uint64) {
	g.n++
	gh := ghost{hash: h, seq: g.n}
	if len(g.ring) < g.max {
		g.ring = append(g.ring, gh)
	} else {
		old := g.ring[g.next]
		// the slot's hash may have come back to the table, or been
		// evicted again since (a later slot holds it then)
		if g.seq[old.hash] == old.seq {
			delete(g.seq, old.hash)
		}
		g.ring[g.next] = gh
		g.next = (g.next + 1) % len(g.ring)
	}
	g.seq[h] = gh.seq
}

// remove forgets h, reporting whether it was there.
func (g *ghosts) remove(h uint64) bool {
	_, ok := g.seq[h]
	delete(g.seq, h)
	return ok
}

func (g *ghosts) has(h uint64) bool {
	_, ok := g.seq[h]
	return ok
}
