package hep

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
)

func packets(n int) ([][]byte, []byte) {
	var all [][]byte
	var stream []byte
	for i := range n {
		p := v3(chunk(0, ChunkCaptureID, binary.BigEndian.AppendUint32(nil, uint32(i))),
			chunk(0, ChunkPayload, bytes.Repeat([]byte{'a' + byte(i%26)}, 10+i*37)))
		all = append(all, p)
		stream = append(stream, p...)
	}
	return all, stream
}

func readAll(t *testing.T, s *StreamReader) ([][]byte, error) {
	t.Helper()
	var got [][]byte
	for {
		b, err := s.Next()
		if err != nil {
			return got, err
		}
		got = append(got, bytes.Clone(b))
	}
}

func TestStreamFramesBackToBack(t *testing.T) {
	want, stream := packets(50)
	for name, r := range map[string]io.Reader{
		"whole":    bytes.NewReader(stream),
		"one byte": iotest.OneByteReader(bytes.NewReader(stream)),
		"half":     iotest.HalfReader(bytes.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := readAll(t, NewStreamReader(r, 0, false, 0))
			assert.ErrorIs(t, err, io.EOF)
			assert.Equal(t, want, got)
		})
	}
}

func TestStreamTruncated(t *testing.T) {
	_, stream := packets(2)
	got, err := readAll(t, NewStreamReader(bytes.NewReader(stream[:len(stream)-3]), 0, false, 0))
	assert.Len(t, got, 1)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)

	got, err = readAll(t, NewStreamReader(bytes.NewReader([]byte("HEP")), 0, false, 0))
	assert.Empty(t, got)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestStreamGarbageWithoutResync(t *testing.T) {
	want, stream := packets(2)
	garbage := append(bytes.Clone(want[0]), []byte("GARBAGE!")...)
	garbage = append(garbage, stream...)
	got, err := readAll(t, NewStreamReader(bytes.NewReader(garbage), 0, false, 0))
	assert.Equal(t, want[:1], got)
	assert.ErrorIs(t, err, ErrBadMagic)
}

func TestStreamResync(t *testing.T) {
	want, _ := packets(3)
	var stream []byte
	stream = append(stream, "xxHxHExHEPxHEP4"...) // near misses before the first packet
	stream = append(stream, want[0]...)
	stream = append(stream, 'H', 'E', 'P', '3', 0, 2) // length below the header size
	stream = append(stream, want[1]...)
	stream = append(stream, 'H', 'E', 'P', '3', 0xff, 0xff) // above the maximum
	stream = append(stream, want[2]...)
	s := NewStreamReader(bytes.NewReader(stream), 4096, true, 1024)
	got, err := readAll(t, s)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, want, got)
	assert.Equal(t, int64(15+6+6), s.Skipped())
}

func TestStreamResyncGivesUp(t *testing.T) {
	s := NewStreamReader(bytes.NewReader(bytes.Repeat([]byte("garbage "), 1000)), 0, true, 100)
	_, err := readAll(t, s)
	assert.ErrorIs(t, err, ErrResync)
	assert.LessOrEqual(t, s.Skipped(), int64(100))
}

func TestStreamOversized(t *testing.T) {
	p := v3(chunk(0, ChunkPayload, make([]byte, 2000)))
	_, err := readAll(t, NewStreamReader(bytes.NewReader(p), 1000, false, 0))
	assert.ErrorIs(t, err, ErrOversized)
}
