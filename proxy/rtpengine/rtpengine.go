// Package rtpengine checks RTPEngine instances with the NG control
// protocol's ping (bencode over UDP: "<cookie> d7:command4:pinge", answered
// by "<cookie> d6:result4:ponge").
package rtpengine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	cookie := hex.EncodeToString(raw[:])
	if _, err := c.Write([]byte(cookie + " d7:command4:pinge")); err != nil {
		return fmt.Errorf("rtpengine %s: %w", addr, err)
	}
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("rtpengine %s: %w", addr, err)
		}
		reply := buf[:n]
		got, body, ok := bytes.Cut(reply, []byte(" "))
		if !ok || string(got) != cookie {
			continue // a late answer to an earlier ping
		}
		if !bytes.Equal(body, []byte("d6:result4:ponge")) {
			return fmt.Errorf("rtpengine %s: unexpected reply %q", addr, body)
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
