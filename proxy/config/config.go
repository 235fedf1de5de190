// Package config reads sipproxy's YAML configuration. Every feature it
// shares with SIPhon uses SIPhon's key names (siphon.yaml); values may use
// ${VAR} and ${VAR:-default}.
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole file.
type Config struct {
	Listen            Listen    `yaml:"listen"`
	TLS               TLS       `yaml:"tls"`
	Domain            Domain    `yaml:"domain"`
	AdvertisedAddress string    `yaml:"advertised_address"`
	Metrics           Metrics   `yaml:"metrics"`
	Admin             Admin     `yaml:"admin"`
	CDR               CDR       `yaml:"cdr"`
	Tracing           Tracing   `yaml:"tracing"`
	Server            Server    `yaml:"server"`
	Script            Script    `yaml:"script"`
	Registrar         Registrar `yaml:"registrar"`
	Proxy             Proxy     `yaml:"proxy"`
	Routes            []Route   `yaml:"routes"`
	RTPEngine         RTPEngine `yaml:"rtpengine"`
	Limits            Limits    `yaml:"limits"`
}

// Listen lists the SIP listeners per transport.
type Listen struct {
	UDP []string `yaml:"udp"`
	TCP []string `yaml:"tcp"`
	TLS []string `yaml:"tls"`
}

// TLS holds the certificate of the TLS listeners and the roots that
// verify next hops reached over TLS.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// CAFile verifies next hops over TLS; empty uses the system roots.
	CAFile string `yaml:"ca_file"`
}

