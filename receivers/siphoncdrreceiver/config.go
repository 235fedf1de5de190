package siphoncdrreceiver

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"

	"github.com/siphon-otel/siphon-otel/internal/logbatch"
)

// Config is the siphon_cdr receiver's configuration. http and syslog are
// each optional; at least one must be set.
type Config struct {
	HTTP   configoptional.Optional[HTTPConfig]   `mapstructure:"http"`
	Syslog configoptional.Optional[SyslogConfig] `mapstructure:"syslog"`

	// Batch groups syslog records before they go to the pipeline (an HTTP
	// request is its own batch).
	Batch logbatch.Config `mapstructure:"batch"`
	// Resource: records are grouped by the sending node's IP address, which
	// is service.instance.id and the key of resource.nodes (set
	// service.instance.id there so that CDRs share the resource of the
	// node's HEP).
	Resource logbatch.ResourceConfig `mapstructure:"resource"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// HTTPConfig is where SIPhon's cdr.http.url points: an HTTP(S) server that
// takes one record per POST (SIPhon), or a JSON array or NDJSON batch.
// confighttp's read_header_timeout, read_timeout, write_timeout, idle_timeout
// and max_request_body_size have this receiver's defaults (factory.go); the
// two read timeouts must be positive.
type HTTPConfig struct {
	confighttp.ServerConfig `mapstructure:",squash"`
	// Path the records are POSTed to.
	Path string `mapstructure:"path"`
	// AuthHeader is the exact Authorization value required, SIPhon's
	// cdr.http.auth_header (e.g. "Bearer tok123"); empty requires none.
	AuthHeader configopaque.String `mapstructure:"auth_header"`
	// MaxRecordsPerRequest bounds a batch request.
	MaxRecordsPerRequest int `mapstructure:"max_records_per_request"`
	// MaxInFlightBytes bounds the memory of the requests being served: the
	// bodies as they are read, then the records built from them, until the
	// pipeline answers. Past it a request is refused with 503 and
	// Retry-After.
	MaxInFlightBytes int64 `mapstructure:"max_in_flight_bytes"`
	// RetryAfter is the delay suggested with 503 when the pipeline refuses
	// or max_in_flight_bytes is reached.
	RetryAfter time.Duration `mapstructure:"retry_after"`
	// AllowedSources, when set, lists the networks (CIDR, or one address)
	// whose connections are served; any other is closed at once.
	AllowedSources []string `mapstructure:"allowed_sources"`
}

// SyslogConfig is where SIPhon's cdr.syslog.target points.
type SyslogConfig struct {
	UDP configoptional.Optional[SyslogUDPConfig] `mapstructure:"udp"`
	TCP configoptional.Optional[SyslogTCPConfig] `mapstructure:"tcp"`
	TLS configoptional.Optional[SyslogTLSConfig] `mapstructure:"tls"`
	// MaxMessageSize bounds one syslog message (and one UDP datagram).
	MaxMessageSize int `mapstructure:"max_message_size"`
	// AllowedSources, when set, lists the networks (CIDR, or one address)
	// syslog is taken from, on every syslog listener: other datagrams are
	// dropped, other connections closed at once. Syslog has no other
	// authentication than TLS client certificates.
	AllowedSources []string `mapstructure:"allowed_sources"`
}

// SyslogUDPConfig configures the UDP listener (SIPhon's transport).
type SyslogUDPConfig struct {
	Endpoint       string `mapstructure:"endpoint"`
	ReadBufferSize int    `mapstructure:"read_buffer_size"`
}

// SyslogTCPConfig configures a stream listener (TCP, and TLS through
// SyslogTLSConfig); octet-counted and newline-framed messages are both
// accepted, even mixed.
type SyslogTCPConfig struct {
	Endpoint       string `mapstructure:"endpoint"`
	MaxConnections int    `mapstructure:"max_connections"`
	// IdleTimeout closes a connection that sent no complete message for
	// this long; 0 never does.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
}

// SyslogTLSConfig is syslog over TLS (RFC 5425): a SyslogTCPConfig with
// server TLS settings. Setting client_ca_file requires and verifies client
// certificates.
type SyslogTLSConfig struct {
	SyslogTCPConfig        `mapstructure:",squash"`
	configtls.ServerConfig `mapstructure:",squash"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if !c.HTTP.HasValue() && !c.Syslog.HasValue() {
		errs = append(errs, errors.New("at least one of http or syslog must be configured"))
	}
	if h := c.HTTP.Get(); h != nil {
		errs = append(errs, h.validate())
	}
	if s := c.Syslog.Get(); s != nil {
		errs = append(errs, s.validate())
	}
	return errors.Join(errs...)
}

