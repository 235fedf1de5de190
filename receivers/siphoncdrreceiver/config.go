package siphoncdrreceiver

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"

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
type HTTPConfig struct {
	confighttp.ServerConfig `mapstructure:",squash"`
	// Path the records are POSTed to.
	Path string `mapstructure:"path"`
	// AuthHeader is the exact Authorization value required, SIPhon's
	// cdr.http.auth_header (e.g. "Bearer tok123"); empty requires none.
	AuthHeader configopaque.String `mapstructure:"auth_header"`
	// MaxRecordsPerRequest bounds a batch request.
	MaxRecordsPerRequest int `mapstructure:"max_records_per_request"`
	// RetryAfter is the delay suggested with 503 when the pipeline refuses.
	RetryAfter time.Duration `mapstructure:"retry_after"`
}

// SyslogConfig is where SIPhon's cdr.syslog.target points.
type SyslogConfig struct {
	UDP configoptional.Optional[SyslogUDPConfig] `mapstructure:"udp"`
	TCP configoptional.Optional[SyslogTCPConfig] `mapstructure:"tcp"`
	// MaxMessageSize bounds one syslog message (and one UDP datagram).
	MaxMessageSize int `mapstructure:"max_message_size"`
}

// SyslogUDPConfig configures the UDP listener (SIPhon's transport).
type SyslogUDPConfig struct {
	Endpoint       string `mapstructure:"endpoint"`
	ReadBufferSize int    `mapstructure:"read_buffer_size"`
}

// SyslogTCPConfig configures the TCP listener; octet-counted and
// newline-framed messages are both accepted, even mixed.
type SyslogTCPConfig struct {
	Endpoint       string        `mapstructure:"endpoint"`
	MaxConnections int           `mapstructure:"max_connections"`
	IdleTimeout    time.Duration `mapstructure:"idle_timeout"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if !c.HTTP.HasValue() && !c.Syslog.HasValue() {
		errs = append(errs, errors.New("at least one of http or syslog must be configured"))
	}
	if h := c.HTTP.Get(); h != nil {
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
	}
	if s := c.Syslog.Get(); s != nil {
		if !s.UDP.HasValue() && !s.TCP.HasValue() {
			errs = append(errs, errors.New("syslog: at least one of udp or tcp must be configured"))
		}
		if u := s.UDP.Get(); u != nil && u.Endpoint == "" {
			errs = append(errs, errors.New("syslog: udp: endpoint must be set"))
		}
		if t := s.TCP.Get(); t != nil {
			if t.Endpoint == "" {
				errs = append(errs, errors.New("syslog: tcp: endpoint must be set"))
			}
			if t.MaxConnections < 1 {
				errs = append(errs, fmt.Errorf("syslog: tcp: max_connections must be at least 1, got %d", t.MaxConnections))
			}
			if t.IdleTimeout < 0 {
				errs = append(errs, fmt.Errorf("syslog: tcp: idle_timeout must not be negative, got %s", t.IdleTimeout))
			}
		}
		if s.MaxMessageSize < 512 || s.MaxMessageSize > 1<<20 {
			errs = append(errs, fmt.Errorf("syslog: max_message_size must be between 512 and 1048576, got %d", s.MaxMessageSize))
		}
	}
	return errors.Join(errs...)
}
