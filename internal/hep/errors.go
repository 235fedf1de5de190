package hep

import (
	"errors"
	"fmt"
)

// Kinds of malformed input. Every decode error wraps exactly one of these,
// so callers can count errors by kind with errors.Is or Reason.
var (
	ErrShort          = errors.New("packet too short")
	ErrBadMagic       = errors.New("not a HEP packet (bad magic or version)")
	ErrLengthMismatch = errors.New("length field does not match packet size")
	ErrChunkOverrun   = errors.New("chunk runs past the end of the packet")
	ErrChunkZeroLen   = errors.New("chunk length shorter than its header")
	ErrChunkSize      = errors.New("chunk has the wrong size for its type")
	ErrMicroseconds   = errors.New("microseconds not below 1000000")
	ErrOversized      = errors.New("packet larger than the allowed maximum")
	ErrBadHeader      = errors.New("inconsistent HEP v1/v2 header")
	ErrResync         = errors.New("no HEP packet found in stream garbage")
	ErrDecompress     = errors.New("compressed payload cannot be inflated")
)

var reasons = []struct {
	err    error
	reason string
}{
	{ErrShort, "short"},
	{ErrBadMagic, "bad_magic"},
	{ErrLengthMismatch, "length_mismatch"},
	{ErrChunkOverrun, "chunk_overrun"},
	{ErrChunkZeroLen, "zero_length_chunk"},
	{ErrChunkSize, "chunk_size"},
	{ErrMicroseconds, "bad_microseconds"},
	{ErrOversized, "oversized"},
	{ErrBadHeader, "bad_header"},
	{ErrResync, "stream_garbage"},
	{ErrDecompress, "bad_compressed_payload"},
}

// Reason returns a short, stable label for the kind of err, for use as a
// metric attribute value. Unknown errors map to "other".
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "other"
}

// DecodeError locates a malformed-input error in the packet.
type DecodeError struct {
	Kind   error  // one of the Err* values above
	Offset int    // byte offset in the packet where decoding stopped
	Chunk  uint16 // chunk type, when HasChunk
	Vendor uint16
	// HasChunk is set when the error concerns a specific chunk.
	HasChunk bool
}

func (e *DecodeError) Error() string {
	if e.HasChunk {
		return fmt.Sprintf("hep: chunk %#04x (vendor %d) at offset %d: %v", e.Chunk, e.Vendor, e.Offset, e.Kind)
	}
	return fmt.Sprintf("hep: offset %d: %v", e.Offset, e.Kind)
}

func (e *DecodeError) Unwrap() error { return e.Kind }

func errAt(kind error, off int) error { return &DecodeError{Kind: kind, Offset: off} }

func errChunk(kind error, off int, vendor, typ uint16) error {
	return &DecodeError{Kind: kind, Offset: off, Chunk: typ, Vendor: vendor, HasChunk: true}
}
