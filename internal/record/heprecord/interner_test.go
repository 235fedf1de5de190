package heprecord

import (
	"bytes"
	"net/netip"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestInterner(t *testing.T) {
	for _, in := range []*Interner{nil, NewInterner()} {
		for i := range 2 * internLimit { // past the limit: the tables are cleared, answers stay right
			a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
			assert.Equal(t, a.String(), in.Addr(a))
			name := []byte("node-" + strconv.Itoa(i))
			assert.Equal(t, string(name), in.Bytes(name))
			assert.Equal(t, strconv.Itoa(i), in.Uint(uint32(i)))
		}
		v6 := netip.MustParseAddr("2001:db8::1")
		assert.Equal(t, "2001:db8::1", in.Addr(v6))
		assert.Equal(t, "2001:db8::1", in.Addr(v6))
		if in != nil {
			assert.LessOrEqual(t, len(in.addrs), internLimit)
			assert.LessOrEqual(t, len(in.names), internLimit)
			assert.LessOrEqual(t, len(in.ids), internLimit)
		}
	}
	// a small limit holds, and a long name is answered but not kept
	small := NewInternerLimit(8)
	for i := range 20 {
		small.Addr(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
		small.Uint(uint32(i))
		small.Bytes([]byte("node-" + strconv.Itoa(i)))
		assert.LessOrEqual(t, len(small.addrs), 8)
		assert.LessOrEqual(t, len(small.ids), 8)
		assert.LessOrEqual(t, len(small.names), 8)
	}
	long := bytes.Repeat([]byte("n"), internMaxLen+1)
	in := NewInterner()
	assert.Equal(t, string(long), in.Bytes(long))
	assert.Empty(t, in.names, "a name longer than internMaxLen is not kept")
	assert.Equal(t, string(long[:internMaxLen]), in.Bytes(long[:internMaxLen]))
	assert.Len(t, in.names, 1)

	// a buffer reused after the call does not change an interned string
	in = NewInterner()
	buf := []byte("edge-1")
	s := in.Bytes(buf)
	copy(buf, "XXXXXX")
	assert.Equal(t, "edge-1", s)
	assert.Equal(t, "edge-1", in.Bytes([]byte("edge-1")))
}
