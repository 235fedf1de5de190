// Package jaegerapi reads traces back from a Jaeger query service
// (/api/traces, the JSON the Jaeger UI reads), with each span's parent,
// kind, tags, logs (OTLP span events) and times. The tests read Jaeger
// through it (internal/testenv/jaeger), and sipladder draws calls from it.
// Config is the in-memory Jaeger that the tests and the demo run.
package jaegerapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// config is Jaeger v2's configuration for the tests and the demo (an
// OpenTelemetry Collector's, as cmd/jaeger/internal/all-in-one.yaml): OTLP in, straight into memory, the
// query extension reading it. No batch processor, so that a span is
// queryable as soon as it was received; no own metrics listener.
const config = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    # its own traces would go to OTLP on localhost:4317, where another
    # test's collector may listen
    enable_tracing: false
    http:
      endpoint: %q
    grpc:
      endpoint: %q
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %q
      http:
        endpoint: %q
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// Config is the configuration of a Jaeger v2 (cmd/jaeger --config) that
// keeps its traces in memory and listens on the addresses given: its query
// service's HTTP (this client's QueryURL) and gRPC, OTLP over gRPC and HTTP.
func Config(queryHTTP, queryGRPC, otlpGRPC, otlpHTTP string) string {
	return fmt.Sprintf(config, queryHTTP, queryGRPC, otlpGRPC, otlpHTTP)
}

// Client queries one Jaeger query service.
type Client struct {
	QueryURL string // http://host:port of the query service (API and UI)
}

// Span is one span as the query API returns it.
type Span struct {
	TraceID, SpanID string // lower-case hex
	ParentID        string // "" for a root
	Name            string
	Kind            string // server, client, internal (the span.kind tag)
	Start           time.Time
	Duration        time.Duration
	Tags            map[string]any // string, bool, int64 or float64
	Logs            []Log          // the span's events
	Service         string         // its resource's service.name
	Resource        map[string]any // its resource's other attributes
}

// Log is a span event.
type Log struct {
	At     time.Time
	Fields map[string]any // "event": its name, then its attributes
}

// Error tells whether the span's status is an error.
func (s Span) Error() bool { return s.Tags["otel.status_code"] == "ERROR" }

// End is when the span ended.
func (s Span) End() time.Time { return s.Start.Add(s.Duration) }

// Trace is the spans of one trace, ordered by start then name.
type Trace struct {
	ID    string
	Spans []Span
}

