package sipkpiconnector

import (
	"container/list"
	"time"
)

// lru is a size-bounded map that evicts the least recently touched entry.
// Expiry is decided by the owner in sweep, so each table can apply its own
// lifetime rule.
type lru[V any] struct {
	max     int
	ll      *list.List
	m       map[string]*list.Element
	onEvict func(key string, v *V, reason string)
}

type lruEntry[V any] struct {
	key     string
	touched time.Time
	v       V
}

func newLRU[V any](maxEntries int, onEvict func(string, *V, string)) *lru[V] {
	return &lru[V]{max: maxEntries, ll: list.New(), m: map[string]*list.Element{}, onEvict: onEvict}
}

func (l *lru[V]) len() int { return len(l.m) }

// get returns the entry for key and marks it recently used.
func (l *lru[V]) get(key string, now time.Time) (*V, bool) {
	el, ok := l.m[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*lruEntry[V])
	e.touched = now
	l.ll.MoveToFront(el)
	return &e.v, true
}

// add inserts a zero entry for key (which must be absent), evicting the
// least recently used entry when full.
func (l *lru[V]) add(key string, now time.Time) *V {
	if len(l.m) >= l.max {
		l.remove(l.ll.Back(), "capacity")
	}
	e := &lruEntry[V]{key: key, touched: now}
	l.m[key] = l.ll.PushFront(e)
	return &e.v
}

func (l *lru[V]) remove(el *list.Element, reason string) {
	e := el.Value.(*lruEntry[V])
	l.ll.Remove(el)
	delete(l.m, e.key)
	if l.onEvict != nil {
		l.onEvict(e.key, &e.v, reason)
	}
}

// sweep removes every entry for which expired(value, last touch) is true.
func (l *lru[V]) sweep(expired func(v *V, touched time.Time) bool) {
	for el := l.ll.Back(); el != nil; {
		prev := el.Prev()
		e := el.Value.(*lruEntry[V])
		if expired(&e.v, e.touched) {
			l.remove(el, "expired")
		}
		el = prev
	}
}
