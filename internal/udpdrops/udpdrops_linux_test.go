package udpdrops

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

// ovfl is the control message the kernel sends with a datagram when the
// socket's drop count is total.
func ovfl(total uint32) []byte {
	b := make([]byte, OOBSize)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_SOCKET, unix.SO_RXQ_OVFL
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], total)
	return b
}

// TestUpdate: deltas of the running count, from datagrams read by several
// readers and so seen out of order, add up to the kernel's count.
func TestUpdate(t *testing.T) {
	tests := []struct {
		name   string
		totals []uint32
		want   []uint32
	}{
		{"in order", []uint32{0, 3, 3, 10}, []uint32{0, 3, 0, 7}},
		{"an older count after a newer one", []uint32{5, 9, 7, 9, 12}, []uint32{5, 4, 0, 0, 3}},
		{"the count wraps", []uint32{1 << 30, 1 << 31, 3 << 30, 1<<32 - 2, 1}, []uint32{1 << 30, 1 << 30, 1 << 30, 1<<30 - 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Counter
			var got []uint32
			for _, total := range tt.totals {
				got = append(got, c.Update(ovfl(total)))
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
