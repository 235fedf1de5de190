// Command sipproxy is a SIP proxy and registrar whose telemetry is
// byte-compatible with SIPhon's: metrics, admin API, CDRs and HEP.
//
//	sipproxy -config /etc/sipproxy/siphon.yaml
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/siphon-otel/siphon-otel/proxy/app"
	"github.com/siphon-otel/siphon-otel/proxy/config"
)

func main() {
	path := flag.String("config", "siphon.yaml", "configuration file (SIPhon's keys)")
	check := flag.Bool("check", false, "validate the configuration and exit")
	level := flag.String("log-level", "info", "debug, info, warn or error")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(os.Stderr, "sipproxy: -log-level:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	slog.SetDefault(log) // sipgo logs some warnings through the default logger
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sipproxy:", err)
		os.Exit(2)
	}
	if *check {
		fmt.Println("sipproxy: configuration OK")
		return
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sipproxy: -cpuprofile:", err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "sipproxy: -cpuprofile:", err)
			os.Exit(2)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if err := app.Run(cfg, log, app.Options{}); err != nil {
		log.Error("sipproxy stopped", "error", err)
		os.Exit(1)
	}
}
