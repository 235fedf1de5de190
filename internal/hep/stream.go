package hep

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// StreamReader frames HEP v3 packets sent back to back over a byte stream
// (TCP or TLS), using the length in each packet's header.
//
// On garbage (bad magic, or a length below the header size or above the
// maximum) it either returns an error, so the caller closes the connection,
// or, with Resync set, skips forward to the next "HEP3" and carries on,
// counting the bytes it skipped. Memory is bounded by the maximum packet
// size: one read buffer and one packet buffer per reader.
type StreamReader struct {
	br      *bufio.Reader
	max     int
	buf     []byte
	resync  bool
	maxSkip int
	skipped int64 // total bytes discarded while resynchronising
	pending int   // bytes skipped since the last good packet
}

// NewStreamReader reads packets of at most maxSize bytes (capped at 65535)
// from r. With resync, up to maxSkip bytes of garbage between packets are
// skipped before giving up with ErrResync; without it the first garbage
// byte is an error.
func NewStreamReader(r io.Reader, maxSize int, resync bool, maxSkip int) *StreamReader {
	if maxSize <= 0 || maxSize > MaxPacketLen {
		maxSize = MaxPacketLen
	}
	return &StreamReader{br: bufio.NewReaderSize(r, 16<<10), max: maxSize, resync: resync, maxSkip: maxSkip}
}

// Skipped returns the number of garbage bytes discarded so far.
func (s *StreamReader) Skipped() int64 { return s.skipped }

// Next returns the next whole packet. The slice is valid until the next call.
// At a clean end of stream it returns io.EOF; a stream that ends inside a
// packet returns io.ErrUnexpectedEOF.
func (s *StreamReader) Next() ([]byte, error) {
	for {
		hdr, err := s.br.Peek(HeaderLen)
		if err != nil {
			if errors.Is(err, io.EOF) && len(hdr) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		var kind error
		total := int(binary.BigEndian.Uint16(hdr[4:]))
		switch {
		case string(hdr[:4]) != Magic:
			kind = ErrBadMagic
		case total < HeaderLen:
			kind = ErrLengthMismatch
		case total > s.max:
			kind = ErrOversized
		}
		if kind == nil {
			s.pending = 0
			if cap(s.buf) < total {
				s.buf = make([]byte, total, min(s.max, max(2*total, 4096)))
			}
			s.buf = s.buf[:total]
			if _, err := io.ReadFull(s.br, s.buf); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
			return s.buf, nil
		}
		if !s.resync {
			return nil, errAt(kind, 0)
		}
		if err := s.skip(); err != nil {
			return nil, err
		}
	}
}

// skip discards bytes up to the next possible start of a packet.
func (s *StreamReader) skip() error {
	n := 1
	if buffered, _ := s.br.Peek(s.br.Buffered()); len(buffered) > 1 {
		if i := bytes.IndexByte(buffered[1:], 'H'); i >= 0 {
			n = i + 1
		} else {
			n = len(buffered)
		}
	}
	if s.pending+n > s.maxSkip {
		return errAt(ErrResync, s.pending)
	}
	discarded, _ := s.br.Discard(n)
	s.skipped += int64(discarded)
	s.pending += discarded
	return nil
}
