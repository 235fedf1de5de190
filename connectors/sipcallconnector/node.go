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
	fixed map[string]struct{} // nodes[].addresses
	addrs map[string]struct{} // learned: "ip" and "ip:port" (calltrace.Endpoint's form)
}

// learn records an address of the node: the IP, and with its port when
// the request arrived and left on the same one (UDP; a TCP connection's
// port is the peer's choice).
func (n *node) learn(e endpoint, withPort bool) {
	n.add(e.addr)
	if withPort && e.port > 0 {
		n.add(e.String())
	}
}

func (n *node) add(a string) {
	if n.addrs == nil {
		n.addrs = map[string]struct{}{}
	}
	if len(n.addrs) < maxNodeAddresses {
		n.addrs[a] = struct{}{}
	}
}

func (n *node) has(a string) bool {
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
	s, d := n.has(src.String()), n.has(dst.String())
	if s == d {
		s, d = n.has(src.addr), n.has(dst.addr)
	}
	switch {
	case s && !d:
		return ptrace.SpanKindClient
	case d && !s:
		return ptrace.SpanKindServer
	}
	return ptrace.SpanKindInternal
}
