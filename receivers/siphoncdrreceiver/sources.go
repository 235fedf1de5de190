package siphoncdrreceiver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/siphon-otel/siphon-otel/internal/streamserver"
)

// sources is an allow-list of source networks (allowed_sources); empty
// allows every source.
type sources []netip.Prefix

// parseSources reads CIDRs and single addresses.
func parseSources(list []string) (sources, error) {
	var out sources
	var errs []error
	for _, s := range list {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("%q is neither a CIDR nor an IP address", s))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		// peers are compared unmapped: ::ffff:10.0.0.0/104 is 10.0.0.0/8
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}

func (s sources) allows(a netip.Addr) bool {
	if len(s) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range s {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrOf is the IP address of a connection's peer.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr()
}

// guardedListener resets, as they are accepted, the connections from
// outside allowed (each is told to refuse), and hands the others on through
// wrap, if set.
type guardedListener struct {
	net.Listener
	allowed sources
	refuse  func(peer net.Addr)
	wrap    func(net.Conn) net.Conn
}

func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.allowed.allows(addrOf(c.RemoteAddr())) {
			l.refuse(c.RemoteAddr())
			// a reset: a sender that writes without reading learns it at
			// its next write, not never
			streamserver.Abort(c)
			_ = c.Close()
			continue
		}
		if l.wrap != nil {
			c = l.wrap(c)
		}
		return c, nil
	}
}
