package siphoncdrreceiver

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/jsonvalid"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/receivers/siphoncdrreceiver/internal/metadata"
)

type httpHandler struct {
	r          *cdrReceiver
	cfg        *HTTPConfig
	obs        *receiverhelper.ObsReport
	tel        *transportTelemetry
	authHeader []byte
	retryAfter string
	commit     committer
	budget     budget
}

// recordOverhead is what a record costs in memory beyond its JSON, which
// it keeps as its body: SIPhon's 586-byte record is ~2 KiB as a log record
// (measured), its ~20 attributes making the difference.
const recordOverhead = 1536

func (r *cdrReceiver) startHTTP(ctx context.Context, host component.Host, cfg *HTTPConfig) error {
	obs, err := r.obsReport(transportHTTP)
	if err != nil {
		return err
	}
	allowed, err := parseSources(cfg.AllowedSources)
	if err != nil {
		return fmt.Errorf("siphon_cdr receiver: http: allowed_sources: %w", err)
	}
	tel := newTransportTelemetry(r.tel, transportHTTP)
	h := &httpHandler{
		r: r, cfg: cfg, obs: obs, tel: tel,
		retryAfter: strconv.Itoa(int(cfg.RetryAfter / time.Second)),
		budget:     budget{max: cfg.MaxInFlightBytes, tel: tel},
	}
	h.commit.consume = r.next.ConsumeLogs
	if cfg.AuthHeader != "" {
		h.authHeader = []byte(cfg.AuthHeader)
	}
	raw, err := cfg.NetAddr.Listen(ctx)
	if err != nil {
		return fmt.Errorf("siphon_cdr receiver: http listen %s: %w", cfg.NetAddr.Endpoint, err)
	}
	// connections are tracked under TLS, where their reads fail (see
	// connState); confighttp's ToListener would put TLS below them
	ln := r.guard(raw, allowed, tel, func(c net.Conn) net.Conn { return &trackedConn{Conn: c} })
	if t := cfg.TLS.Get(); t != nil {
		tlsCfg, err := t.LoadTLSConfig(ctx)
		if err != nil {
			_ = raw.Close()
			return fmt.Errorf("siphon_cdr receiver: http tls: %w", err)
		}
		// HTTP/1.1 only: one request at a time on a connection, which the
		// read timeouts bound (SIPhon speaks HTTP/1.1)
		tlsCfg.NextProtos = []string{"http/1.1"}
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv, err := cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, h,
		confighttp.WithErrorHandler(h.middlewareError))
	if err != nil {
		_ = raw.Close()
		return fmt.Errorf("siphon_cdr receiver: http server: %w", err)
	}
	inner := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if c := connOf(req.Context()); c != nil {
			c.pending.Store(false) // the request reached the handlers: they count it
		}
		inner.ServeHTTP(w, req)
	})
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, tracked(c))
	}
	srv.ConnState = h.connState
	r.sockets[transportHTTP] = raw
	w := r.watch(tel, raw.Addr())
	r.httpServer, r.httpWatch, r.httpDone = srv, w, make(chan struct{})
	go func() {
		defer close(r.httpDone)
		if err := srv.Serve(w.Listener(ln)); !errors.Is(err, http.ErrServerClosed) {
			w.Stop(err)
		}
	}()
	r.set.Logger.Info("SIPhon CDR receiver listening", zap.String("transport", transportHTTP),
		zap.Stringer("address", raw.Addr()), zap.String("path", cfg.Path))
	return nil
}

// trackedConn is an HTTP connection that remembers how its reads failed,
// so that a request net/http gave up on before any handler ran (headers
// too slow, cut short or malformed) is counted with its reason.
type trackedConn struct {
	net.Conn
	failure atomic.Value // string: readFailure of the last failed read
	pending atomic.Bool  // a request began and reached no handler yet
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		if why := readFailure(err); why != "" {
			c.failure.Store(why)
		}
	}
	return n, err
}

type connKey struct{}

