// Package lru is a size-bounded map that evicts the least recently touched
// entry: the bounded state tables of the connectors (sipkpi's transactions
// and sources, sipcall's calls). Expiry is decided by the owner in Sweep, so
// each table applies its own lifetime rule.
package lru

import (
	"container/list"
	"time"
)

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
	max     int
	ll      *list.List
	m       map[string]*list.Element
	onEvict func(key string, v *V, reason string)
}

type entry[V any] struct {
	key     string
	touched time.Time
	v       V
}

// New returns a map of at most maxEntries (at least 1) entries; onEvict, if
// not nil, sees every entry that leaves it.
func New[V any](maxEntries int, onEvict func(key string, v *V, reason string)) *Map[V] {
	return &Map[V]{max: max(maxEntries, 1), ll: list.New(), m: map[string]*list.Element{}, onEvict: onEvict}
}

// Len is the number of entries.
func (l *Map[V]) Len() int { return len(l.m) }

// Get returns the entry for key and marks it recently used at now.
func (l *Map[V]) Get(key string, now time.Time) (*V, bool) {
	el, ok := l.m[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry[V])
	e.touched = now
	l.ll.MoveToFront(el)
	return &e.v, true
}

// Peek returns the entry for key without touching it.
func (l *Map[V]) Peek(key string) (*V, bool) {
	el, ok := l.m[key]
	if !ok {
		return nil, false
	}
	return &el.Value.(*entry[V]).v, true
}

// Add inserts a zero entry for key (which must be absent), evicting the
// least recently used entry when full.
func (l *Map[V]) Add(key string, now time.Time) *V {
	if len(l.m) >= l.max {
		l.remove(l.ll.Back(), ReasonCapacity)
	}
	e := &entry[V]{key: key, touched: now}
	l.m[key] = l.ll.PushFront(e)
	return &e.v
}

// Remove removes key, if present, giving reason to the eviction callback.
func (l *Map[V]) Remove(key, reason string) bool {
	el, ok := l.m[key]
	if ok {
		l.remove(el, reason)
	}
	return ok
}

func (l *Map[V]) remove(el *list.Element, reason string) {
	e := el.Value.(*entry[V])
	l.ll.Remove(el)
	delete(l.m, e.key)
	if l.onEvict != nil {
		l.onEvict(e.key, &e.v, reason)
	}
}

// Sweep removes every entry for which expired(key, value, last touch) is
// true, least recently used first. The predicate may change the value
// (the eviction callback sees the change) but not the map.
func (l *Map[V]) Sweep(expired func(key string, v *V, touched time.Time) bool) {
	for el := l.ll.Back(); el != nil; {
		prev := el.Prev()
		e := el.Value.(*entry[V])
		if expired(e.key, &e.v, e.touched) {
			l.remove(el, ReasonExpired)
		}
		el = prev
	}
}
