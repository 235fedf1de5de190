package app

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// httpLimits bound an HTTP listener.
type httpLimits struct {
	maxConnections int
	readHeader     time.Duration
	read           time.Duration // headers and body
	write          time.Duration
	idle           time.Duration
	maxHeaderBytes int
}

// metricsAdminLimits bound the metrics and admin HTTP listeners: a scraper
// or an operator needs little of either, and a client that trickles or
// hoards connections must not hold the proxy's memory or file descriptors.
var metricsAdminLimits = httpLimits{maxConnections: 64, readHeader: 10 * time.Second, read: 30 * time.Second,
	write: 30 * time.Second, idle: 60 * time.Second, maxHeaderBytes: 16 << 10}

// serveHTTP serves h on ln within l until the server is shut down; a
// listener that fails under it is logged.
func serveHTTP(ln net.Listener, h http.Handler, l httpLimits, name string, log *slog.Logger) *http.Server {
	s := &http.Server{Handler: h, ReadHeaderTimeout: l.readHeader, ReadTimeout: l.read,
		WriteTimeout: l.write, IdleTimeout: l.idle, MaxHeaderBytes: l.maxHeaderBytes}
	go func() {
		if err := s.Serve(netutil.LimitListener(ln, l.maxConnections)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP listener stopped", "listener", name, "address", ln.Addr().String(), "error", err)
		}
	}()
	return s
}
