package config

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadFull(t *testing.T) {
	t.Setenv("SIPPROXY_TEST_TOKEN", "s3cret")
	c, err := Load(filepath.Join("testdata", "siphon.yaml"))
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:5060"}, c.Listen.UDP)
	assert.Equal(t, "203.0.113.10", c.AdvertisedAddress, "default of ${VAR:-default}")
	assert.Equal(t, "s3cret", c.Admin.Auth.Token)
	assert.True(t, c.Admin.Auth.ProtectReads)
	assert.Equal(t, "/metrics", c.Metrics.Prometheus.Path, "default kept")
	assert.Equal(t, "http", c.CDR.Backend)
	assert.Equal(t, 500, c.CDR.ChannelSize)
	assert.True(t, c.CDR.HTTP.Retry)
	assert.Equal(t, 2*time.Minute, c.CDR.HTTP.RetryFor)
	assert.Equal(t, 5*time.Second, c.CDR.HTTP.Timeout)
	assert.Equal(t, "node-1", c.Tracing.HEP.AgentID)
	assert.Equal(t, 10, c.Server.DrainSecs)
	assert.Equal(t, 16, c.Script.SyncPoolMax)
	assert.Equal(t, 30*time.Second, c.Proxy.InviteTimeout)
	require.Len(t, c.Routes, 2)
	assert.Equal(t, "+49", c.Routes[0].Match)
	assert.Equal(t, 2*time.Second, c.RTPEngine.PingInterval)
	assert.Equal(t, "anchor", c.Routes[1].Media)
	assert.Equal(t, "", c.Routes[0].Media)
	r := c.RTPEngine
	assert.Equal(t, []string{"127.0.0.1:22222", "127.0.0.1:22223"}, r.Instances)
	assert.Equal(t, "hash", r.Selection)
	assert.Equal(t, 500*time.Millisecond, r.Timeout)
	assert.Equal(t, "reject", r.OnError)
	require.NotNil(t, r.DeleteDelay)
	assert.Equal(t, time.Duration(0), *r.DeleteDelay)
	assert.Equal(t, NGFlags{TransportProtocol: "RTP/AVP", ICE: "remove", Replace: []string{"origin", "session-connection"},
		Flags: []string{"trust-address", "symmetric"}, Direction: []string{"external", "internal"}, ReceivedFrom: false}, r.Offer)
	assert.Equal(t, NGFlags{ICE: "remove", Replace: []string{"origin", "session-connection"}, Flags: []string{"trust-address"}, ReceivedFrom: true},
		r.Answer, "keys left out keep their defaults")
	assert.Equal(t, 4096, c.Tracing.HEP.QueueSize, "default kept")
	assert.Equal(t, ConnLimits{MaxConnections: 1000, IdleTimeout: 2 * time.Hour}, c.Limits.TCP)
	assert.Equal(t, TLSLimits{ConnLimits: ConnLimits{MaxConnections: 500, IdleTimeout: DefaultIdleTimeout}, HandshakeTimeout: 5 * time.Second},
		c.Limits.TLS, "idle_timeout's default kept beside the keys set")

	t.Setenv("SIPPROXY_TEST_ADVERTISED", "sip.example.com")
	c, err = Load(filepath.Join("testdata", "siphon.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "sip.example.com", c.AdvertisedAddress)
}

func TestExpand(t *testing.T) {
	t.Setenv("SET", "v")
	t.Setenv("EMPTY", "")
	for in, want := range map[string]string{
		"${SET}":          "v",
		"a${SET}b":        "avb",
		"${UNSET_X:-d}":   "d",
		"${EMPTY:-d}":     "d",
		"${EMPTY}":        "",
		"${SET:-d}":       "v",
		"$SET plain":      "$SET plain",
		"${UNSET_X:-}x":   "x",
		"${SET}${SET}":    "vv",
		"port ${P:-5060}": "port 5060",
	} {
		got, err := Expand(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := Expand("token: ${NOT_SET_ANYWHERE}")
	assert.ErrorContains(t, err, "NOT_SET_ANYWHERE is not set")
}

func TestErrors(t *testing.T) {
	base := "listen: {udp: [\"127.0.0.1:5060\"]}\ndomain: {local: [example.com]}\n"
	_, err := Parse([]byte(base))
	require.NoError(t, err, "the minimal config is valid")
	tests := []struct {
		name, yaml, want string
	}{
		{"no listener", "domain: {local: [x]}\n", "listen: no listener"},
		{"bad listen", "listen: {udp: [\"5060\"]}\ndomain: {local: [x]}\n", `listen.udp: "5060" is not host:port`},
		{"no domain", "listen: {udp: [\"127.0.0.1:5060\"]}\n", "domain.local"},
		{"typo key", base + "metrics: {prometheus: {listne: x}}\n", "field listne not found"},
		{"tls without cert", "listen: {tls: [\"127.0.0.1:5061\"]}\ndomain: {local: [x]}\n", "tls: cert_file and key_file"},
		{"cdr backend", base + "cdr: {enabled: true, backend: kafka}\n", `cdr.backend: must be file, http or syslog, got "kafka"`},
		{"cdr url", base + "cdr: {enabled: true, backend: http, http: {url: \"ftp://x\"}}\n", "cdr.http.url"},
		{"cdr channel", base + "cdr: {enabled: true, channel_size: 0}\n", "cdr.channel_size: must be at least 1"},
		{"hep version", base + "tracing: {hep: {endpoint: \"127.0.0.1:9060\", version: 2}}\n", "only 3 is supported"},
		{"hep transport", base + "tracing: {hep: {endpoint: \"127.0.0.1:9060\", transport: sctp}}\n", "tracing.hep.transport"},
		{"pool order", base + "script: {sync_pool_size: 9, sync_pool_max: 4}\n", "exceeds sync_pool_max"},
		{"expires order", base + "registrar: {min_expires: 100, default_expires: 50}\n", "min_expires <= default_expires"},
		{"invite timeout", base + "proxy: {invite_timeout: 10ms}\n", "proxy.invite_timeout"},
		{"route target", base + "routes: [{match: \"*\", targets: [\"http://x\"]}]\n", "is not a sip: URI"},
		{"route empty", base + "routes: [{match: \"*\"}]\n", "routes[0]: needs match"},
		{"rtpengine", base + "rtpengine: {instances: [\"nohost\"]}\n", "rtpengine.instances"},
		{"rtpengine twice", base + "rtpengine: {instances: [\"127.0.0.1:1\", \"127.0.0.1:1\"]}\n", "listed twice"},
		{"enabled without instances", base + "rtpengine: {enabled: true}\n", "rtpengine.enabled: needs rtpengine.instances"},
		{"selection", base + "rtpengine: {selection: random}\n", "rtpengine.selection"},
		{"on_error", base + "rtpengine: {on_error: drop}\n", "rtpengine.on_error"},
		{"rtpengine timeout", base + "rtpengine: {timeout: 1ms}\n", "rtpengine.timeout"},
		{"ping interval", base + "rtpengine: {instances: [\"127.0.0.1:1\"], ping_interval: 0s}\n", "rtpengine.ping_interval"},
		{"delete delay", base + "rtpengine: {delete_delay: 1500ms}\n", "rtpengine.delete_delay"},
		{"ice", base + "rtpengine: {offer: {ice: drop}}\n", "rtpengine.offer.ice"},
		{"transport protocol", base + "rtpengine: {answer: {transport_protocol: RTP/XYZ}}\n", "rtpengine.answer.transport_protocol"},
		{"replace", base + "rtpengine: {offer: {replace: [everything]}}\n", "rtpengine.offer.replace"},
		{"empty flag", base + "rtpengine: {offer: {flags: [\" \"]}}\n", "rtpengine.offer.flags"},
		{"direction", base + "rtpengine: {offer: {direction: [external]}}\n", "rtpengine.offer.direction"},
		{"route media", base + "routes: [{match: \"*\", targets: [\"sip:x\"], media: relay}]\n", "routes[0].media: must be anchor or direct"},
		{"route anchor without instances", base + "routes: [{match: \"*\", targets: [\"sip:x\"], media: anchor}]\n", "anchor needs rtpengine.instances"},
		{"drain", base + "server: {drain_secs: -1}\n", "server.drain_secs"},
		{"yaml syntax", base + "listen: [\n", "config: yaml"},
		{"max connections", base + "limits: {tcp: {max_connections: 0}}\n", "limits.tcp.max_connections: must be at least 1, got 0"},
		{"idle timeout", base + "limits: {tls: {idle_timeout: 500ms}}\n", "limits.tls.idle_timeout: must be at least 1s, got 500ms"},
		{"handshake timeout", base + "limits: {tls: {handshake_timeout: 0s}}\n", "limits.tls.handshake_timeout: must be at least 100ms"},
		{"handshake on tcp", base + "limits: {tcp: {handshake_timeout: 5s}}\n", "field handshake_timeout not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestRTPEngineDefaults: anchoring is off, and when on, offers and answers
// carry SIPhon's rtp_passthrough options plus the session c= line, ICE
// removed and the SIP source.
func TestRTPEngineDefaults(t *testing.T) {
	c, err := Parse([]byte("listen: {udp: [\"127.0.0.1:5060\"]}\ndomain: {local: [example.com]}\nrtpengine: {instances: [\"127.0.0.1:22222\"]}\n"))
	require.NoError(t, err)
	r := c.RTPEngine
	assert.False(t, r.Enabled)
	assert.Equal(t, "round_robin", r.Selection)
	assert.Equal(t, time.Second, r.Timeout)
	assert.Equal(t, "pass", r.OnError)
	assert.Nil(t, r.DeleteDelay, "the engine's own delay")
	want := NGFlags{ICE: "remove", Replace: []string{"origin", "session-connection"}, Flags: []string{"trust-address"}, ReceivedFrom: true}
	assert.Equal(t, want, r.Offer)
	assert.Equal(t, want, r.Answer)
	r.Offer.Flags[0] = "changed"
	assert.Equal(t, "trust-address", r.Answer.Flags[0], "offer and answer do not share their lists")

	c, err = Parse([]byte("listen: {udp: [\"127.0.0.1:5060\"]}\ndomain: {local: [example.com]}\n" +
		"rtpengine: {instances: [\"127.0.0.1:22222\"], offer: {flags: [], ice: \"\", replace: []}}\n"))
	require.NoError(t, err)
	assert.Equal(t, NGFlags{Flags: []string{}, Replace: []string{}, ReceivedFrom: true}, c.RTPEngine.Offer, "emptied: none sent")
}

// TestConnectionLimitDefaults: a file without limits gets finite bounds on
// every stream listener.
func TestConnectionLimitDefaults(t *testing.T) {
	c, err := Parse([]byte("listen: {tcp: [\"127.0.0.1:5060\"], tls: [\"127.0.0.1:5061\"]}\ntls: {cert_file: c, key_file: k}\ndomain: {local: [example.com]}\n"))
	require.NoError(t, err)
	assert.Equal(t, ConnLimits{MaxConnections: 2048, IdleTimeout: 65 * time.Minute}, c.Limits.TCP)
	assert.Equal(t, TLSLimits{ConnLimits: ConnLimits{MaxConnections: 2048, IdleTimeout: 65 * time.Minute}, HandshakeTimeout: 10 * time.Second}, c.Limits.TLS)
}
