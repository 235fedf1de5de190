package siphoncdrreceiver

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/component"
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
}

func (r *cdrReceiver) startHTTP(ctx context.Context, host component.Host, cfg *HTTPConfig) error {
	obs, err := r.obsReport(transportHTTP)
	if err != nil {
		return err
	}
	h := &httpHandler{
		r: r, cfg: cfg, obs: obs, tel: newTransportTelemetry(r.tel, transportHTTP),
		retryAfter: strconv.Itoa(int(cfg.RetryAfter / time.Second)),
	}
	h.commit.consume = r.next.ConsumeLogs
	if cfg.AuthHeader != "" {
		h.authHeader = []byte(cfg.AuthHeader)
	}
	ln, err := cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("siphon_cdr receiver: http listen %s: %w", cfg.NetAddr.Endpoint, err)
	}
	srv, err := cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, h)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("siphon_cdr receiver: http server: %w", err)
	}
	r.sockets[transportHTTP] = ln
	w := r.watch(h.tel, ln.Addr())
	r.httpServer, r.httpWatch, r.httpDone = srv, w, make(chan struct{})
	go func() {
		defer close(r.httpDone)
		if err := srv.Serve(w.Listener(ln)); !errors.Is(err, http.ErrServerClosed) {
			w.Stop(err)
		}
	}()
	r.set.Logger.Info("SIPhon CDR receiver listening", zap.String("transport", transportHTTP),
		zap.Stringer("address", ln.Addr()), zap.String("path", cfg.Path))
	return nil
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

// ServeHTTP takes one CDR (SIPhon's request), a JSON array of CDRs or
// NDJSON. A request is accepted whole or not at all, so that a client may
// resend it after any error.
func (h *httpHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != h.cfg.Path {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not found"})
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method not allowed"})
		return
	}
	if h.authHeader != nil && subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), h.authHeader) != 1 {
		h.tel.unauthorized()
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized"})
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.tel.malformed("too_large")
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("body larger than %d bytes", tooBig.Limit)})
			return
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "cannot read body: " + err.Error()})
		return
	}
	raws, valid, err := splitRecords(body, h.cfg.MaxRecordsPerRequest)
	if err != nil {
		status := http.StatusBadRequest
		reason := "not_json"
		if errors.Is(err, errTooMany) {
			status, reason = http.StatusRequestEntityTooLarge, "too_large"
		}
		h.tel.malformed(reason)
		h.r.logger.Warn("CDR request refused", zap.String("peer", req.RemoteAddr), zap.Error(err))
		writeJSON(w, status, errorBody{Error: err.Error()})
		return
	}
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	node := nodeOf(req.RemoteAddr)
	h.r.cfg.Resource.Fill(rl.Resource().Attributes(), node)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	now := time.Now()
	for i, raw := range raws {
		parse := cdr.Parse
		if valid {
			parse = cdr.ParseValid
		}
		rec, err := parse(raw)
		if err != nil {
			h.tel.malformed("bad_field")
			h.r.logger.Warn("malformed CDR refused", zap.String("peer", req.RemoteAddr), zap.Int("index", i), zap.Error(err))
			eb := errorBody{Error: err.Error()}
			var fe *cdr.FieldError
			if errors.As(err, &fe) {
				eb.Field = fe.Field
			}
			if len(raws) > 1 {
				eb.Index = &i
			}
			writeJSON(w, http.StatusBadRequest, eb)
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
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "refused by the pipeline: " + err.Error()})
	default:
		// nothing was accepted: the client keeps the records and resends
		w.Header().Set("Retry-After", h.retryAfter)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "pipeline busy, retry later"})
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
			out = cdr.ArrayElements(body)
		}
		if len(out) > max {
			return nil, false, fmt.Errorf("%w: %d, the limit is %d", errTooMany, len(out), max)
		}
		return out, true, nil
	}
	out, err := splitDecoded(body, max)
	return out, false, err
}

// splitDecoded splits what jsonvalid.Valid refused as a whole: NDJSON, or
// malformed input whose error the decoder reports.
func splitDecoded(body []byte, max int) ([]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var out []json.RawMessage
	if body[0] == '[' {
		if err := dec.Decode(&out); err != nil {
			return nil, fmt.Errorf("malformed JSON array: %w", err)
		}
		if dec.More() {
			return nil, errors.New("data after the JSON array")
		}
		if len(out) > max {
			return nil, fmt.Errorf("%w: %d, the limit is %d", errTooMany, len(out), max)
		}
		return out, nil
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("record %d: malformed JSON: %w", len(out), err)
		}
		if len(out) == max {
			return nil, fmt.Errorf("%w: more than %d", errTooMany, max)
		}
		out = append(out, raw)
	}
	return out, nil
}
