package core

import (
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// maxUDPRequest is RFC 3261 18.1.1's bound: a request larger than 1300
// bytes (the path MTU being unknown) goes over a congestion-controlled
// transport. sipgo v1.7.2 does not switch (sip/transport_layer.go leaves
// it a TODO); it refuses to write any UDP message larger than
// sip.UDPMTUSize-200 instead, answers included, which New lifts: the
// proxy switches requests itself (outgoing), and responses, for which the
// RFC has no such rule (18.2.2), go over UDP whatever their size, up to
// the 65,535 bytes every implementation must take.
const maxUDPRequest = 1300

// maxDatagram is the largest SIP message over UDP (RFC 3261 18.1.1).
const maxDatagram = 65535

// outgoing builds the copies of req that carry it to t, each ready to
// send (opts applied, the Request-URI set to t's unless inDialog), in the
// order to try them: over t's transport, or, for a UDP target and a
// request too large for UDP, over TCP first and UDP after, for a next hop
// that takes no TCP. RFC 3261 18 has every element take both, but a UA
// behind NAT often cannot be reached over TCP: a next hop that took no
// TCP connection (within largeDialTimeout) is sent large requests over
// UDP for noTCPFor without trying again.
func (p *Proxy) outgoing(req *sip.Request, t Target, inDialog bool, opts []sipgo.ClientRequestOption) ([]*sip.Request, error) {
	build := func(transport string, timeout time.Duration) (*sip.Request, error) {
		fwd := req.Clone()
		if !inDialog {
			fwd.Recipient = t.URI
			fwd.Recipient.UriParams = t.URI.UriParams.Clone()
		}
		if err := p.prepareDial(fwd, t.URI, transport, timeout); err != nil {
			return nil, err
		}
		for _, o := range opts {
			if err := o(p.client, fwd); err != nil {
				return nil, err
			}
		}
		return fwd, nil
	}
	fwd, err := build(t.Transport, dialTimeout)
	if err != nil {
		return nil, err
	}
	if t.Transport != "udp" || p.ports["tcp"] == 0 || len(fwd.String()) <= maxUDPRequest {
		return []*sip.Request{fwd}, nil
	}
	dest := hostPort(t.URI, "tcp")
	if p.noTCP.has(dest, time.Now()) {
		return []*sip.Request{fwd}, nil
	}
	big, err := build("tcp", largeDialTimeout)
	if err != nil {
		p.noTCP.add(dest, time.Now())
		p.log.Debug("large request: no TCP to the next hop, over UDP", "method", req.Method, "target", t.URI.String(), "error", err)
		return []*sip.Request{fwd}, nil
	}
	return []*sip.Request{big, fwd}, nil
}

const (
	// largeDialTimeout bounds the wait for a TCP connection to a next
	// hop that may take none (a UA behind NAT drops the SYN).
	largeDialTimeout = 2 * time.Second
	// noTCPFor is how long a next hop that took no TCP connection is
	// sent large requests over UDP without trying TCP again.
	noTCPFor = 10 * time.Minute
	// noTCPMax bounds how many such next hops are remembered.
	noTCPMax = 10_000
)

// hopSet remembers next hops (host:port) for a while.
type hopSet struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (s *hopSet) has(dest string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Before(s.until[dest])
}

// add remembers dest for noTCPFor; when full it first forgets the
// expired, and adds nothing if none were (the hop is then tried again).
func (s *hopSet) add(dest string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.until == nil {
		s.until = map[string]time.Time{}
	}
	if len(s.until) >= noTCPMax {
		for k, t := range s.until {
			if !now.Before(t) {
				delete(s.until, k)
			}
		}
		if len(s.until) >= noTCPMax {
			return
		}
	}
	s.until[dest] = now.Add(noTCPFor)
}

// sendFailed counts a message the proxy could not write (message is
// "request" or "response") and warns, at most every warnEvery.
func (p *Proxy) sendFailed(message string, err error, args ...any) {
	reason := "transport"
	if errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, sip.ErrUDPMTUCongestion) {
		reason = "too_large"
	}
	p.m.SendFailures.WithLabelValues(message, reason).Inc()
	p.warn(&p.sendWarn, "SIP "+message+" not sent", append(args, "reason", reason, "error", err)...)
}

// warnEvery is the least time between two warnings of one kind: what a
// peer can make happen on every message must not flood the log (the
// counters carry the rate).
const warnEvery = 10 * time.Second

// throttle holds back warnings of one kind.
type throttle struct {
	mu   sync.Mutex
	last time.Time
	held int
}

// warn logs msg unless t let one through within warnEvery; the one let
// through says how many were held back since the last.
func (p *Proxy) warn(t *throttle, msg string, args ...any) {
	t.mu.Lock()
	now := time.Now()
	if !t.last.IsZero() && now.Sub(t.last) < warnEvery {
		t.held++
		t.mu.Unlock()
		return
	}
	held := t.held
	t.last, t.held = now, 0
	t.mu.Unlock()
	p.log.Warn(msg, append(args, "held_back", held)...)
}
