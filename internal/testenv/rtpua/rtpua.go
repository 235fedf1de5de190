// Package rtpua places calls with media for tests: the demo's call
// generator (demo/callgen) on a loopback port, registered with a proxy,
// calling its own callees through it one call at a time, both ends
// sending and receiving RTP and RTCP on internal/rtpua endpoints.
package rtpua

import (
	"context"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/demo/callgen"
)

// Phones is a caller and its callees behind one user agent.
type Phones struct {
	t testing.TB
	g *callgen.Generator
}

// stopWait bounds the hangup of calls still up when the test ends.
const stopWait = 20 * time.Second

// Start registers the callees with the proxy (a UDP address) and returns
// the phones, which hang up and close when the test ends. Ring is the
// ringing before a callee answers.
func Start(t testing.TB, proxy string, ring time.Duration, media callgen.Media) *Phones {
	t.Helper()
	g, err := callgen.Start(context.Background(), callgen.Config{Proxy: proxy, Listen: "127.0.0.1:0", Ring: ring, Media: &media})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopWait)
		defer cancel()
		if err := g.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return &Phones{t: t, g: g}
}

// Addr is the phones' SIP address (host:port), where the proxy sends
// the callees' INVITEs.
func (p *Phones) Addr() string { return p.g.Addr() }

// Call places one call and waits for its end. It fails the test unless
// the call was answered and both ends handed over their media figures.
func (p *Phones) Call(opts callgen.CallOptions) callgen.CallResult {
	p.t.Helper()
	res, err := p.g.Call(context.Background(), opts)
	if err != nil {
		p.t.Fatalf("call %s: %v", res.CallID, err)
	}
	if res.Status != 200 || res.Caller == nil || res.Callee == nil {
		p.t.Fatalf("call %s to %s: status %d, caller's media %t, callee's %t", res.CallID, opts.To, res.Status,
			res.Caller != nil, res.Callee != nil)
	}
	return res
}
