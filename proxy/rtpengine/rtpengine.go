// Package rtpengine speaks RTPEngine's NG control protocol (bencode over
// UDP, "<cookie> <dictionary>"): a bencode codec, a Client that sends a
// call's offer, answer and delete to one of several instances with
// failover, and the ping Checker behind the health gauges.
package rtpengine

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// Ping sends one NG ping to addr and waits for the pong.
func Ping(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("rtpengine %s: %w", addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	cookie := newCookie()
	dgram, err := encodeRequest(cookie, Dict{"command": "ping"})
	if err != nil {
		return err
	}
	if _, err := c.Write(dgram); err != nil {
		return fmt.Errorf("rtpengine %s: %w", addr, err)
	}
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("rtpengine %s: %w", addr, err)
		}
		got, reply, err := ParseDatagram(buf[:n])
		if got != cookie {
			continue // a late answer to an earlier ping
		}
		if err == nil {
			err = checkResult(reply, "pong")
		}
		if err != nil {
			return fmt.Errorf("rtpengine %s: unexpected reply: %w", addr, err)
		}
		return nil
	}
}

// Checker pings every instance on an interval and reports their health.
type Checker struct {
	Instances []string
	Interval  time.Duration
	Timeout   time.Duration
	// Report is called after each round with each instance's health.
	Report func(up map[string]bool)

	mu   sync.Mutex
	last map[string]bool
}

// Run checks until ctx ends.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		c.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Checker) round(ctx context.Context) {
	up := make(map[string]bool, len(c.Instances))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, addr := range c.Instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, c.Timeout)
			defer cancel()
			err := Ping(pctx, addr)
			mu.Lock()
			up[addr] = err == nil
			mu.Unlock()
		}()
	}
	wg.Wait()
	c.mu.Lock()
	c.last = up
	c.mu.Unlock()
	c.Report(up)
}

// Last returns the latest round's results.
func (c *Checker) Last() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]bool, len(c.last))
	for k, v := range c.last {
		out[k] = v
	}
	return out
}
