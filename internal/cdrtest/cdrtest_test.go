package cdrtest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
)

func TestWithID(t *testing.T) {
	r, err := cdr.Parse(Fixture())
	require.NoError(t, err)
	assert.Equal(t, FixtureCallID, r.CallID())
	r, err = cdr.Parse(WithID("x-1@192.0.2.1"))
	require.NoError(t, err)
	assert.Equal(t, "x-1@192.0.2.1", r.CallID())
	// Fixture hands out a copy
	f := Fixture()
	f[0] = 'X'
	assert.Equal(t, byte('{'), Fixture()[0])
}
