// Command siphon-demo runs the appliance on loopback for a first look (`make
// run`): sipproxy, otelcol-siphon on its default config, a Homer stand-in
// and a call generator, with a live status line until Ctrl-C.
//
// With -fleet it runs otelcol-siphon on distro/siphon-fleet.yaml for a real
// SIPhon fleet instead (configured by the SIPHON_* variables of that file)
// and shows the same status for what the fleet sends.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/siphon-otel/siphon-otel/demo"
	"github.com/siphon-otel/siphon-otel/distro"
	"github.com/siphon-otel/siphon-otel/internal/childproc"
)

func main() {
	var (
		collector = flag.String("collector", "distro/_build/otelcol-siphon", "otelcol-siphon binary")
		proxy     = flag.String("proxy", "bin/sipproxy", "sipproxy binary")
		state     = flag.String("state", ".state/demo", "directory for configs, logs, CDR and SIP files")
		rate      = flag.Float64("rate", 5, "calls started per second")
		hold      = flag.Duration("hold", 8*time.Second, "talk time of answered calls (+-50%)")
		fleet     = flag.Bool("fleet", false, "run otelcol-siphon on siphon:siphon-fleet.yaml for a real SIPhon fleet, no demo proxy or calls")
		every     = flag.Duration("status", 2*time.Second, "status line interval")
		duration  = flag.Duration("duration", 0, "stop by itself after this long (0: run until Ctrl-C)")
		engine    = flag.String("rtpengine", "", "rtpengine-daemon binary anchoring the calls' media (default: rtpengine in PATH, when installed; \""+demo.NoRTPEngine+"\": no media)")
		jaegerBin = flag.String("jaeger", ".tools/bin/jaeger", "jaeger binary (`make jaeger`): when it exists, the call traces go there too")
		ladder    = flag.String("ladder", "bin/sipladder", "sipladder binary, for the command that draws a call")
	)
	flag.Parse()
	// sipgo logs through the default logger; its chatter is not the demo's
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if *fleet {
		os.Exit(runFleet(ctx, *collector))
	}
	state2, err := filepath.Abs(*state)
	if err != nil {
		fail(err)
	}
	fmt.Println("siphon-demo: starting otelcol-siphon, sipproxy and the call generator on 127.0.0.1 ...")
	d, err := demo.Start(ctx, demo.Options{Collector: *collector, Proxy: *proxy, StateDir: state2,
		Ports: demo.DefaultPorts, Rate: *rate, Hold: *hold, RTPEngine: *engine, Jaeger: *jaegerBin,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		fail(err)
	}
	fmt.Println("\nWhere to look:")
	for _, w := range append(d.Where(), d.TracesWhere()...) {
		fmt.Printf("  %-42s %s\n", w[0], w[1])
	}
	if len(d.TracesWhere()) == 1 {
		fmt.Println("  (`make jaeger` once, and the next `make run` sends the call traces to Jaeger too)")
	}
	fmt.Printf("\nPlacing %.1f calls/s (answered, busy, cancelled, failed, not found). Ctrl-C stops everything cleanly.\n\n", *rate)
	t := time.NewTicker(*every)
	defer t.Stop()
	var lastPlaced int64
	sampled := false
	last := time.Now()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-t.C:
			s := d.Status()
			cps := float64(s.Placed-lastPlaced) / now.Sub(last).Seconds()
			lastPlaced, last = s.Placed, now
			fmt.Printf("\r\033[K%.1f calls/s | %s", cps, s)
			if !sampled {
				sampled = printSample(d, *ladder)
			}
		}
	}
	fmt.Println("\n\nsiphon-demo: hanging up, draining sipproxy and otelcol-siphon ...")
	if err := d.Stop(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "siphon-demo:", err)
	}
	f := d.Final()
	fmt.Printf("%d calls placed (%d answered, %d busy, %d cancelled, %d failed, %d not found, %d errors); %d CDRs written (calls and REGISTERs), %.0f calls in the KPIs, %d HEP packets sent to Homer, %.0f drops.\n",
		f.Placed, f.Answered, f.Busy, f.Cancelled, f.Failed, f.NotFound, f.Errors, f.CDRs, f.KPICalls, f.HEPToHomer, f.Drops)
	printMedia(f.Media)
	fmt.Println("siphon-demo: stopped.")
}

// runFleet runs the collector in the foreground on the fleet config until
// it exits or ctx ends (Ctrl-C), then stops it with SIGTERM.
func runFleet(ctx context.Context, collector string) int {
	fmt.Println("siphon-demo: otelcol-siphon on siphon:siphon-fleet.yaml (see distro/siphon-fleet.yaml for its SIPHON_* settings); Ctrl-C stops it")
	p, err := childproc.Start(childproc.Spec{Name: "otelcol-siphon", Path: collector,
		Args: []string{distro.HealthGate, "--config", "siphon:siphon-fleet.yaml"}, Output: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "siphon-demo:", err)
		return 1
	}
	select {
	case <-p.Done():
		err = p.Err()
	case <-ctx.Done():
		err = p.Stop(time.Minute)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "siphon-demo:", err)
		return 1
	}
	return 0
}

// printMedia is the summary's media quality line.
func printMedia(m demo.MediaStatus) {
	if !m.On {
		fmt.Println("No media quality figures: rtpengine was not in the media path (see the banner).")
		return
	}
	fmt.Printf("Media quality from rtpengine's RTCP: %s (a third of the answered calls went through a network losing %.0f %% and jittering up to %s).\n",
		m, 100*demo.DemoImpairment.LossRatio, demo.DemoImpairment.JitterSpread)
}

// printSample prints the first answered call whose trace is in the span
// file and the commands that draw its ladder; false while there is none.
func printSample(d *demo.Demo, ladder string) bool {
	s, err := d.SampleCall(ladder)
	if err != nil {
		return false
	}
	fmt.Printf("\r\033[K\nA call as a trace: Call-ID %s, trace id %s. Its ladder:\n  %s\n", s.CallID, s.TraceID, s.FileCommand)
	if s.JaegerCommand != "" {
		fmt.Printf("  %s\n", s.JaegerCommand)
	}
	fmt.Println()
	return true
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "siphon-demo:", err)
	os.Exit(1)
}
