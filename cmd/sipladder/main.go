// Command sipladder draws one SIP call as a ladder in the terminal, the way
// sngrep does, from the trace otelcol-siphon's sipcall connector made of it
// (docs/call-traces.md): one column per network address (named by the
// capturing node where it is one), one arrow per message in capture order
// with its time, method or code, retransmissions marked, the transaction
// each belongs to; the call's Call-IDs (a B2BUA's legs), trace id, outcome
// and duration above.
//
// The spans come from a Jaeger query service or from a span file (the
// shipped config's traces.jsonl: OTLP JSON lines), the call by trace id or
// by Call-ID:
//
//	sipladder --file .state/traces.jsonl 3-1234@127.0.0.1
//	sipladder --jaeger http://127.0.0.1:16686 34c29e66d7c6ef73cdf213f5a9d7f496
//
// Exit codes: 0 drawn, 1 no such call, 2 usage, 3 the source failed
// (Jaeger unreachable, file unreadable or not OTLP JSON, nothing to draw).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The exit codes.
const (
	exitOK       = 0
	exitNotFound = 1
	exitUsage    = 2
	exitSource   = 3
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// traceIDRE is how a trace id is told from a Call-ID.
var traceIDRE = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sipladder", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		jaegerURL = fs.String("jaeger", "", "Jaeger query service, e.g. http://127.0.0.1:16686")
		file      = fs.String("file", "", "span file: OTLP JSON lines as the file exporter writes them (traces.jsonl)")
		traceID   = fs.String("trace", "", "the call's trace id (32 hex digits)")
		callID    = fs.String("call-id", "", "a Call-ID of the call (any leg)")
		width     = fs.Int("width", 0, "columns to fit (default: the terminal's, else 80)")
		colorFlag = fs.String("color", "auto", "auto (when writing to a terminal), always or never")
		tree      = fs.Bool("tree", false, "print the span tree instead of the ladder")
		lookback  = fs.Duration("lookback", 48*time.Hour, "how far back a Call-ID is searched in Jaeger")
		timeout   = fs.Duration("timeout", 30*time.Second, "bound on reading the source")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sipladder (--jaeger URL | --file traces.jsonl) [flags] (TRACE-ID | CALL-ID | --trace ID | --call-id ID)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "sipladder: "+format+"\n", a...)
		fs.Usage()
		return exitUsage
	}
	q := query{traceID: strings.ToLower(*traceID), callID: *callID}
	switch {
	case fs.NArg() > 1:
		return usage("one call at a time, got %q", fs.Args())
	case fs.NArg() == 1 && (q.traceID != "" || q.callID != ""):
		return usage("give the call once: %q and a --trace or --call-id", fs.Arg(0))
	case fs.NArg() == 1 && traceIDRE.MatchString(fs.Arg(0)):
		q.traceID = strings.ToLower(fs.Arg(0))
	case fs.NArg() == 1:
		q.callID = fs.Arg(0)
	}
	if q.traceID == "" && q.callID == "" || q.traceID != "" && q.callID != "" {
		return usage("name the call: a trace id or a Call-ID")
	}
	if q.traceID != "" && !traceIDRE.MatchString(q.traceID) {
		return usage("trace id %q is not 32 hex digits", q.traceID)
	}
	if (*jaegerURL == "") == (*file == "") {
		return usage("read the spans from one source: --jaeger or --file")
	}
	if *jaegerURL != "" && !strings.HasPrefix(*jaegerURL, "http://") && !strings.HasPrefix(*jaegerURL, "https://") {
		return usage("--jaeger %q: an http:// or https:// URL", *jaegerURL)
	}
	var color bool
	switch *colorFlag {
	case "always":
		color = true
	case "never":
	case "auto":
		color = terminal(stdout) && os.Getenv("NO_COLOR") == ""
	default:
		return usage("--color %q: auto, always or never", *colorFlag)
	}
	if *width == 0 {
		*width = termWidth(stdout)
	}
	if *width < 40 {
		return usage("--width %d: at least 40", *width)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var (
		f   found
		err error
	)
	if *jaegerURL != "" {
		f, err = fromJaeger(ctx, *jaegerURL, q, *lookback)
	} else {
		f, err = fromFile(*file, q)
	}
	if err != nil {
		fmt.Fprintln(stderr, "sipladder:", err)
		if errors.Is(err, errNotFound) {
			return exitNotFound
		}
		return exitSource
	}
	if *tree {
		fmt.Fprint(stdout, f.trace.Tree())
		return exitOK
	}
	l, err := layout(f)
	if err != nil {
		fmt.Fprintln(stderr, "sipladder:", err)
		return exitSource
	}
	fmt.Fprint(stdout, draw(l, *width, color))
	return exitOK
}

// terminal tells whether w is a terminal.
func terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	return err == nil
}

// termWidth is the terminal's width, else $COLUMNS, else 80.
func termWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			return int(ws.Col)
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}