// Domain names the domains this proxy is responsible for.
type Domain struct {
	Local []string `yaml:"local"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Prometheus struct {
		Listen string `yaml:"listen"`
		Path   string `yaml:"path"`
	} `yaml:"prometheus"`
}

// Admin configures the admin API.
type Admin struct {
	Listen string `yaml:"listen"`
	Auth   struct {
		Token        string `yaml:"token"`
		ProtectReads bool   `yaml:"protect_reads"`
	} `yaml:"auth"`
}

// CDR configures call detail records, as SIPhon's cdr block.
type CDR struct {
	Enabled         bool   `yaml:"enabled"`
	AutoEmit        bool   `yaml:"auto_emit"`
	IncludeRegister bool   `yaml:"include_register"`
	ChannelSize     int    `yaml:"channel_size"`
	Backend         string `yaml:"backend"`
	File            struct {
		Path         string `yaml:"path"`
		RotateSizeMB int    `yaml:"rotate_size_mb"`
	} `yaml:"file"`
	HTTP struct {
		URL        string `yaml:"url"`
		AuthHeader string `yaml:"auth_header"`
		// Retry is ours (SIPhon never retries): resend on failure for up
		// to RetryFor, so a collector restart loses nothing.
		Retry    bool          `yaml:"retry"`
		RetryFor time.Duration `yaml:"retry_for"`
		Timeout  time.Duration `yaml:"timeout"`
	} `yaml:"http"`
	Syslog struct {
		Target string `yaml:"target"`
	} `yaml:"syslog"`
}

// Tracing configures HEP, as SIPhon's tracing.hep block.
type Tracing struct {
	HEP struct {
		Endpoint      string `yaml:"endpoint"`
		Version       int    `yaml:"version"`
		Transport     string `yaml:"transport"`
		AgentID       string `yaml:"agent_id"`
		CACert        string `yaml:"ca_cert"`
		TLSServerName string `yaml:"tls_server_name"`
		QueueSize     int    `yaml:"queue_size"`
	} `yaml:"hep"`
}

// Server holds process-wide settings.
type Server struct {
	DrainSecs int `yaml:"drain_secs"`
}

// Script sizes the handler pool, SIPhon's script block.
type Script struct {
	SyncPoolSize          int `yaml:"sync_pool_size"`
	SyncPoolMax           int `yaml:"sync_pool_max"`
	ExecutorQueueCapacity int `yaml:"executor_queue_capacity"`
}

// Registrar configures REGISTER handling.
type Registrar struct {
	DefaultExpires int `yaml:"default_expires"`
	MinExpires     int `yaml:"min_expires"`
	MaxExpires     int `yaml:"max_expires"`
	// Credentials is a file of "user:password" (or "user:HA1") lines; when
	// set, REGISTER and INVITE from local users need digest auth.
	Credentials string `yaml:"credentials"`
	Realm       string `yaml:"realm"`
}

// Proxy tunes the stateful proxy.
type Proxy struct {
	// InviteTimeout ends an INVITE nobody answered: CANCEL downstream, 408
	// upstream.
	InviteTimeout time.Duration `yaml:"invite_timeout"`
	// FailoverTimeout gives up a target that sent no response at all (not
	// even 100 Trying) and tries the next one; the last target keeps
	// InviteTimeout (INVITE) or Timer F (others).
	FailoverTimeout time.Duration `yaml:"failover_timeout"`
}

// Route sends requests for matching users or domains to fixed targets,
// tried in order (failover on timeout, 408 or 5xx).
type Route struct {
	// Match is a domain ("carrier.example.com"), a user prefix ("+49"), or
	// "*" for everything not local.
	Match   string   `yaml:"match"`
	Targets []string `yaml:"targets"`
	// Media overrides rtpengine.enabled for the calls of this route:
	// "anchor" (through RTPEngine) or "direct"; empty follows it.
	Media string `yaml:"media"`
}

// Route media modes.
const (
	MediaAnchor = "anchor"
	MediaDirect = "direct"
)

// RTPEngine lists the media relays: their health is reported, and with
// Enabled (or a route's media: anchor) calls' media goes through them.
// SIPhon configures the same under media.rtpengine and media.profiles
// (proxy/README.md#media-anchoring-rtpengine).
type RTPEngine struct {
	Instances    []string      `yaml:"instances"`
	PingInterval time.Duration `yaml:"ping_interval"`
	// Enabled anchors the media of every new call with SDP; a route's
	// media key overrides it.
	Enabled bool `yaml:"enabled"`
	// Selection picks a new call's instance: round_robin or hash (of the
	// Call-ID).
	Selection string `yaml:"selection"`
	// Timeout bounds one NG command at one instance (SIPhon's
	// timeout_ms).
	Timeout time.Duration `yaml:"timeout"`
	// OnError is what a failed offer does to the call: pass (relay the
	// SDP unchanged, unanchored) or reject (answer 500).
	OnError string `yaml:"on_error"`
	// DeleteDelay, when set, is sent with every delete ("delete-delay");
	// unset leaves the engine's --delete-delay (30 s by default).
	DeleteDelay *time.Duration `yaml:"delete_delay"`
	// Offer and Answer are the NG options of each command, in the shape
	// of one half of a SIPhon media profile.
	Offer  NGFlags `yaml:"offer"`
	Answer NGFlags `yaml:"answer"`
}

// NGFlags are the NG options sent with an offer or an answer.
type NGFlags struct {
	TransportProtocol string   `yaml:"transport_protocol"` // "transport-protocol"
	ICE               string   `yaml:"ice"`                // "ICE"
	Replace           []string `yaml:"replace"`            // "replace"
	Flags             []string `yaml:"flags"`              // "flags"
	Direction         []string `yaml:"direction"`          // "direction"
	// ReceivedFrom sends the address the SIP message came from
	// ("received-from").
	ReceivedFrom bool `yaml:"received_from"`
}

// Values the NG options accept (rtpengine's ng_control_protocol).
var (
	ngICE        = []string{"", "remove", "force", "force-relay", "default", "optional"}
	ngTransports = []string{"", "RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF", "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF"}
	ngReplace    = []string{"origin", "session-connection", "sdp-version", "username", "session-name", "zero-address", "force-increment-sdp-version"}
)

// defaultNGFlags anchor plain RTP as it is offered: SIPhon's
// rtp_passthrough profile (replace origin, trust-address) plus the
// session-level c= line and ICE removed, as Kamailio setups commonly ask
// for, and the SIP source sent along.
func defaultNGFlags() NGFlags {
	return NGFlags{ICE: "remove", Replace: []string{"origin", "session-connection"}, Flags: []string{"trust-address"}, ReceivedFrom: true}
}

// Limits protect the proxy.
type Limits struct {
	// RequestsPerSecondPerIP limits out-of-dialog requests per source IP;
	// 0 disables the limit.
	RequestsPerSecondPerIP float64 `yaml:"requests_per_second_per_ip"`
	Burst                  int     `yaml:"burst"`
	// TCP and TLS bound the connections of each listen.tcp and listen.tls
	// address (per transport, as listen is: a TLS connection costs more).
	TCP ConnLimits `yaml:"tcp"`
	TLS TLSLimits  `yaml:"tls"`
}

func (c *Config) validateRTPEngine(bad func(key, format string, args ...any)) {
	r := c.RTPEngine
	seen := map[string]bool{}
	for _, inst := range r.Instances {
		if _, _, err := net.SplitHostPort(inst); err != nil {
			bad("rtpengine.instances", "%q is not host:port", inst)
		}
		if seen[inst] {
			bad("rtpengine.instances", "%q is listed twice", inst)
		}
		seen[inst] = true
	}
	if r.Enabled && len(r.Instances) == 0 {
		bad("rtpengine.enabled", "needs rtpengine.instances")
	}
	if r.Selection != "round_robin" && r.Selection != "hash" {
		bad("rtpengine.selection", "must be round_robin or hash, got %q", r.Selection)
	}
	if r.OnError != "pass" && r.OnError != "reject" {
		bad("rtpengine.on_error", "must be pass or reject, got %q", r.OnError)
	}
	if r.Timeout < 10*time.Millisecond || r.Timeout > 30*time.Second {
		bad("rtpengine.timeout", "must be between 10ms and 30s, got %s", r.Timeout)
	}
	if len(r.Instances) > 0 && r.PingInterval < 100*time.Millisecond {
		bad("rtpengine.ping_interval", "must be at least 100ms")
	}
	if r.DeleteDelay != nil && (*r.DeleteDelay < 0 || *r.DeleteDelay%time.Second != 0) {
		bad("rtpengine.delete_delay", "must be whole seconds, not negative, got %s", *r.DeleteDelay)
	}
	for name, f := range map[string]NGFlags{"offer": r.Offer, "answer": r.Answer} {
		key := "rtpengine." + name
		if !slices.Contains(ngICE, f.ICE) {
			bad(key+".ice", "must be one of %s, got %q", strings.Join(ngICE[1:], ", "), f.ICE)
		}
		if !slices.Contains(ngTransports, f.TransportProtocol) {
			bad(key+".transport_protocol", "must be one of %s, got %q", strings.Join(ngTransports[1:], ", "), f.TransportProtocol)
		}
		for _, v := range f.Replace {
			if !slices.Contains(ngReplace, v) {
				bad(key+".replace", "must be among %s, got %q", strings.Join(ngReplace, ", "), v)
			}
		}
		for _, v := range f.Flags {
			if strings.TrimSpace(v) == "" {
				bad(key+".flags", "an empty flag")
			}
		}
		if len(f.Direction) != 0 && len(f.Direction) != 2 {
			bad(key+".direction", "names two interfaces (from, to), got %d", len(f.Direction))
		}
	}
}

// ConnLimits bound the connections of one stream listener.
type ConnLimits struct {
	// MaxConnections is how many accepted connections one listener keeps
	// open at once; one more is reset at once and counted. Connections the
	// proxy dials to next hops do not count.
	MaxConnections int `yaml:"max_connections"`
	// IdleTimeout closes a connection that carried no SIP message and no
	// keep-alive for that long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// TLSLimits add the handshake's bound.
type TLSLimits struct {
	ConnLimits `yaml:",inline"`
	// HandshakeTimeout closes an accepted connection whose TLS handshake
	// has not completed within it.
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
}

// Defaults of limits.tcp and limits.tls.
const (
	// DefaultMaxConnections is Kamailio's tcp_max_connections and
	// tls_max_connections default.
	DefaultMaxConnections = 2048
	// DefaultIdleTimeout outlasts the gap between a UA's registration
	// refreshes at the usual expiry, 3600 s (RFC 3261 10.2.1.1's suggested
	// default, and registrar.default_expires'), with 5 minutes to spare:
	// a UA that keeps its connection only through its REGISTERs (no
	// RFC 5626 keep-alives) must not lose it between refreshes, or calls
	// to it behind NAT have no way in.
	DefaultIdleTimeout = 65 * time.Minute
	// DefaultHandshakeTimeout is the hep receiver's TLS handshake bound.
	DefaultHandshakeTimeout = 10 * time.Second
)

// Defaults returns the configuration used for keys a file leaves out.
func Defaults() Config {
	var c Config
	c.Metrics.Prometheus.Path = "/metrics"
	c.CDR.ChannelSize = 10000
	c.CDR.Backend = "file"
	c.CDR.File.Path = "/var/log/siphon/cdr.jsonl"
	c.CDR.File.RotateSizeMB = 100
	c.CDR.HTTP.Timeout = 5 * time.Second
	c.CDR.HTTP.RetryFor = 5 * time.Minute
	c.CDR.Syslog.Target = "127.0.0.1:514"
	c.Tracing.HEP.Version = 3
	c.Tracing.HEP.Transport = "udp"
	c.Tracing.HEP.AgentID = "1"
	c.Tracing.HEP.QueueSize = 4096
	c.Server.DrainSecs = 30
	c.Script.ExecutorQueueCapacity = 1024
	c.Registrar.DefaultExpires = 3600
	c.Registrar.MinExpires = 60
	c.Registrar.MaxExpires = 86400
	c.Proxy.InviteTimeout = 60 * time.Second
	c.Proxy.FailoverTimeout = 3 * time.Second
	c.RTPEngine.PingInterval = 5 * time.Second
	c.RTPEngine.Selection = "round_robin"
	c.RTPEngine.Timeout = time.Second
	c.RTPEngine.OnError = "pass"
	c.RTPEngine.Offer, c.RTPEngine.Answer = defaultNGFlags(), defaultNGFlags()
	c.Limits.Burst = 20
	c.Limits.TCP = ConnLimits{MaxConnections: DefaultMaxConnections, IdleTimeout: DefaultIdleTimeout}
	c.Limits.TLS = TLSLimits{ConnLimits: c.Limits.TCP, HandshakeTimeout: DefaultHandshakeTimeout}
	return c
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// Expand replaces ${VAR} and ${VAR:-default}. An unset variable without a
// default is an error naming it.
func Expand(s string) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(m string) string {
		g := envRef.FindStringSubmatch(m)
		if v, ok := os.LookupEnv(g[1]); ok && (v != "" || g[2] == "") {
			return v
		}
		if g[2] != "" {
			return g[3]
		}
		missing = append(missing, g[1])
		return ""
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("config: environment variable %s is not set (use ${%s:-default} for a default)", strings.Join(missing, ", "), missing[0])
	}
	return out, nil
}

// Load reads, expands, parses and validates a file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(b)
}

// Parse expands, parses and validates YAML; unknown keys are errors, so a
// misspelt key does not silently fall back to a default.
func Parse(b []byte) (*Config, error) {
	text, err := Expand(string(b))
	if err != nil {
		return nil, err
	}
	c := Defaults()
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks values and their combinations.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if len(c.Listen.UDP)+len(c.Listen.TCP)+len(c.Listen.TLS) == 0 {
		bad("listen", "no listener: set udp, tcp or tls")
	}
	for kind, addrs := range map[string][]string{"udp": c.Listen.UDP, "tcp": c.Listen.TCP, "tls": c.Listen.TLS} {
		for _, a := range addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				bad("listen."+kind, "%q is not host:port", a)
			}
		}
	}
	if len(c.Listen.TLS) > 0 && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file are required with listen.tls")
	}
	if len(c.Domain.Local) == 0 {
		bad("domain.local", "list at least one domain or address this proxy serves")
	}
	if c.AdvertisedAddress != "" && net.ParseIP(c.AdvertisedAddress) == nil && strings.ContainsAny(c.AdvertisedAddress, ":/ ") {
		bad("advertised_address", "%q is not an address or host name", c.AdvertisedAddress)
	}
	if l := c.Metrics.Prometheus.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			bad("metrics.prometheus.listen", "%q is not host:port", l)
		}
		if !strings.HasPrefix(c.Metrics.Prometheus.Path, "/") {
			bad("metrics.prometheus.path", "%q must start with /", c.Metrics.Prometheus.Path)
		}
	}
	if l := c.Admin.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			bad("admin.listen", "%q is not host:port", l)
		}
	}
	if c.CDR.Enabled {
		if c.CDR.ChannelSize < 1 {
			bad("cdr.channel_size", "must be at least 1, got %d", c.CDR.ChannelSize)
		}
		switch c.CDR.Backend {
		case "file":
			if c.CDR.File.Path == "" {
				bad("cdr.file.path", "must be set")
			}
			if c.CDR.File.RotateSizeMB < 0 {
				bad("cdr.file.rotate_size_mb", "must not be negative")
			}
		case "http":
			if u, err := url.Parse(c.CDR.HTTP.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
				bad("cdr.http.url", "%q is not an http(s) URL", c.CDR.HTTP.URL)
			}
		case "syslog":
			if _, _, err := net.SplitHostPort(c.CDR.Syslog.Target); err != nil {
				bad("cdr.syslog.target", "%q is not host:port", c.CDR.Syslog.Target)
			}
		default:
			bad("cdr.backend", "must be file, http or syslog, got %q", c.CDR.Backend)
		}
	}
	if h := c.Tracing.HEP; h.Endpoint != "" {
		if _, _, err := net.SplitHostPort(h.Endpoint); err != nil {
			bad("tracing.hep.endpoint", "%q is not IP:port", h.Endpoint)
		}
		if h.Version != 3 {
			bad("tracing.hep.version", "only 3 is supported, got %d", h.Version)
		}
		switch h.Transport {
		case "udp", "tcp", "tls":
		default:
			bad("tracing.hep.transport", "must be udp, tcp or tls, got %q", h.Transport)
		}
		if h.QueueSize < 1 {
			bad("tracing.hep.queue_size", "must be at least 1")
		}
	}
	if c.Server.DrainSecs < 0 {
		bad("server.drain_secs", "must not be negative")
	}
	if c.Script.SyncPoolSize < 0 || c.Script.SyncPoolMax < 0 || c.Script.ExecutorQueueCapacity < 1 {
		bad("script", "pool sizes must not be negative and executor_queue_capacity at least 1")
	}
	if c.Script.SyncPoolMax > 0 && c.Script.SyncPoolSize > c.Script.SyncPoolMax {
		bad("script.sync_pool_size", "%d exceeds sync_pool_max %d", c.Script.SyncPoolSize, c.Script.SyncPoolMax)
	}
	r := c.Registrar
	if r.MinExpires < 1 || r.MaxExpires < r.MinExpires || r.DefaultExpires < r.MinExpires || r.DefaultExpires > r.MaxExpires {
		bad("registrar", "need 1 <= min_expires <= default_expires <= max_expires")
	}
	if c.Proxy.InviteTimeout < time.Second {
		bad("proxy.invite_timeout", "must be at least 1s")
	}
	if c.Proxy.FailoverTimeout < 100*time.Millisecond {
		bad("proxy.failover_timeout", "must be at least 100ms")
	}
	for i, rt := range c.Routes {
		if rt.Match == "" || len(rt.Targets) == 0 {
			bad(fmt.Sprintf("routes[%d]", i), "needs match and at least one target")
		}
		switch rt.Media {
		case "", MediaDirect:
		case MediaAnchor:
			if len(c.RTPEngine.Instances) == 0 {
				bad(fmt.Sprintf("routes[%d].media", i), "anchor needs rtpengine.instances")
			}
		default:
			bad(fmt.Sprintf("routes[%d].media", i), "must be anchor or direct, got %q", rt.Media)
		}
		for _, t := range rt.Targets {
			if !strings.HasPrefix(t, "sip:") && !strings.HasPrefix(t, "sips:") {
				bad(fmt.Sprintf("routes[%d].targets", i), "%q is not a sip: URI", t)
			}
		}
	}
	c.validateRTPEngine(bad)
	if c.Limits.RequestsPerSecondPerIP < 0 || c.Limits.Burst < 1 {
		bad("limits", "requests_per_second_per_ip must not be negative and burst at least 1")
	}
	for _, l := range []struct {
		kind string
		ConnLimits
	}{{"tcp", c.Limits.TCP}, {"tls", c.Limits.TLS.ConnLimits}} {
		if l.MaxConnections < 1 {
			bad("limits."+l.kind+".max_connections", "must be at least 1, got %d", l.MaxConnections)
		}
		if l.IdleTimeout < time.Second {
			bad("limits."+l.kind+".idle_timeout", "must be at least 1s, got %s", l.IdleTimeout)
		}
	}
	if c.Limits.TLS.HandshakeTimeout < 100*time.Millisecond {
		bad("limits.tls.handshake_timeout", "must be at least 100ms, got %s", c.Limits.TLS.HandshakeTimeout)
	}
	return errors.Join(errs...)
}