// Find returns the spans named name, in order.
func (tr Trace) Find(name string) []Span {
	var out []Span
	for _, s := range tr.Spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Children returns the spans whose parent is id.
func (tr Trace) Children(id string) []Span {
	var out []Span
	for _, s := range tr.Spans {
		if s.ParentID == id {
			out = append(out, s)
		}
	}
	return out
}

// ErrNotFound is a trace the query service does not have.
var ErrNotFound = errors.New("jaeger: trace not found")

var client = &http.Client{Timeout: 10 * time.Second}

// Trace returns a trace by its id (hex) as stored: raw, without the query
// service's adjustments (which would drop a reference to a parent that has
// not arrived yet).
func (s *Client) Trace(ctx context.Context, id string) (Trace, error) {
	var resp responseJSON
	if err := s.get(ctx, "/api/traces/"+url.PathEscape(id), url.Values{"raw": {"true"}}, &resp); err != nil {
		return Trace{}, err
	}
	if len(resp.Data) == 0 {
		return Trace{}, ErrNotFound
	}
	if len(resp.Data) != 1 {
		return Trace{}, fmt.Errorf("jaeger: %d traces for id %s", len(resp.Data), id)
	}
	return resp.Data[0].trace()
}

// Search returns the traces of service whose spans have the tags (each
// trace whole), started within lookback, at most limit.
func (s *Client) Search(ctx context.Context, service string, tags map[string]string, lookback time.Duration, limit int) ([]Trace, error) {
	q := url.Values{"service": {service}, "lookback": {lookback.String()}, "limit": {strconv.Itoa(limit)},
		"start": {strconv.FormatInt(time.Now().Add(-lookback).UnixMicro(), 10)},
		"end":   {strconv.FormatInt(time.Now().Add(time.Minute).UnixMicro(), 10)}, "raw": {"true"}}
	if len(tags) > 0 {
		b, err := json.Marshal(tags)
		if err != nil {
			return nil, err
		}
		q.Set("tags", string(b))
	}
	var resp responseJSON
	if err := s.get(ctx, "/api/traces", q, &resp); err != nil {
		return nil, err
	}
	out := make([]Trace, 0, len(resp.Data))
	for _, d := range resp.Data {
		tr, err := d.trace()
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
	}
	return out, nil
}

// Services returns the services Jaeger has spans of.
func (s *Client) Services(ctx context.Context) ([]string, error) {
	var resp struct {
		Data []string `json:"data"`
	}
	err := s.get(ctx, "/api/services", nil, &resp)
	return resp.Data, err
}

func (s *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	u := s.QueryURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("jaeger: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("jaeger: GET %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jaeger: GET %s: %s: %s", path, resp.Status, b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("jaeger: GET %s: %w (%.200s)", path, err, b)
	}
	return nil
}

// The query API's JSON (Jaeger's UI model).
type (
	responseJSON struct {
		Data   []jsonTrace `json:"data"`
		Errors []struct {
			Msg string `json:"msg"`
		} `json:"errors"`
	}
	jsonTrace struct {
		TraceID   string `json:"traceID"`
		Spans     []jsonSpan
		Processes map[string]struct {
			ServiceName string   `json:"serviceName"`
			Tags        []keyVal `json:"tags"`
		} `json:"processes"`
	}
	jsonSpan struct {
		TraceID       string `json:"traceID"`
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType string `json:"refType"`
			TraceID string `json:"traceID"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		StartTime int64    `json:"startTime"` // µs
		Duration  int64    `json:"duration"`  // µs
		Tags      []keyVal `json:"tags"`
		Logs      []struct {
			Timestamp int64    `json:"timestamp"`
			Fields    []keyVal `json:"fields"`
		} `json:"logs"`
		ProcessID string `json:"processID"`
	}
	keyVal struct {
		Key   string `json:"key"`
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
)

func (d jsonTrace) trace() (Trace, error) {
	tr := Trace{ID: d.TraceID}
	for _, js := range d.Spans {
		sp := Span{TraceID: js.TraceID, SpanID: js.SpanID, Name: js.OperationName,
			Start: time.UnixMicro(js.StartTime), Duration: time.Duration(js.Duration) * time.Microsecond}
		for _, r := range js.References {
			if r.RefType == "CHILD_OF" {
				sp.ParentID = r.SpanID
			}
		}
		var err error
		if sp.Tags, err = values(js.Tags); err != nil {
			return tr, fmt.Errorf("span %s: %w", js.SpanID, err)
		}
		if k, ok := sp.Tags["span.kind"].(string); ok {
			sp.Kind = k
			delete(sp.Tags, "span.kind")
		}
		for _, l := range js.Logs {
			fields, err := values(l.Fields)
			if err != nil {
				return tr, fmt.Errorf("span %s: %w", js.SpanID, err)
			}
			sp.Logs = append(sp.Logs, Log{At: time.UnixMicro(l.Timestamp), Fields: fields})
		}
		p, ok := d.Processes[js.ProcessID]
		if !ok {
			return tr, fmt.Errorf("span %s: no process %q", js.SpanID, js.ProcessID)
		}
		sp.Service = p.ServiceName
		if sp.Resource, err = values(p.Tags); err != nil {
			return tr, fmt.Errorf("process %s: %w", js.ProcessID, err)
		}
		tr.Spans = append(tr.Spans, sp)
	}
	return NewTrace(tr.ID, tr.Spans), nil
}

// NewTrace is the trace of id with spans, ordered as the client orders
// them (by start, then name): for spans read from elsewhere, such as a span
// file.
func NewTrace(id string, spans []Span) Trace {
	sort.SliceStable(spans, func(i, j int) bool {
		a, b := spans[i], spans[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		return a.Name < b.Name
	})
	return Trace{ID: id, Spans: spans}
}

// values turns the typed key-values into Go values.
func values(kvs []keyVal) (map[string]any, error) {
	out := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		switch kv.Type {
		case "string", "binary":
			s, ok := kv.Value.(string)
			if !ok {
				return nil, fmt.Errorf("%s: %s value %v", kv.Key, kv.Type, kv.Value)
			}
			out[kv.Key] = s
		case "bool":
			b, ok := kv.Value.(bool)
			if !ok {
				return nil, fmt.Errorf("%s: bool value %v", kv.Key, kv.Value)
			}
			out[kv.Key] = b
		case "int64":
			n, err := number(kv.Value).Int64()
			if err != nil {
				return nil, fmt.Errorf("%s: int64 value %v: %w", kv.Key, kv.Value, err)
			}
			out[kv.Key] = n
		case "float64":
			f, err := number(kv.Value).Float64()
			if err != nil {
				return nil, fmt.Errorf("%s: float64 value %v: %w", kv.Key, kv.Value, err)
			}
			out[kv.Key] = f
		default:
			return nil, fmt.Errorf("%s: unknown type %q", kv.Key, kv.Type)
		}
	}
	return out, nil
}

func number(v any) json.Number {
	if n, ok := v.(json.Number); ok {
		return n
	}
	return json.Number(fmt.Sprint(v))
}

// Tree draws the trace as its span tree, children in start order: each
// span's name, kind, capturing node (service.instance.id), start after the
// trace's first span and duration; a transaction's hop and events; a call's
// or leg's outcome and setup. Tests log it; the README shows one.
func (tr Trace) Tree() string {
	var b strings.Builder
	var t0 time.Time
	for _, s := range tr.Spans {
		if t0.IsZero() || s.Start.Before(t0) {
			t0 = s.Start
		}
	}
	ids := map[string]bool{}
	for _, s := range tr.Spans {
		ids[s.SpanID] = true
	}
	fmt.Fprintf(&b, "trace %s\n", tr.ID)
	// line is the span's line after its branch; indent is its children's
	var draw func(s Span, line, indent string)
	draw = func(s Span, line, indent string) {
		fmt.Fprintf(&b, "%s%-8s %-8s @%v  +%.3fs  %.3fs", line, s.Name, s.Kind, s.Resource["service.instance.id"],
			s.Start.Sub(t0).Seconds(), s.Duration.Seconds())
		if s.Error() {
			fmt.Fprintf(&b, "  ERROR %v", s.Tags["otel.status_description"])
		}
		if _, ok := s.Tags["sip.cseq.number"]; ok { // a transaction: its hop
			fmt.Fprintf(&b, "  %v:%v -> %v:%v", s.Tags["source.address"], s.Tags["source.port"],
				s.Tags["destination.address"], s.Tags["destination.port"])
		}
		if len(s.Logs) > 0 {
			var evs []string
			for _, l := range s.Logs {
				evs = append(evs, fmt.Sprint(l.Fields["event"]))
			}
			fmt.Fprintf(&b, "  events %s", strings.Join(evs, " "))
		}
		var attrs []string
		for _, k := range []string{"sip.call.result", "sip.response.status_code", "sip.call.post_dial_delay",
			"sip.call.setup_duration", "sip.call.ringing_duration", "sip.call.duration", "sip.call.disconnect_initiator",
			"sip.call.partial", "sip.scanner"} {
			if v, ok := s.Tags[k]; ok && (s.Name == "SIP call" || s.Name == "SIP leg" || k == "sip.scanner") {
				attrs = append(attrs, fmt.Sprintf("%s=%v", strings.TrimPrefix(strings.TrimPrefix(k, "sip.call."), "sip."), v))
			}
		}
		cdr := 0
		for k := range s.Tags {
			if strings.HasPrefix(k, "cdr.") {
				cdr++
			}
		}
		if cdr > 0 {
			attrs = append(attrs, fmt.Sprintf("+%d cdr.* fields", cdr))
		}
		if len(attrs) > 0 {
			fmt.Fprintf(&b, "  %s", strings.Join(attrs, " "))
		}
		b.WriteByte('\n')
		kids := tr.Children(s.SpanID)
		for i, k := range kids {
			if i == len(kids)-1 {
				draw(k, indent+"└── ", indent+"    ")
			} else {
				draw(k, indent+"├── ", indent+"│   ")
			}
		}
	}
	for _, s := range tr.Spans {
		if s.ParentID == "" || !ids[s.ParentID] { // roots, and spans whose parent is not here
			draw(s, "", "")
		}
	}
	return b.String()
}