func (h *HTTPConfig) validate() error {
	var errs []error
	if h.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("http: endpoint must be set"))
	}
	if !strings.HasPrefix(h.Path, "/") {
		errs = append(errs, fmt.Errorf("http: path must start with /, got %q", h.Path))
	}
	if h.MaxRecordsPerRequest < 1 {
		errs = append(errs, fmt.Errorf("http: max_records_per_request must be at least 1, got %d", h.MaxRecordsPerRequest))
	}
	if h.RetryAfter < time.Second {
		errs = append(errs, fmt.Errorf("http: retry_after must be at least 1s, got %s", h.RetryAfter))
	}
	// a request whose headers or body never end would hold its connection,
	// and what it sent, forever
	if h.ReadHeaderTimeout <= 0 {
		errs = append(errs, fmt.Errorf("http: read_header_timeout must be positive, got %s", h.ReadHeaderTimeout))
	}
	if h.ReadTimeout <= 0 {
		errs = append(errs, fmt.Errorf("http: read_timeout must be positive, got %s", h.ReadTimeout))
	}
	if h.MaxRequestBodySize < 1 {
		errs = append(errs, fmt.Errorf("http: max_request_body_size must be at least 1, got %d", h.MaxRequestBodySize))
	}
	if largest := h.largestRequest(); h.MaxInFlightBytes < largest {
		errs = append(errs, fmt.Errorf("http: max_in_flight_bytes (%d) must hold one request of max_request_body_size with max_records_per_request records: at least %d", h.MaxInFlightBytes, largest))
	}
	if _, err := parseSources(h.AllowedSources); err != nil {
		errs = append(errs, fmt.Errorf("http: allowed_sources: %w", err))
	}
	return errors.Join(errs...)
}

func (s *SyslogConfig) validate() error {
	var errs []error
	if !s.UDP.HasValue() && !s.TCP.HasValue() && !s.TLS.HasValue() {
		errs = append(errs, errors.New("syslog: at least one of udp, tcp or tls must be configured"))
	}
	if u := s.UDP.Get(); u != nil && u.Endpoint == "" {
		errs = append(errs, errors.New("syslog: udp: endpoint must be set"))
	}
	if t := s.TCP.Get(); t != nil {
		errs = append(errs, t.validate("tcp"))
	}
	if t := s.TLS.Get(); t != nil {
		errs = append(errs, t.SyslogTCPConfig.validate("tls"))
		if t.CertFile == "" && t.CertPem == "" {
			errs = append(errs, errors.New("syslog: tls: cert_file or cert_pem must be set"))
		}
		if t.KeyFile == "" && t.KeyPem == "" {
			errs = append(errs, errors.New("syslog: tls: key_file or key_pem must be set"))
		}
	}
	if s.MaxMessageSize < 512 || s.MaxMessageSize > 1<<20 {
		errs = append(errs, fmt.Errorf("syslog: max_message_size must be between 512 and 1048576, got %d", s.MaxMessageSize))
	}
	if _, err := parseSources(s.AllowedSources); err != nil {
		errs = append(errs, fmt.Errorf("syslog: allowed_sources: %w", err))
	}
	return errors.Join(errs...)
}

func (t *SyslogTCPConfig) validate(name string) error {
	var errs []error
	if t.Endpoint == "" {
		errs = append(errs, fmt.Errorf("syslog: %s: endpoint must be set", name))
	}
	if t.MaxConnections < 1 {
		errs = append(errs, fmt.Errorf("syslog: %s: max_connections must be at least 1, got %d", name, t.MaxConnections))
	}
	if t.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("syslog: %s: idle_timeout must not be negative, got %s", name, t.IdleTimeout))
	}
	return errors.Join(errs...)
}

// largestRequest is what the largest request holds of max_in_flight_bytes:
// its body, and its records (their JSON, kept as their bodies, and the rest
// of each).
func (h *HTTPConfig) largestRequest() int64 {
	return 2*h.MaxRequestBodySize + int64(h.MaxRecordsPerRequest)*recordOverhead
}
