package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/jaegerapi"
	"github.com/siphon-otel/siphon-otel/internal/record"
)

// The demo's call traces: the shipped config writes them to its span file
// (traces.jsonl in the collector's state dir); when a Jaeger binary is
// there (`make jaeger`; the demo never builds it), the demo runs it and
// the collector sends them there too.

// tracesOverlay is the demo's overlay on config.yaml: sipcall's spans leave
// 2 s after their transaction or call ended (the shipped 32 s covers late
// retransmissions on a real network; a demo wants its first call soon),
// and with Jaeger the traces go to both outputs.
const tracesOverlay = `connectors:
  sipcall:
    linger: 2s
    cdr_wait: 5s
`

const tracesBothOverlay = `service:
  pipelines:
    traces:
      exporters: [file/traces, otlp_grpc/traces]
`

// spanFile is the shipped config's span file in the demo's state.
func (o Options) spanFile() string { return filepath.Join(o.StateDir, "collector", "traces.jsonl") }

// jaegerQueryURL is the demo's Jaeger query service.
func (o Options) jaegerQueryURL() string { return "http://" + loop(o.Ports.JaegerQuery) }

// startTraces starts Jaeger when the demo has one, writes the overlay, and
// returns the collector's extra arguments and environment.
func (d *Demo) startTraces(ctx context.Context) (args []string, env map[string]string, err error) {
	o := d.opts
	overlay := tracesOverlay
	env = map[string]string{}
	if o.Jaeger != "" {
		if _, err := os.Stat(o.Jaeger); err != nil {
			o.Jaeger = "" // not built: the traces go to the file alone
		} else if o.Jaeger, err = filepath.Abs(o.Jaeger); err != nil { // it runs in its own dir
			return nil, nil, err
		}
	}
	if o.Jaeger != "" {
		p := o.Ports
		dir := filepath.Join(o.StateDir, "jaeger")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, err
		}
		cfg := filepath.Join(dir, "jaeger.yaml")
		if err := os.WriteFile(cfg, []byte(jaegerapi.Config(loop(p.JaegerQuery), loop(p.JaegerQueryGRPC), loop(p.JaegerOTLP), loop(p.JaegerOTLPHTTP))), 0o644); err != nil {
			return nil, nil, err
		}
		d.jaeger, err = start(ctx, childproc.Spec{Name: "jaeger", Path: o.Jaeger, Args: []string{"--config", cfg}, Dir: dir,
			Log: filepath.Join(o.StateDir, "jaeger.log")}, childproc.HTTPOK(o.jaegerQueryURL()+"/api/services"))
		if err != nil {
			return nil, nil, err
		}
		overlay += tracesBothOverlay
		env["SIPHON_TRACES_ENDPOINT"] = loop(p.JaegerOTLP)
	}
	path := filepath.Join(o.StateDir, "traces-overlay.yaml")
	if err := os.WriteFile(path, []byte("# written by siphon-demo\n"+overlay), 0o644); err != nil {
		return nil, nil, err
	}
	return []string{"--config", path}, env, nil
}

// Sample is a call the demo made, and the commands that draw it.
type Sample struct {
	CallID, TraceID string
	// FileCommand draws it from the span file, JaegerCommand from Jaeger
	// ("" without Jaeger).
	FileCommand, JaegerCommand string
}

// errNoSample is the span file without an answered call yet.
var errNoSample = errors.New("no answered call in the span file yet")

// SampleCall returns the first answered call whose root span is in the
// span file, with the sipladder commands that draw its ladder (ladder:
// the sipladder binary as the user runs it).
func (d *Demo) SampleCall(ladder string) (Sample, error) {
	f, err := os.Open(d.opts.spanFile())
	if err != nil {
		return Sample{}, errNoSample
	}
	defer f.Close()
	var un ptrace.JSONUnmarshaler
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		td, err := un.UnmarshalTraces(sc.Bytes())
		if err != nil {
			continue // a line being written
		}
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					res, _ := sp.Attributes().Get(record.AttrSIPCallResult)
					callID, _ := sp.Attributes().Get(record.AttrSIPCallID)
					if sp.ParentSpanID().IsEmpty() && res.Str() == calltrace.ResultAnswered && callID.Str() != "" {
						return d.sample(ladder, callID.Str(), sp.TraceID().String()), nil
					}
				}
			}
		}
	}
	return Sample{}, errNoSample
}

func (d *Demo) sample(ladder, callID, traceID string) Sample {
	s := Sample{CallID: callID, TraceID: traceID,
		FileCommand: fmt.Sprintf("%s --file %s %s", quote(ladder), quote(d.opts.spanFile()), quote(callID))}
	if d.jaeger != nil {
		s.JaegerCommand = fmt.Sprintf("%s --jaeger %s %s", quote(ladder), d.opts.jaegerQueryURL(), traceID)
	}
	return s
}

// quote quotes s for a POSIX shell when it needs it.
func quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@=+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// TracesWhere is where the call traces are, for the banner.
func (d *Demo) TracesWhere() [][2]string {
	w := [][2]string{{"call traces (OTLP JSON lines)", d.opts.spanFile()}}
	if d.jaeger != nil {
		w = append(w, [2]string{"call traces in Jaeger (query API)", d.opts.jaegerQueryURL() + "/api/traces?service=siphon"})
	}
	return w
}
