package core

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// branchPrefix starts the branch of every Via this proxy adds: RFC 3261's
// magic cookie, then "-sp.", the loop key of the request as received, a
// dot and a serial that tells its forwarded copies apart.
const branchPrefix = sip.RFC3261BranchMagicCookie + "-sp."

// loopKey is the hash RFC 3261 16.6 step 8 puts in the branch for loop
// detection: what routes the request as the proxy received it (the
// Request-URI, the Route set, Proxy-Require, Proxy-Authorization), top
// (its top Via: sent-by and branch, which identify the transaction it
// came in) and the dialog and sequence it belongs to (Call-ID, From and
// To tags, CSeq number). Never the method: a CANCEL carries its INVITE's
// branch. Max-Forwards is left out, as it changes every hop.
func loopKey(req *sip.Request, top *sip.ViaHeader) string {
	h := sha256.New()
	field := func(s string) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	field(req.Recipient.String())
	for _, name := range []string{"Route", "Proxy-Require", "Proxy-Authorization"} {
		for _, v := range req.GetHeaders(name) {
			field(v.Value())
		}
		field(name)
	}
	if top != nil {
		field(strings.ToUpper(top.Transport) + " " + strings.ToLower(top.SentBy()))
		field(top.Params.GetOr("branch", ""))
	}
	if c := req.CallID(); c != nil {
		field(c.Value())
	}
	if f := req.From(); f != nil {
		field(f.Params.GetOr("tag", ""))
	}
	if t := req.To(); t != nil {
		field(t.Params.GetOr("tag", ""))
	}
	if c := req.CSeq(); c != nil {
		field(strconv.FormatUint(uint64(c.SeqNo), 10))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// looped is RFC 3261 16.3 step 4: the request carries a Via this proxy
// added, and the loop key of the request now, with the Via below that one
// on top, is the one in its branch: it came back unchanged, a loop. A
// request that came back changed (another Request-URI, Route set ...) is
// spiralling and goes on; if it comes back again unchanged, that is the
// loop.
func (p *Proxy) looped(req *sip.Request) bool {
	vias := req.GetHeaders("Via")
	for i := 0; i+1 < len(vias); i++ {
		v, ok := vias[i].(*sip.ViaHeader)
		if !ok || !strings.EqualFold(v.Host, p.host) || !p.ourPorts[v.Port] {
			continue
		}
		rest, ok := strings.CutPrefix(v.Params.GetOr("branch", ""), branchPrefix)
		if !ok {
			continue
		}
		key, _, _ := strings.Cut(rest, ".")
		if below, ok := vias[i+1].(*sip.ViaHeader); ok && key == loopKey(req, below) {
			return true
		}
	}
	return false
}

// via adds a proxy's Via (RFC 3261 16.6 step 8): our advertised host and
// the listening port of the outgoing transport, so answers come back to a
// socket we read (sipgo would name the connection's ephemeral port), a
// branch with key (loopKey of the request as received), plus
// received/rport on the previous hop's Via (RFC 3581).
func (p *Proxy) via(key string) sipgo.ClientRequestOption {
	return func(c *sipgo.Client, r *sip.Request) error {
		if err := sipgo.ClientRequestAddVia(c, r); err != nil {
			return err
		}
		via := r.Via()
		via.Host = p.host
		via.Port = p.ports[strings.ToLower(r.Transport())]
		via.Params.Add("branch", branchPrefix+key+"."+strconv.FormatUint(p.serial.Add(1), 36))
		return nil
	}
}

// isOwnAddress reports whether a next hop is one of the proxy's own
// listening addresses: a request sent there comes straight back (a loop,
// or at best a spiral through the network), and over TCP or TLS sipgo
// (v1.7.2) would not even dial it: it files accepted connections under
// their local address too, so the request would go out on the last
// connection a client opened to that listener.
func (p *Proxy) isOwnAddress(u sip.Uri, transport string) bool {
	port := u.Port
	if port == 0 {
		port = sip.DefaultPort(transport)
	}
	if !p.ourPorts[port] {
		return false
	}
	host := strings.ToLower(strings.Trim(u.Host, "[]"))
	if p.ourHosts[host] {
		return true
	}
	// a wildcard listener takes loopback too
	ip := net.ParseIP(host)
	return p.wildcard && (host == "localhost" || ip != nil && ip.IsLoopback())
}
