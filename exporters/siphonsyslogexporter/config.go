package siphonsyslogexporter

import (
	"errors"
	"fmt"
	"net"

	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/siphon-otel/siphon-otel/internal/record"
)

// Formats and framings.
const (
	FormatRFC5424 = "rfc5424"
	FormatRFC3164 = "rfc3164"

	FramingOctetCounting = "octet_counting"
	FramingNewline       = "newline"
)

// Config is the siphon_syslog exporter's configuration. endpoint is
// SIPhon's cdr.syslog.target; the defaults produce SIPhon's exact line.
type Config struct {
	Endpoint  string                 `mapstructure:"endpoint"`
	Transport string                 `mapstructure:"transport"` // udp, tcp, tls
	TLS       configtls.ClientConfig `mapstructure:"tls"`
	Format    string                 `mapstructure:"format"`
	// Framing of messages on TCP and TLS (RFC 6587).
	Framing  string `mapstructure:"framing"`
	Facility string `mapstructure:"facility"` // name (local0) or number 0-23
	Severity string `mapstructure:"severity"` // name (info) or number 0-7
	AppName  string `mapstructure:"app_name"`
	Hostname string `mapstructure:"hostname"`
	// Source of a CDR's JSON: its body (SIPhon's bytes) or its attributes.
	Source record.Source `mapstructure:"source"`

	exporterhelper.TimeoutConfig `mapstructure:",squash"`
	QueueConfig                  configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig                  configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14, "solaris-cron": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

var severities = map[string]int{
	"emerg": 0, "alert": 1, "crit": 2, "err": 3, "error": 3, "warning": 4, "warn": 4, "notice": 5, "info": 6, "debug": 7,
}

func lookup(names map[string]int, v string, maxN int) (int, bool) {
	if n, ok := names[v]; ok {
		return n, true
	}
	var n int
	if _, err := fmt.Sscanf(v, "%d", &n); err == nil && fmt.Sprint(n) == v && n >= 0 && n <= maxN {
		return n, true
	}
	return 0, false
}

// priority returns facility*8 + severity.
func (c *Config) priority() int {
	f, _ := lookup(facilities, c.Facility, 23)
	s, _ := lookup(severities, c.Severity, 7)
	return f*8 + s
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("endpoint %q must be host:port: %w", c.Endpoint, err))
	}
	switch c.Transport {
	case "udp", "tcp", "tls":
	default:
		errs = append(errs, fmt.Errorf("transport must be udp, tcp or tls, got %q", c.Transport))
	}
	if c.Format != FormatRFC5424 && c.Format != FormatRFC3164 {
		errs = append(errs, fmt.Errorf("format must be rfc5424 or rfc3164, got %q", c.Format))
	}
	if c.Framing != FramingOctetCounting && c.Framing != FramingNewline {
		errs = append(errs, fmt.Errorf("framing must be octet_counting or newline, got %q", c.Framing))
	}
	if _, ok := lookup(facilities, c.Facility, 23); !ok {
		errs = append(errs, fmt.Errorf("facility must be a name like local0 or a number 0-23, got %q", c.Facility))
	}
	if _, ok := lookup(severities, c.Severity, 7); !ok {
		errs = append(errs, fmt.Errorf("severity must be a name like info or a number 0-7, got %q", c.Severity))
	}
	for name, v := range map[string]string{"app_name": c.AppName, "hostname": c.Hostname} {
		if v == "" || len(v) > 48 || containsSpace(v) {
			errs = append(errs, fmt.Errorf("%s must be 1-48 characters without spaces, got %q", name, v))
		}
	}
	if c.Transport != "tls" && (c.TLS.CAFile != "" || c.TLS.CertFile != "") {
		errs = append(errs, errors.New("tls settings are set but transport is not tls"))
	}
	return errors.Join(errs...)
}

func containsSpace(s string) bool {
	for _, r := range s {
		if r <= ' ' {
			return true
		}
	}
	return false
}
