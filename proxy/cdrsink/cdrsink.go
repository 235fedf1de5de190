// Package cdrsink delivers the proxy's CDRs to SIPhon's backends, in
// SIPhon's formats: JSON Lines in a rotating file, one HTTP POST per
// record, or one syslog datagram per record. Emitting never blocks a call:
// records pass a bounded channel (cdr.channel_size) and a full channel
// drops the record and counts it.
package cdrsink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/rotfile"
	"github.com/siphon-otel/siphon-otel/internal/syslogmsg"
	"github.com/siphon-otel/siphon-otel/proxy/config"
)

// Record is one CDR: SIPhon's JSON object and its timestamp.
type Record struct {
	JSON []byte
	Time time.Time
}

// Reasons a CDR is dropped (and counted).
const (
	DropChannelFull  = "channel_full"  // the sink's channel to the backend is full
	DropBackendError = "backend_error" // the backend's write or flush failed
)

// DropReasons are every reason a CDR is dropped for, so that a counter's
// series exist before the first drop.
func DropReasons() []string { return []string{DropChannelFull, DropBackendError} }

// Backend writes records.
type Backend interface {
	Write(ctx context.Context, r Record) error
	Close() error
}

// Sink is the channel and the goroutine in front of a backend.
type Sink struct {
	ch      chan Record
	backend Backend
	log     *slog.Logger
	dropped func(reason string)
	written func()
	done    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	once    sync.Once
}

// New opens the backend named by cfg.Backend.
func New(cfg config.CDR, log *slog.Logger, dropped func(reason string), written func()) (*Sink, error) {
	var b Backend
	var err error
	switch cfg.Backend {
	case "file":
		b, err = newFile(cfg)
	case "http":
		b = newHTTP(cfg, log)
	case "syslog":
		b, err = newSyslog(cfg)
	default:
		err = fmt.Errorf("cdrsink: unknown backend %q", cfg.Backend)
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sink{ch: make(chan Record, cfg.ChannelSize), backend: b, log: log, dropped: dropped, written: written,
		done: make(chan struct{}), ctx: ctx, cancel: cancel}
	go s.run()
	return s, nil
}

// Emit queues a record without blocking; false when the channel is full
// and the record was dropped (and counted).
func (s *Sink) Emit(r Record) bool {
	select {
	case s.ch <- r:
		return true
	default:
		s.dropped(DropChannelFull)
		return false
	}
}

// bufferedBackend is a backend whose writes may be held in a buffer until
// Flush: the sink flushes when its channel runs empty (or every
// flushEvery records), so a burst of CDRs costs one write to the file, not
// one each. Records count as written once flushed.
type bufferedBackend interface {
	Buffer(r Record) error
	Flush() error
}

const flushEvery = 256

func (s *Sink) run() {
	defer close(s.done)
	if bb, ok := s.backend.(bufferedBackend); ok {
		s.runBuffered(bb)
		return
	}
	for r := range s.ch {
		if err := s.backend.Write(s.ctx, r); err != nil {
			s.dropped(DropBackendError)
			s.log.Warn("CDR not delivered", "error", err)
			continue
		}
		s.written()
	}
}

func (s *Sink) runBuffered(bb bufferedBackend) {
	pending := 0
	for r := range s.ch {
		if err := bb.Buffer(r); err != nil {
			s.dropped(DropBackendError)
			s.log.Warn("CDR not delivered", "error", err)
			continue
		}
		if pending++; len(s.ch) > 0 && pending < flushEvery {
			continue
		}
		err := bb.Flush()
		for range pending {
			if err != nil {
				s.dropped(DropBackendError)
			} else {
				s.written()
			}
		}
		if err != nil {
			s.log.Warn("CDRs not delivered", "records", pending, "error", err)
		}
		pending = 0
	}
}

// Close delivers what is queued (until ctx ends) and closes the backend.
func (s *Sink) Close(ctx context.Context) error {
	s.once.Do(func() { close(s.ch) })
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel() // stop retries; the rest is counted as dropped
		<-s.done
	}
	return s.backend.Close()
}

type fileBackend struct {
	mu sync.Mutex
	w  *rotfile.Writer
}

func newFile(cfg config.CDR) (*fileBackend, error) {
	w, err := rotfile.Open(rotfile.Options{Path: cfg.File.Path, MaxBytes: int64(cfg.File.RotateSizeMB) << 20})
	if err != nil {
		return nil, fmt.Errorf("cdrsink: %w", err)
	}
	return &fileBackend{w: w}, nil
}

func (f *fileBackend) Write(_ context.Context, r Record) error {
	if err := f.Buffer(r); err != nil {
		return err
	}
	return f.Flush()
}

// Buffer appends the record's line without flushing it.
func (f *fileBackend) Buffer(r Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Write(append(r.JSON, '\n'))
}

func (f *fileBackend) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Flush()
}

func (f *fileBackend) Close() error { return f.w.Close() }

// httpBackend POSTs like SIPhon: one record per request, Connection: close,
// auth_header verbatim. SIPhon never retries; with cdr.http.retry this
// backend does, for up to retry_for, so a collector restart loses nothing.
type httpBackend struct {
	cfg    config.CDR
	client *http.Client
	log    *slog.Logger
}

func newHTTP(cfg config.CDR, log *slog.Logger) *httpBackend {
	return &httpBackend{cfg: cfg, log: log, client: &http.Client{
		Timeout:   cfg.HTTP.Timeout,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: http.ProxyFromEnvironment},
	}}
}

func (h *httpBackend) Write(ctx context.Context, r Record) error {
	deadline := time.Now().Add(h.cfg.HTTP.RetryFor)
	backoff := 200 * time.Millisecond
	for {
		err := h.post(ctx, r)
		if err == nil || !h.cfg.HTTP.Retry || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (h *httpBackend) post(ctx context.Context, r Record) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.HTTP.URL, bytes.NewReader(r.JSON))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Close = true
	if h.cfg.HTTP.AuthHeader != "" {
		req.Header.Set("Authorization", h.cfg.HTTP.AuthHeader)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("cdrsink: POST %s: %w", h.cfg.HTTP.URL, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("cdrsink: POST %s: HTTP %d", h.cfg.HTTP.URL, resp.StatusCode)
	}
	return nil
}

func (h *httpBackend) Close() error { h.client.CloseIdleConnections(); return nil }

// syslogBackend sends SIPhon's line: "<134>1 {timestamp} siphon cdr - - - {json}".
type syslogBackend struct {
	conn net.Conn
	buf  []byte
}

func newSyslog(cfg config.CDR) (*syslogBackend, error) {
	c, err := net.Dial("udp", cfg.Syslog.Target)
	if err != nil {
		return nil, fmt.Errorf("cdrsink: syslog %s: %w", cfg.Syslog.Target, err)
	}
	return &syslogBackend{conn: c}, nil
}

func (s *syslogBackend) Write(_ context.Context, r Record) error {
	s.buf = syslogmsg.Append5424(s.buf[:0], 134, cdr.FormatTime(r.Time), "siphon", "cdr", "", "", r.JSON)
	_, err := s.conn.Write(s.buf)
	return err
}

func (s *syslogBackend) Close() error { return s.conn.Close() }
