package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/siphon-otel/siphon-otel/internal/jaegerapi"
	"github.com/siphon-otel/siphon-otel/internal/record"
)

// errNotFound is a trace or Call-ID the source does not have.
var errNotFound = errors.New("not found")

// query is what to draw: a trace id, or a Call-ID whose trace is wanted.
type query struct {
	traceID string // lower-case hex
	callID  string
}

func (q query) String() string {
	if q.traceID != "" {
		return "trace " + q.traceID
	}
	return "Call-ID " + q.callID
}

// found is the trace a query found, and how many other traces matched a
// Call-ID (a REGISTER refreshed with one Call-ID is a trace each time).
type found struct {
	trace  jaegerapi.Trace
	others []string // trace ids
}

// pick chooses among the traces of a Call-ID: the latest, the others
// named, so that the header can say so.
func pick(q query, traces []jaegerapi.Trace) (found, error) {
	if len(traces) == 0 {
		return found{}, fmt.Errorf("%s: %w", q, errNotFound)
	}
	sort.SliceStable(traces, func(i, j int) bool { return first(traces[i]).Before(first(traces[j])) })
	f := found{trace: traces[len(traces)-1]}
	for _, tr := range traces[:len(traces)-1] {
		f.others = append(f.others, tr.ID)
	}
	return f, nil
}

func first(tr jaegerapi.Trace) time.Time {
	var t time.Time
	for _, s := range tr.Spans {
		if t.IsZero() || s.Start.Before(t) {
			t = s.Start
		}
	}
	return t
}

// fromJaeger reads the trace from a Jaeger query service: by id, or by a
// tag search on sip.call_id (every span of a call carries its leg's
// Call-ID, the root the caller's) in every service Jaeger knows.
func fromJaeger(ctx context.Context, url string, q query, lookback time.Duration) (found, error) {
	c := &jaegerapi.Client{QueryURL: strings.TrimRight(url, "/")}
	if q.traceID != "" {
		tr, err := c.Trace(ctx, q.traceID)
		if errors.Is(err, jaegerapi.ErrNotFound) {
			return found{}, fmt.Errorf("%s in Jaeger at %s: %w", q, url, errNotFound)
		}
		if err != nil {
			return found{}, err
		}
		return found{trace: tr}, nil
	}
	services, err := c.Services(ctx)
	if err != nil {
		return found{}, err
	}
	byID := map[string]jaegerapi.Trace{}
	for _, svc := range services {
		trs, err := c.Search(ctx, svc, map[string]string{record.AttrSIPCallID: q.callID}, lookback, searchLimit)
		if err != nil {
			return found{}, err
		}
		for _, tr := range trs {
			byID[tr.ID] = tr
		}
	}
	var traces []jaegerapi.Trace
	for _, tr := range byID {
		traces = append(traces, tr)
	}
	f, err := pick(q, traces)
	if err != nil {
		return f, fmt.Errorf("%s in Jaeger at %s (last %v): %w", q, url, lookback, errNotFound)
	}
	return f, nil
}

// searchLimit bounds the traces of one Call-ID read from Jaeger.
const searchLimit = 20

// maxLine bounds one line of a span file: the file exporter writes a batch
// of spans a line.
const maxLine = 64 << 20

// fromFile reads the trace from a span file: OTLP JSON, a batch a line, as
// the collector's file exporter writes it. A call's spans leave over time,
// so they are spread over many lines; a span written twice counts once.
func fromFile(path string, q query) (found, error) {
	f, err := os.Open(path)
	if err != nil {
		return found{}, fmt.Errorf("span file: %w", err)
	}
	defer f.Close()
	var (
		un     ptrace.JSONUnmarshaler
		spans  = map[string][]jaegerapi.Span{} // by trace id
		seen   = map[string]bool{}             // trace id + span id
		traces = map[string]bool{}             // of the Call-ID
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), maxLine)
	for n := 1; sc.Scan(); n++ {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		td, err := un.UnmarshalTraces(sc.Bytes())
		if err != nil {
			return found{}, fmt.Errorf("span file %s line %d: not OTLP JSON: %w", path, n, err)
		}
		for _, s := range convert(td) {
			if q.traceID != "" && s.TraceID != q.traceID {
				continue
			}
			if q.callID != "" && s.Tags[record.AttrSIPCallID] == q.callID {
				traces[s.TraceID] = true
			}
			if seen[s.TraceID+s.SpanID] {
				continue
			}
			seen[s.TraceID+s.SpanID] = true
			spans[s.TraceID] = append(spans[s.TraceID], s)
		}
	}
	if err := sc.Err(); err != nil {
		return found{}, fmt.Errorf("span file %s: %w", path, err)
	}
	if q.traceID != "" {
		traces[q.traceID] = true
	}
	var trs []jaegerapi.Trace
	for id := range traces {
		if len(spans[id]) > 0 {
			trs = append(trs, jaegerapi.NewTrace(id, spans[id]))
		}
	}
	fd, err := pick(q, trs)
	if err != nil {
		return fd, fmt.Errorf("%s in %s: %w", q, path, errNotFound)
	}
	return fd, nil
}

// convert turns OTLP spans into the query API's model, as Jaeger stores
// them: the kind, the status as otel.status_* tags, each event's name as
// its "event" field, the resource's service.name as the service.
func convert(td ptrace.Traces) []jaegerapi.Span {
	var out []jaegerapi.Span
	for _, rs := range td.ResourceSpans().All() {
		res := rs.Resource().Attributes().AsRaw()
		svc, _ := res[record.AttrServiceName].(string)
		delete(res, record.AttrServiceName)
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				s := jaegerapi.Span{TraceID: sp.TraceID().String(), SpanID: sp.SpanID().String(), Name: sp.Name(),
					Kind: strings.ToLower(strings.TrimPrefix(sp.Kind().String(), "Span Kind: ")), Start: sp.StartTimestamp().AsTime(),
					Duration: sp.EndTimestamp().AsTime().Sub(sp.StartTimestamp().AsTime()), Tags: sp.Attributes().AsRaw(),
					Service: svc, Resource: res}
				if p := sp.ParentSpanID(); !p.IsEmpty() {
					s.ParentID = p.String()
				}
				switch sp.Status().Code() {
				case ptrace.StatusCodeError:
					s.Tags["otel.status_code"] = "ERROR"
					if m := sp.Status().Message(); m != "" {
						s.Tags["otel.status_description"] = m
					}
				case ptrace.StatusCodeOk:
					s.Tags["otel.status_code"] = "OK"
				}
				for _, ev := range sp.Events().All() {
					fields := ev.Attributes().AsRaw()
					fields["event"] = ev.Name()
					s.Logs = append(s.Logs, jaegerapi.Log{At: ev.Timestamp().AsTime(), Fields: fields})
				}
				out = append(out, s)
			}
		}
	}
	return out
}
