package heprecord

import (
	"net/netip"
	"strconv"
)

// internLimit bounds each of an Interner's tables by default; a full table
// is cleared rather than evicted entry by entry (a fleet that outgrows it
// only loses the saving, not correctness).
const internLimit = 4096

// internMaxLen is the longest name kept: node names are short host names.
// A longer one is copied for its record and not kept, or a sender could
// pin a table full of 64 KiB names (4096 of them held 270 MB).
const internMaxLen = 64

// Interner returns the string of an address, node name or capture id seen
// before instead of a new copy. A fleet sends from few of them, and at
// 100k+ packets/s every copy is an allocation the GC pays for. Not safe
// for concurrent use: one per reading goroutine. A nil Interner copies.
type Interner struct {
	limit int
	addrs map[netip.Addr]string
	names map[string]string
	ids   map[uint32]string
}

// NewInterner returns an empty Interner whose tables hold 4096 entries
// each.
func NewInterner() *Interner { return NewInternerLimit(internLimit) }

// NewInternerLimit returns an empty Interner whose tables hold limit
// entries each: what it retains, at most about 0.3 KB an entry, is bounded
// by it.
func NewInternerLimit(limit int) *Interner {
	return &Interner{limit: max(limit, 1), addrs: map[netip.Addr]string{}, names: map[string]string{}, ids: map[uint32]string{}}
}

// Addr returns a.String().
func (in *Interner) Addr(a netip.Addr) string {
	if in == nil {
		return a.String()
	}
	if s, ok := in.addrs[a]; ok {
		return s
	}
	if len(in.addrs) >= in.limit {
		clear(in.addrs)
	}
	s := a.String()
	in.addrs[a] = s
	return s
}

// Bytes returns string(b); b is not retained.
func (in *Interner) Bytes(b []byte) string {
	if in == nil || len(b) > internMaxLen {
		return string(b)
	}
	if s, ok := in.names[string(b)]; ok { // no allocation for the lookup
		return s
	}
	if len(in.names) >= in.limit {
		clear(in.names)
	}
	s := string(b)
	in.names[s] = s
	return s
}

// Uint returns the decimal form of v.
func (in *Interner) Uint(v uint32) string {
	if in == nil {
		return strconv.FormatUint(uint64(v), 10)
	}
	if s, ok := in.ids[v]; ok {
		return s
	}
	if len(in.ids) >= in.limit {
		clear(in.ids)
	}
	s := strconv.FormatUint(uint64(v), 10)
	in.ids[v] = s
	return s
}
