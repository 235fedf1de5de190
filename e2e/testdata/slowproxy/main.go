// Command slowproxy is sipproxy with a slow routing handler for one user,
// written with the proxy's Go API (app.Options.Wrap) the way an operator
// would add code: the fault test uses it to saturate the handler pool.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/siphon-otel/siphon-otel/proxy/app"
	"github.com/siphon-otel/siphon-otel/proxy/config"
	"github.com/siphon-otel/siphon-otel/proxy/core"
)

func main() {
	path := flag.String("config", "siphon.yaml", "configuration file")
	user := flag.String("slow-user", "slow", "requests to this user are routed slowly")
	delay := flag.Duration("slow-for", 2*time.Second, "how long the routing of such a request takes")
	flag.Parse()
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "slowproxy:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slow := func(next core.Handler) core.Handler {
		return core.HandlerFunc(func(ctx context.Context, r *core.Request) core.Decision {
			if r.Recipient.User == *user {
				select { // a slow database or HTTP lookup
				case <-time.After(*delay):
				case <-ctx.Done():
				}
			}
			return next.OnRequest(ctx, r)
		})
	}
	if err := app.Run(cfg, log, app.Options{Wrap: slow}); err != nil {
		log.Error("slowproxy stopped", "error", err)
		os.Exit(1)
	}
}
