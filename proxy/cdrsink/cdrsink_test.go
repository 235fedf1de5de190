package cdrsink

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/proxy/config"
)

// sample is SIPhon's own record and its syslog line (docs/siphon-formats.md#cdrs).
func sample(t *testing.T) (Record, string) {
	t.Helper()
	js := fixture.CDR()
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, js))
	var rec struct {
		Timestamp string `json:"timestamp"`
	}
	require.NoError(t, json.Unmarshal(js, &rec))
	ts, err := time.Parse(time.RFC3339Nano, rec.Timestamp)
	require.NoError(t, err)
	return Record{JSON: compact.Bytes(), Time: ts}, string(fixture.SyslogLine())
}

type counts struct {
	mu      sync.Mutex
	dropped map[string]int
	written int
}

func (c *counts) drop(reason string) { c.mu.Lock(); c.dropped[reason]++; c.mu.Unlock() }
func (c *counts) write()             { c.mu.Lock(); c.written++; c.mu.Unlock() }
func (c *counts) get() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := map[string]int{}
	for k, v := range c.dropped {
		d[k] = v
	}
	return c.written, d
}

func newSink(t *testing.T, cfg config.CDR) (*Sink, *counts) {
	t.Helper()
	c := &counts{dropped: map[string]int{}}
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), c.drop, c.write)
	require.NoError(t, err)
	return s, c
}

func baseConfig() config.CDR {
	return config.Defaults().CDR
}

func TestFile(t *testing.T) {
	rec, _ := sample(t)
	cfg := baseConfig()
	cfg.File.Path = filepath.Join(t.TempDir(), "cdr.jsonl")
	s, c := newSink(t, cfg)
	require.True(t, s.Emit(rec))
	require.True(t, s.Emit(rec))
	require.NoError(t, s.Close(t.Context()))
	b, err := os.ReadFile(cfg.File.Path)
	require.NoError(t, err)
	assert.Equal(t, string(rec.JSON)+"\n"+string(rec.JSON)+"\n", string(b), "JSON Lines, SIPhon's bytes")
	written, dropped := c.get()
	assert.Equal(t, 2, written)
	assert.Empty(t, dropped)
}

func TestSyslog(t *testing.T) {
	rec, line := sample(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	cfg := baseConfig()
	cfg.Backend = "syslog"
	cfg.Syslog.Target = pc.LocalAddr().String()
	s, _ := newSink(t, cfg)
	require.True(t, s.Emit(rec))
	buf := make([]byte, 65536)
	require.NoError(t, pc.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, _, err := pc.ReadFrom(buf)
	require.NoError(t, err)
	assert.Equal(t, line, string(buf[:n]), "SIPhon's syslog line, byte for byte")
	require.NoError(t, s.Close(t.Context()))
}

func TestHTTP(t *testing.T) {
	rec, _ := sample(t)
	var mu sync.Mutex
	var got []*http.Request
	var bodies []string
	fail := 2 // the first two POSTs fail: the collector is restarting
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r)
		bodies = append(bodies, string(b))
		if fail > 0 {
			fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	cfg := baseConfig()
	cfg.Backend = "http"
	cfg.HTTP.URL = srv.URL + "/v1/cdr"
	cfg.HTTP.AuthHeader = "Bearer tok123"
	cfg.HTTP.Retry = true
	s, c := newSink(t, cfg)
	require.True(t, s.Emit(rec))
	require.NoError(t, s.Close(t.Context()))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 3, "two failures, then delivered")
	r := got[2]
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/v1/cdr", r.URL.Path)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, "Bearer tok123", r.Header.Get("Authorization"))
	assert.True(t, r.Close, "Connection: close")
	assert.Equal(t, string(rec.JSON), bodies[2])
	written, dropped := c.get()
	assert.Equal(t, 1, written)
	assert.Empty(t, dropped)
}

// TestNoRetryAndFullChannel: without retry a failed POST is a counted
// drop; a full channel drops at once, never blocking the caller.
func TestNoRetryAndFullChannel(t *testing.T) {
	rec, _ := sample(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	cfg := baseConfig()
	cfg.Backend = "http"
	cfg.HTTP.URL = srv.URL
	cfg.ChannelSize = 2
	s, c := newSink(t, cfg)
	accepted := 0
	for range 10 {
		if s.Emit(rec) {
			accepted++
		}
	}
	close(release)
	require.NoError(t, s.Close(t.Context()))
	written, dropped := c.get()
	assert.Zero(t, written)
	assert.Equal(t, 10-accepted, dropped["channel_full"])
	assert.Equal(t, accepted, dropped["backend_error"])
	assert.GreaterOrEqual(t, accepted, 2)
	assert.LessOrEqual(t, accepted, 3, "channel of 2 plus the one in flight")
}

// TestFileBurst: a burst larger than one flush lands whole, each record
// once, and a record counts as written only once it reached the file.
func TestFileBurst(t *testing.T) {
	rec, _ := sample(t)
	cfg := baseConfig()
	cfg.File.Path = filepath.Join(t.TempDir(), "cdr.jsonl")
	cfg.ChannelSize = 3 * flushEvery
	s, c := newSink(t, cfg)
	const n = 2*flushEvery + 17
	for range n {
		require.True(t, s.Emit(rec))
	}
	require.Eventually(t, func() bool { w, _ := c.get(); return w == n }, 10*time.Second, time.Millisecond)
	// every counted record is in the file before Close flushes anything
	b, err := os.ReadFile(cfg.File.Path)
	require.NoError(t, err)
	assert.Equal(t, n, bytes.Count(b, []byte("\n")))
	require.NoError(t, s.Close(t.Context()))
	_, dropped := c.get()
	assert.Empty(t, dropped)
}
