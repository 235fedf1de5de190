// Package cdrtest gives tests SIPhon's CDR fixture (the contract's own
// record, internal/testdata/siphon/siphon-cdr.json) with the Call-ID they
// need.
package cdrtest

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
)

// FixtureCallID is the Call-ID the fixture carries.
const FixtureCallID = "a84b4c76e66710@192.168.1.100"

var fixture = func() []byte {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "testdata", "siphon", "siphon-cdr.json"))
	if err != nil {
		panic(err) // the fixture is part of the repository
	}
	return bytes.TrimSpace(b)
}()

// Fixture returns the record, one JSON object without a trailing newline.
func Fixture() []byte { return bytes.Clone(fixture) }

// WithID returns the record with Call-ID id.
func WithID(id string) []byte {
	return bytes.Replace(fixture, []byte(FixtureCallID), []byte(id), 1)
}
