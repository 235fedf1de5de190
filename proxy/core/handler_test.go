package core

import (
	"context"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/proxy/config"
	"github.com/siphon-otel/siphon-otel/proxy/digest"
	"github.com/siphon-otel/siphon-otel/proxy/registrar"
)

func uri(t *testing.T, s string) sip.Uri {
	t.Helper()
	var u sip.Uri
	require.NoError(t, sip.ParseUri(s, &u))
	return u
}

// TestRouter is the default handler's decision table.
func TestRouter(t *testing.T) {
	reg := registrar.New()
	reg.Update(registrar.AoR("sip:bob@example.com"), []registrar.Binding{
		{URI: "sip:bob@10.0.0.7:5062", Expires: 600, Q: 0.5},
		{URI: "sip:bob@10.0.0.8:5062;transport=tcp", Expires: 600, Q: 1},
	}, "r1", 1, "10.0.0.7:5062", "udp", "")
	reg.Update(registrar.AoR("sip:dave@example.com"), []registrar.Binding{{URI: "sip:dave@10.0.0.9:5062", Expires: 600, Q: 1}},
		"r2", 1, "10.0.0.9:5062", "tcp", "") // registered over TCP
	reg.Update(registrar.AoR("sip:gone@example.com"), []registrar.Binding{{URI: "sip:gone@10.0.0.9", Expires: 60, Q: 1}},
		"r3", 1, "10.0.0.9:5060", "udp", "")
	reg.Update(registrar.AoR("sip:gone@example.com"), []registrar.Binding{{URI: "sip:gone@10.0.0.9", Expires: 0}},
		"r3", 2, "10.0.0.9:5060", "udp", "")
	rt := &Router{
		Reg:  reg,
		Auth: digest.New("example.com", digest.Credentials{"erin": digest.HA1("erin", "example.com", "pw")}),
		Routes: []config.Route{
			{Match: "+49", Targets: []string{"sip:192.0.2.49;transport=tcp", "sip:192.0.2.50"}},
			{Match: "bob", Targets: []string{"sip:192.0.2.99"}}, // never reached: bob's contacts come first
			{Match: "Carrier.Test", Targets: []string{"sip:gw@192.0.2.1:5080"}},
			{Match: "*", Targets: []string{"sips:192.0.2.2"}},
		},
	}
	noDefault := &Router{Reg: reg, Routes: []config.Route{{Match: "carrier.test", Targets: []string{"sip:192.0.2.1"}}}}
	cases := []struct {
		name    string
		rt      *Router
		ruri    string
		local   bool
		status  int      // for Reply
		targets []string // for Forward: URI and transport
	}{
		{"registered contacts, highest q first", rt, "sip:bob@example.com", true, 0,
			[]string{"sip:bob@10.0.0.8:5062;transport=tcp tcp", "sip:bob@10.0.0.7:5062 udp"}},
		{"a contact takes the transport it registered over", rt, "sip:dave@example.com", true, 0,
			[]string{"sip:dave@10.0.0.9:5062 tcp"}},
		{"a local user by prefix route keeps the user", rt, "sip:+4930123@example.com", true, 0,
			[]string{"sip:+4930123@192.0.2.49;transport=tcp tcp", "sip:+4930123@192.0.2.50 udp"}},
		{"a user gone a moment ago", rt, "sip:gone@example.com", true, 480, nil},
		{"a user with credentials", rt, "sip:erin@example.com", true, 480, nil},
		{"an unknown local user", rt, "sip:nobody@example.com", true, 404, nil},
		{"the local domain without a user", rt, "sip:example.com", true, 404, nil},
		{"a domain route, case-insensitive, keeps its own user", rt, "sip:+4930123@carrier.test", false, 0,
			[]string{"sip:gw@192.0.2.1:5080 udp"}},
		{"the default route", rt, "sip:x@elsewhere.test", false, 0, []string{"sips:x@192.0.2.2 tls"}},
		{"no route for the domain", noDefault, "sip:x@elsewhere.test", false, 404, nil},
		{"a foreign domain is not looked up by user prefix", noDefault, "sip:bob@elsewhere.test", false, 404, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &Request{Request: sip.NewRequest(sip.INVITE, uri(t, c.ruri)), Local: c.local}
			d := c.rt.OnRequest(context.Background(), r)
			if c.status != 0 {
				assert.Equal(t, Reply, d.Action)
				assert.Equal(t, c.status, d.Status)
				assert.NotEmpty(t, d.Reason)
				assert.Empty(t, d.Targets)
				return
			}
			require.Equal(t, Forward, d.Action)
			var got []string
			for _, tg := range d.Targets {
				got = append(got, tg.URI.String()+" "+tg.Transport)
			}
			assert.Equal(t, c.targets, got)
		})
	}
}

func TestTransportOf(t *testing.T) {
	cases := []struct {
		uri, def, want string
	}{
		{"sip:a@h", "", "udp"},
		{"sip:a@h", "TCP", "tcp"},
		{"sip:a@h;transport=TCP", "udp", "tcp"},
		{"sip:a@h;transport=tls", "", "tls"},
		{"sips:a@h", "udp", "tls"},
		{"sips:a@h;transport=tcp", "", "tcp"}, // the parameter wins
	}
	for _, c := range cases {
		assert.Equal(t, c.want, transportOf(uri(t, c.uri), c.def), "%s (%s)", c.uri, c.def)
	}
}

// TestIsUs: which URIs name this proxy (Routes to pop, requests it
// answers), and which hosts are its domains.
func TestIsUs(t *testing.T) {
	h := newHarness(t, nil)
	cases := []struct {
		uri   string
		us    bool
		local bool // isLocalDomain of the host
	}{
		{"sip:127.0.0.1:5060", true, true},
		{"sip:127.0.0.1", true, true},           // 5060 by default
		{"sips:127.0.0.1", true, true},          // 5061, the TLS port
		{"sip:127.0.0.1:5070", false, true},     // not our port
		{"sip:bob@127.0.0.1:5060", false, true}, // a user is not us
		{"sip:example.com", true, true},
		{"sip:EXAMPLE.com:5060", true, true},
		{"sip:example.com:9999", false, true},
		{"sip:10.0.0.7:5060", false, false},
		{"sip:elsewhere.test", false, false},
	}
	for _, c := range cases {
		u := uri(t, c.uri)
		assert.Equal(t, c.us, h.p.isUs(u), "isUs(%s)", c.uri)
		assert.Equal(t, c.local, h.p.isLocalDomain(u.Host), "isLocalDomain(%s)", u.Host)
	}
}

func TestHostPort(t *testing.T) {
	cases := []struct {
		uri, transport, want string
	}{
		{"sip:10.0.0.7", "udp", "10.0.0.7:5060"},
		{"sip:10.0.0.7", "tls", "10.0.0.7:5061"},
		{"sip:10.0.0.7:5080", "tcp", "10.0.0.7:5080"},
		{"sip:[2001:db8::1]", "udp", "[2001:db8::1]:5060"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, hostPort(uri(t, c.uri), c.transport), c.uri)
	}
}
