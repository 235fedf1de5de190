package app

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHTTPBounds: the metrics and admin listeners cut a client that never
// finishes its headers, refuse huge headers, and hold at most
// httpMaxConnections connections while still answering.
func TestHTTPBounds(t *testing.T) {
	start := func(l httpLimits) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		s := serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
			l, "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
		t.Cleanup(func() { _ = s.Close() })
		return ln.Addr().String()
	}
	short := metricsAdminLimits
	short.readHeader = 300 * time.Millisecond // shortened for the test
	addr := start(short)

	t.Run("headers that never end", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n")
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		b, err := io.ReadAll(c) // the server answers 408 or just closes
		require.NoError(t, err, "closed by the server, not by our deadline")
		assert.True(t, len(b) == 0 || strings.HasPrefix(string(b), "HTTP/1.1 408"), "%q", b)
	})
	t.Run("huge headers", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	})
	t.Run("connection cap", func(t *testing.T) {
		addr := start(metricsAdminLimits) // the hoarders stay while we look
		var held []net.Conn
		for range metricsAdminLimits.maxConnections {
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			held = append(held, c)
		}
		// one more connects (the kernel's backlog) but is served only when
		// a slot frees
		extra, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer extra.Close()
		_, err = io.WriteString(extra, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		served := make(chan string, 1)
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
			if err != nil {
				served <- err.Error()
				return
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 16))
			served <- string(b)
		}()
		select {
		case got := <-served:
			t.Fatalf("served past the cap: %q", got)
		case <-time.After(300 * time.Millisecond): // not served while the cap is full
		}
		held[0].Close()
		select {
		case got := <-served:
			assert.Equal(t, "ok", got)
		case <-time.After(10 * time.Second):
			t.Fatal("not served after a slot freed")
		}
		for _, c := range held[1:] {
			c.Close()
		}
	})
}
