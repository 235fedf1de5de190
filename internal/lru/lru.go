// Package lru is a size-bounded map that evicts the least recently touched
// entry: the bounded state tables of the connectors (sipkpi's transactions
// and sources, sipcall's calls). Expiry is decided by the owner in Sweep, so
// each table applies its own lifetime rule.
package lru

import "time"

// The reasons the map itself passes to the eviction callback; an owner's
// Remove passes its own.
const (
	ReasonCapacity = "capacity" // the least recently used entry, to make room for a new one
	ReasonExpired  = "expired"  // Sweep's predicate said so
)

// Reasons are the eviction reasons the map itself gives.
func Reasons() []string { return []string{ReasonCapacity, ReasonExpired} }

// Map is not safe for concurrent use.
type Map[V any] struct {
	max int
	// root is the list's sentinel: root.next is the most recently touched
	// entry, root.prev the least. The links live in the entries
	// (container/list would allocate an element beside each entry, and
	// the GC would mark both).
	root    entry[V]
	m       map[string]*entry[V]
	onEvict func(key string, v *V, reason string)
}

type entry[V any] struct {
	prev, next *entry[V]
	key        string
	touched    time.Time
	v          V
}

// New returns a map of at most maxEntries (at least 1) entries; onEvict, if
// not nil, sees every entry that leaves it.
func New[V any](maxEntries int, onEvict func(key string, v *V, reason string)) *Map[V] {
	l := &Map[V]{max: max(maxEntries, 1), m: map[string]*entry[V]{}, onEvict: onEvict}
	l.root.prev, l.root.next = &l.root, &l.root
	return l
}

// Len is the number of entries.
func (l *Map[V]) Len() int { return len(l.m) }

// Get returns the entry for key and marks it recently used at now.
func (l *Map[V]) Get(key string, now time.Time) (*V, bool) {
	e, ok := l.m[key]
	if !ok {
		return nil, false
	}
	e.touched = now
	if l.root.next != e {
		l.unlink(e)
		l.pushFront(e)
	}
	return &e.v, true
}

// Peek returns the entry for key without touching it.
func (l *Map[V]) Peek(key string) (*V, bool) {
	e, ok := l.m[key]
	if !ok {
		return nil, false
	}
	return &e.v, true
}

// Add inserts a zero entry for key (which must be absent), evicting the
// least recently used entry when full.
func (l *Map[V]) Add(key string, now time.Time) *V {
	if len(l.m) >= l.max {
		l.remove(l.root.prev, ReasonCapacity)
	}
	e := &entry[V]{key: key, touched: now}
	l.m[key] = e
	l.pushFront(e)
	return &e.v
}

// Remove removes key, if present, giving reason to the eviction callback.
func (l *Map[V]) Remove(key, reason string) bool {
	e, ok := l.m[key]
	if ok {
		l.remove(e, reason)
	}
	return ok
}

func (l *Map[V]) remove(e *entry[V], reason string) {
	l.unlink(e)
	delete(l.m, e.key)
	if l.onEvict != nil {
		l.onEvict(e.key, &e.v, reason)
	}
}

func (l *Map[V]) pushFront(e *entry[V]) {
	e.prev, e.next = &l.root, l.root.next
	l.root.next.prev = e
	l.root.next = e
}

func (l *Map[V]) unlink(e *entry[V]) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

// Sweep removes every entry for which expired(key, value, last touch) is
// true, least recently used first. The predicate may change the value
// (the eviction callback sees the change) but not the map.
func (l *Map[V]) Sweep(expired func(key string, v *V, touched time.Time) bool) {
	for e := l.root.prev; e != &l.root; {
		prev := e.prev
		if expired(e.key, &e.v, e.touched) {
			l.remove(e, ReasonExpired)
		}
		e = prev
	}
}
