package hep

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
)

// Inflate returns the payload carried in chunk 0x10, which senders compress
// with gzip or zlib. The result is bounded by limit bytes, so a compression
// bomb is an error, not an allocation.
func Inflate(compressed []byte, limit int) ([]byte, error) {
	var (
		r   io.Reader
		err error
	)
	switch {
	case len(compressed) >= 2 && compressed[0] == 0x1f && compressed[1] == 0x8b:
		r, err = gzip.NewReader(bytes.NewReader(compressed))
	default:
		r, err = zlib.NewReader(bytes.NewReader(compressed))
	}
	if err != nil {
		return nil, fmt.Errorf("hep: chunk 0x10: %w: %v", ErrDecompress, err)
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("hep: chunk 0x10: %w: %v", ErrDecompress, err)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("hep: chunk 0x10: %w: inflates past %d bytes", ErrOversized, limit)
	}
	return out, nil
}

// Deflate compresses a payload with gzip for chunk 0x10.
func Deflate(dst *bytes.Buffer, payload []byte) error {
	w := gzip.NewWriter(dst)
	if _, err := w.Write(payload); err != nil {
		return fmt.Errorf("hep: compress payload: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("hep: compress payload: %w", err)
	}
	return nil
}
