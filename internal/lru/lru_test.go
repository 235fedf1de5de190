package lru

import (
	"fmt"
	"math/rand/v2"
	"strconv"
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

// BenchmarkChurn is a table at its bound taking new keys (each Add evicts
// the oldest) and touching recent ones, as sipkpi's transactions do under
// load: the cost and allocations of an entry's life.
func BenchmarkChurn(b *testing.B) {
	const size = 10_000
	keys := make([]string, 4*size)
	for i := range keys {
		keys[i] = fmt.Sprintf("call-%d@192.0.2.1\x001\x00INVITE\x00z9hG4bK-%d", i, i)
	}
	m := New(size, func(string, *[4]int64, string) {})
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := keys[i%len(keys)]
		if _, ok := m.Get(k, now); !ok {
			m.Add(k, now)[0] = int64(i)
		}
		m.Get(keys[(i+len(keys)-7)%len(keys)], now)
	}
}

// TestAgainstModel: random Adds, Gets, Removes and Sweeps against a slice
// kept in recency order: the same entries leave for the same reasons, in
// the same order.
func TestAgainstModel(t *testing.T) {
	const size = 8
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var got, want []evicted
	m := New(size, func(key string, v *int, reason string) {
		assert.Equal(t, key, fmt.Sprint(*v))
		got = append(got, evicted{key, reason})
	})
	type item struct {
		key     string
		touched time.Time
	}
	var model []item // most recent first
	find := func(key string) int {
		for i, it := range model {
			if it.key == key {
				return i
			}
		}
		return -1
	}
	for step := range 20_000 {
		now := t0.Add(time.Duration(step) * time.Millisecond)
		key := fmt.Sprint(rng.IntN(3 * size))
		switch op := rng.IntN(10); {
		case op < 5: // Get, else Add
			i := find(key)
			v, ok := m.Get(key, now)
			require.Equal(t, i >= 0, ok, "step %d: Get %s", step, key)
			if ok {
				assert.Equal(t, key, fmt.Sprint(*v))
				model = append([]item{{key, now}}, append(model[:i:i], model[i+1:]...)...)
				continue
			}
			if len(model) == size {
				want = append(want, evicted{model[size-1].key, ReasonCapacity})
				model = model[:size-1]
			}
			n, _ := strconv.Atoi(key)
			*m.Add(key, now) = n
			model = append([]item{{key, now}}, model...)
		case op < 8:
			i := find(key)
			require.Equal(t, i >= 0, m.Remove(key, "mine"), "step %d: Remove %s", step, key)
			if i >= 0 {
				want = append(want, evicted{key, "mine"})
				model = append(model[:i:i], model[i+1:]...)
			}
		default:
			cut := now.Add(-time.Duration(rng.IntN(20)) * time.Millisecond)
			var kept []item
			for i := len(model) - 1; i >= 0; i-- {
				if model[i].touched.Before(cut) {
					want = append(want, evicted{model[i].key, ReasonExpired})
				} else {
					kept = append([]item{model[i]}, kept...)
				}
			}
			model = kept
			m.Sweep(func(_ string, _ *int, touched time.Time) bool { return touched.Before(cut) })
		}
		require.Len(t, got, len(want), "step %d", step)
		require.Equal(t, len(model), m.Len(), "step %d", step)
	}
	assert.Equal(t, want, got)
	assert.Greater(t, len(got), 1000, "every kind of eviction, many times")
}
