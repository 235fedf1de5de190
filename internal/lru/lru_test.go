package lru

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type evicted struct{ key, reason string }

func TestMap(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	var out []evicted
	m := New(2, func(key string, v *int, reason string) {
		assert.Equal(t, len(key), *v, "the callback sees the entry's value")
		out = append(out, evicted{key, reason})
	})
	*m.Add("a", t0) = 1
	*m.Add("bb", t0.Add(time.Second)) = 2
	_, ok := m.Get("a", t0.Add(2*time.Second)) // a is now the most recent
	require.True(t, ok)
	*m.Add("ccc", t0.Add(3*time.Second)) = 3 // full: bb, the least recent, goes
	assert.Equal(t, []evicted{{"bb", ReasonCapacity}}, out)
	assert.Equal(t, 2, m.Len())

	v, ok := m.Peek("a")
	require.True(t, ok)
	assert.Equal(t, 1, *v)
	assert.True(t, m.Remove("a", "mine"))
	assert.False(t, m.Remove("a", "mine"), "absent")
	assert.Equal(t, evicted{"a", "mine"}, out[1])

	*m.Add("dd", t0.Add(4*time.Second)) = 2
	var seen []string
	m.Sweep(func(key string, v *int, touched time.Time) bool {
		seen = append(seen, key)
		return touched.Before(t0.Add(4 * time.Second))
	})
	assert.Equal(t, []string{"ccc", "dd"}, seen, "least recently used first")
	assert.Equal(t, evicted{"ccc", ReasonExpired}, out[2])
	_, ok = m.Get("ccc", t0)
	assert.False(t, ok)
	assert.Equal(t, 1, m.Len())
	assert.ElementsMatch(t, []string{ReasonCapacity, ReasonExpired}, Reasons())
}