// tracked returns the trackedConn under c, a TLS connection or not.
func tracked(c net.Conn) *trackedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	t, _ := c.(*trackedConn)
	return t
}

func connOf(ctx context.Context) *trackedConn {
	c, _ := ctx.Value(connKey{}).(*trackedConn)
	return c
}

// connState counts what ends before the handlers: a request whose headers
// net/http gave up on (net/http marks a connection active once a request's
// first bytes arrive, and closes it on a read error or after answering
// malformed headers itself), and a TLS handshake that failed.
func (h *httpHandler) connState(c net.Conn, state http.ConnState) {
	if state != http.StateClosed {
		if state == http.StateActive {
			if t := tracked(c); t != nil {
				t.pending.Store(true)
			}
		}
		return
	}
	t := tracked(c)
	if t == nil {
		return
	}
	if t.pending.Load() {
		why, _ := t.failure.Load().(string)
		if why == "" {
			why = "bad_request" // answered 400, 431 or 501 by net/http
		}
		h.tel.refused(why)
		h.r.logger.Warn("CDR request refused: "+why, zap.String("peer", c.RemoteAddr().String()),
			zap.String("error", "the request's headers were not read"))
		return
	}
	if tc, ok := c.(*tls.Conn); ok && !tc.ConnectionState().HandshakeComplete {
		h.tel.rejected("tls_handshake")
		h.r.logger.Warn("TLS handshake failed", zap.String("transport", transportHTTP), zap.String("peer", c.RemoteAddr().String()))
	}
}

// readFailure names why a read of a request failed: "timeout" (a read
// timeout expired), "incomplete" (the client closed or reset the
// connection), or "" (anything else).
func readFailure(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return "incomplete"
	}
	return ""
}

// budget bounds the memory of the requests being served
// (max_in_flight_bytes).
type budget struct {
	max  int64
	used atomic.Int64
	tel  *transportTelemetry
}

// claim is what one request took from the budget.
type claim struct {
	b *budget
	n int64
}

// take reserves n more bytes, unless they would pass the cap.
func (c *claim) take(n int64) bool {
	for {
		used := c.b.used.Load()
		if used+n > c.b.max {
			return false
		}
		if c.b.used.CompareAndSwap(used, used+n) {
			c.n += n
			c.b.tel.inFlight(n)
			return true
		}
	}
}

func (c *claim) give(n int64) {
	c.b.used.Add(-n)
	c.n -= n
	c.b.tel.inFlight(-n)
}

func (c *claim) release() { c.give(c.n) }

var (
	errInFlight = errors.New("max_in_flight_bytes reached")
	errTooLarge = errors.New("body larger than max_request_body_size")
)

// readBody reads the body into a buffer that grows, doubling, as bytes
// arrive, up to the Content-Length if sent, else max_request_body_size;
// each growth is taken from the budget before it is made: what a request
// holds is what it sent.
func (h *httpHandler) readBody(req *http.Request, c *claim) ([]byte, error) {
	limit := h.cfg.MaxRequestBodySize
	if req.ContentLength >= 0 {
		limit = min(limit, req.ContentLength)
	}
	size := min(limit, 64<<10)
	if !c.take(size) {
		return nil, errInFlight
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if int64(cap(buf)) == limit {
				// full: only the end may follow
				var probe [1]byte
				n, err := req.Body.Read(probe[:])
				switch {
				case n > 0:
					return nil, errTooLarge
				case errors.Is(err, io.EOF):
					return buf, nil
				case err != nil:
					return nil, bodyReadError(err)
				}
				continue
			}
			grown := min(2*int64(cap(buf)), limit)
			if !c.take(grown) {
				return nil, errInFlight
			}
			next := make([]byte, len(buf), grown)
			copy(next, buf)
			c.give(int64(cap(buf)))
			buf = next
		}
		n, err := req.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, bodyReadError(err)
		}
	}
}

