package logbatch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestConfigValidate(t *testing.T) {
	assert.NoError(t, Config{MaxSize: 1, Timeout: time.Millisecond}.Validate())
	assert.EqualError(t, Config{MaxSize: 0, Timeout: -time.Second}.Validate(),
		"max_size must be at least 1, got 0\ntimeout must be positive, got -1s")
	assert.NoError(t, DefaultResource().Validate())
	assert.EqualError(t, ResourceConfig{}.Validate(), "service_name must not be empty")
}

func TestResourceFill(t *testing.T) {
	c := ResourceConfig{ServiceName: "siphon", Attributes: map[string]string{"env": "test", "host.name": "all"},
		Nodes: map[string]map[string]string{"10.0.0.5": {"host.name": "sbc-1", "service.instance.id": "sbc-1"}}}
	tests := []struct {
		node string
		want map[string]any
	}{
		{"10.0.0.5", map[string]any{"service.name": "siphon", "service.instance.id": "sbc-1", "env": "test", "host.name": "sbc-1"}},
		{"10.0.0.6", map[string]any{"service.name": "siphon", "service.instance.id": "10.0.0.6", "env": "test", "host.name": "all"}},
		{"", map[string]any{"service.name": "siphon", "env": "test", "host.name": "all"}},
	}
	for _, tt := range tests {
		m := pcommon.NewMap()
		c.Fill(m, tt.node)
		assert.Equal(t, tt.want, m.AsRaw(), tt.node)
	}
}

func TestDrain(t *testing.T) {
	t.Run("closeAll returns", func(t *testing.T) {
		s := NewStopper()
		err := s.Drain(context.Background(), func() error { return errors.New("x") })
		assert.EqualError(t, err, "x")
		assert.True(t, stopped(s), "retries end once Drain returns")
	})
	t.Run("cancelled context ends retries", func(t *testing.T) {
		s := NewStopper()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		// closeAll waits for the retries to end, as a flush of a refused batch does
		err := s.Drain(ctx, func() error { <-s.Stopping(); return nil })
		require.NoError(t, err)
	})
}

func stopped(s *Stopper) bool {
	select {
	case <-s.Stopping():
		return true
	default:
		return false
	}
}
