package sipcallconnector

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// node is a capturing node (a resource's service.instance.id): the resource
// its transaction spans go under, and its own addresses, configured and
// learned, that tell a request it received from one it sent.
type node struct {
	name  string
	res   pcommon.Resource
	fixed map[endpoint]struct{} // nodes[].addresses
	addrs map[endpoint]struct{} // learned; port 0: the address alone
}

// learn records an address of the node: the IP, and with its port when
// the request arrived and left on the same one (UDP; a TCP connection's
// port is the peer's choice).
func (n *node) learn(e endpoint, withPort bool) {
	n.add(endpoint{addr: e.addr})
	if withPort && e.port > 0 {
		n.add(e)
	}
}

func (n *node) add(a endpoint) {
	if n.addrs == nil {
		n.addrs = map[endpoint]struct{}{}
	}
	if len(n.addrs) < maxNodeAddresses {
		n.addrs[a] = struct{}{}
	}
}

func (n *node) has(a endpoint) bool {
	if _, ok := n.fixed[a]; ok {
		return true
	}
	_, ok := n.addrs[a]
	return ok
}

// kind is SERVER for a request that arrived at the node, CLIENT for one it
// sent, INTERNAL when its own addresses cannot tell: address and port
// first, the address alone when both or neither end matched.
func (n *node) kind(src, dst endpoint) ptrace.SpanKind {
	s, d := src.port > 0 && n.has(src), dst.port > 0 && n.has(dst)
	if s == d {
		s, d = n.has(endpoint{addr: src.addr}), n.has(endpoint{addr: dst.addr})
	}
	switch {
	case s && !d:
		return ptrace.SpanKindClient
	case d && !s:
		return ptrace.SpanKindServer
	}
	return ptrace.SpanKindInternal
}