// bodyReadError is errTooLarge for confighttp's limit (a body without
// Content-Length, or decompressed), else err.
func bodyReadError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return errTooLarge
	}
	return err
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Index *int   `json:"index,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// refuse answers a refused request, counts it by reason and logs it (one
// line per reason every 10 s). The connection is closed after the answer
// unless the body was read to its end: what is left of it is not read.
func (h *httpHandler) refuse(w http.ResponseWriter, req *http.Request, reason string, status int, eb errorBody, bodyRead bool) {
	h.tel.refused(reason)
	h.r.logger.Warn("CDR request refused: "+reason, zap.String("peer", req.RemoteAddr), zap.Int("status", status), zap.String("error", eb.Error))
	if !bodyRead {
		w.Header().Set("Connection", "close")
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", h.retryAfter)
	}
	writeJSON(w, status, eb)
}

// middlewareError answers what confighttp's layers refuse before the
// handler: a Content-Encoding not enabled (400) or an auth extension's
// refusal (401).
func (h *httpHandler) middlewareError(w http.ResponseWriter, req *http.Request, msg string, status int) {
	reason := "bad_encoding"
	if status == http.StatusUnauthorized {
		reason = "unauthorized"
	}
	h.refuse(w, req, reason, status, errorBody{Error: msg}, false)
}

// ServeHTTP takes one CDR (SIPhon's request), a JSON array of CDRs or
// NDJSON. A request is accepted whole or not at all, so that a client may
// resend it after any error.
func (h *httpHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != h.cfg.Path {
		h.refuse(w, req, "not_found", http.StatusNotFound, errorBody{Error: "not found"}, false)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, req, "method_not_allowed", http.StatusMethodNotAllowed, errorBody{Error: "method not allowed"}, false)
		return
	}
	if h.authHeader != nil && subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), h.authHeader) != 1 {
		w.Header().Set("WWW-Authenticate", "Bearer")
		h.refuse(w, req, "unauthorized", http.StatusUnauthorized, errorBody{Error: "unauthorized"}, false)
		return
	}
	tooLarge := errorBody{Error: fmt.Sprintf("body larger than %d bytes", h.cfg.MaxRequestBodySize)}
	if req.ContentLength > h.cfg.MaxRequestBodySize { // refused unread
		h.tel.malformed("too_large")
		h.refuse(w, req, "too_large", http.StatusRequestEntityTooLarge, tooLarge, false)
		return
	}
	c := claim{b: &h.budget}
	defer c.release()
	body, err := h.readBody(req, &c)
	if err != nil {
		h.bodyError(w, req, err, tooLarge)
		return
	}
	raws, valid, err := splitRecords(body, h.cfg.MaxRecordsPerRequest)
	if err != nil {
		status, reason, malformed := http.StatusBadRequest, "not_json", "not_json"
		if errors.Is(err, errTooMany) {
			status, reason, malformed = http.StatusRequestEntityTooLarge, "too_many_records", "too_large"
		}
		h.tel.malformed(malformed)
		h.refuse(w, req, reason, status, errorBody{Error: err.Error()}, true)
		return
	}
	// the records about to be built
	if !c.take(int64(len(body)) + int64(len(raws))*recordOverhead) {
		h.refuse(w, req, "in_flight_limit", http.StatusServiceUnavailable, errorBody{Error: "too many requests in flight, retry later"}, true)
		return
	}
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	node := nodeOf(req.RemoteAddr)
	h.r.cfg.Resource.Fill(rl.Resource().Attributes(), node)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	now := time.Now()
	var scratch cdr.Record // each record goes into its log record at once: one for the request
	for i, raw := range raws {
		rec, err := &scratch, error(nil)
		if valid {
			err = cdr.ParseValidInto(&scratch, raw)
		} else {
			rec, err = cdr.Parse(raw)
		}
		if err != nil {
			h.tel.malformed("bad_field")
			eb := errorBody{Error: err.Error()}
			var fe *cdr.FieldError
			if errors.As(err, &fe) {
				eb.Field = fe.Field
			}
			if len(raws) > 1 {
				eb.Index = &i
			}
			h.refuse(w, req, "bad_field", http.StatusBadRequest, eb, true)
			return
		}
		cdrrecord.FromCDR(rec, raw, now, sl.LogRecords().AppendEmpty())
	}
	ctx := h.obs.StartLogsOp(req.Context())
	err = h.commit.submit(ctx, node, logs, len(raws))
	h.obs.EndLogsOp(ctx, "siphon_cdr_json", len(raws), err)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]int{"accepted": len(raws)})
	case consumererror.IsPermanent(err):
		h.refuse(w, req, "permanent_error", http.StatusBadRequest, errorBody{Error: "refused by the pipeline: " + err.Error()}, true)
	default:
		// nothing was accepted: the client keeps the records and resends
		h.refuse(w, req, "pipeline_refused", http.StatusServiceUnavailable, errorBody{Error: "pipeline busy, retry later"}, true)
	}
}

// bodyError answers a body that could not be read whole.
func (h *httpHandler) bodyError(w http.ResponseWriter, req *http.Request, err error, tooLarge errorBody) {
	switch why := readFailure(err); {
	case errors.Is(err, errTooLarge):
		h.tel.malformed("too_large")
		h.refuse(w, req, "too_large", http.StatusRequestEntityTooLarge, tooLarge, false)
	case errors.Is(err, errInFlight):
		h.refuse(w, req, "in_flight_limit", http.StatusServiceUnavailable, errorBody{Error: "too many requests in flight, retry later"}, false)
	case why == "timeout":
		h.refuse(w, req, why, http.StatusRequestTimeout, errorBody{Error: fmt.Sprintf("request not read within read_timeout (%s)", h.cfg.ReadTimeout)}, false)
	case why == "incomplete":
		// no one may be left to read the answer
		h.refuse(w, req, why, http.StatusBadRequest, errorBody{Error: "body cut short: " + err.Error()}, false)
	default:
		h.refuse(w, req, "bad_body", http.StatusBadRequest, errorBody{Error: "cannot read body: " + err.Error()}, false)
	}
}

var errTooMany = errors.New("too many records in one request")

// splitRecords returns the JSON values of a body: one object, a JSON array
// of objects, or objects one after another (NDJSON, or any whitespace).
// valid tells that the values are well-formed JSON already.
func splitRecords(body []byte, max int) (records []json.RawMessage, valid bool, err error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, false, errors.New("empty body")
	}
	if jsonvalid.Valid(body) { // one object or one array: sliced, not decoded twice
		out := []json.RawMessage{body}
		if body[0] == '[' {
			var more bool
			if out, more = cdr.ArrayElementsAtMost(body, max); more {
				return nil, false, fmt.Errorf("%w: more than %d", errTooMany, max)
			}
		}
		return out, true, nil
	}
	out, err := splitDecoded(body, max)
	return out, false, err
}

// splitDecoded splits what jsonvalid.Valid refused as a whole: NDJSON, or
// malformed input whose error the decoder reports. An array is decoded
// element by element: past max, the rest is not.
func splitDecoded(body []byte, max int) ([]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var out []json.RawMessage
	array := body[0] == '['
	if array {
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("malformed JSON array: %w", err)
		}
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if array {
				return nil, fmt.Errorf("malformed JSON array: element %d: %w", len(out), err)
			}
			return nil, fmt.Errorf("record %d: malformed JSON: %w", len(out), err)
		}
		if len(out) == max {
			return nil, fmt.Errorf("%w: more than %d", errTooMany, max)
		}
		out = append(out, raw)
	}
	if array {
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("malformed JSON array: %w", err)
		}
	}
	// More stops at a stray ']' or '}' as well as at the end
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		if array {
			return nil, errors.New("data after the JSON array")
		}
		return nil, fmt.Errorf("record %d: malformed JSON: unexpected %q", len(out), rest[:min(len(rest), 16)])
	}
	return out, nil
}
