package hepreceiver

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/logbatch"
)

// Config is the hep receiver's configuration. Each of udp, tcp and tls is
// optional; at least one must be set.
type Config struct {
	UDP configoptional.Optional[UDPConfig] `mapstructure:"udp"`
	TCP configoptional.Optional[TCPConfig] `mapstructure:"tcp"`
	TLS configoptional.Optional[TLSConfig] `mapstructure:"tls"`

	// AuthKey, when set, is required in chunk 0x0e of every packet, in
	// every copy of it when the packet carries several (compared in constant
	// time). HEP v1/v2 cannot carry it and are then refused. No copy of the
	// key is forwarded, set or not.
	AuthKey configopaque.String `mapstructure:"auth_key"`
	// MaxPacketSize bounds one HEP packet, and a compressed payload once
	// inflated. HEP v3 cannot exceed 65535 bytes.
	MaxPacketSize int `mapstructure:"max_packet_size"`

	Batch logbatch.Config `mapstructure:"batch"`
	// Resource: records are grouped by sending node, identified by its node
	// name (chunk 0x13) when it sends one, else its capture agent id (chunk
	// 0x0c) as a decimal string; that is service.instance.id and the key of
	// resource.nodes.
	Resource logbatch.ResourceConfig `mapstructure:"resource"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// UDPConfig configures the UDP listener.
type UDPConfig struct {
	Endpoint string `mapstructure:"endpoint"`
	// ReadBufferSize sets SO_RCVBUF, which absorbs bursts while a batch
	// is being handed to the pipeline. 0 keeps the system default.
	ReadBufferSize int `mapstructure:"read_buffer_size"`
	// Readers is the number of goroutines reading the socket.
	Readers int `mapstructure:"readers"`
}

// TCPConfig configures a stream listener (TCP, and TLS through TLSConfig).
type TCPConfig struct {
	Endpoint string `mapstructure:"endpoint"`
	// MaxConnections bounds concurrent connections; more are reset at once
	// and counted (connections_rejected, reason limit).
	MaxConnections int `mapstructure:"max_connections"`
	// IdleTimeout resets a connection that brought no accepted packet
	// (well-formed and, with auth_key, authorized) for this long, and counts
	// it (connections_closed, reason idle_timeout); 0 never does.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// OnGarbage is what to do with bytes that are not a HEP3 packet:
	// "resync" skips to the next packet (up to max_packet_size bytes of
	// garbage in a row), "close" closes the connection.
	OnGarbage string `mapstructure:"on_garbage"`
}

// TLSConfig is a TCPConfig with server TLS settings. Setting client_ca_file
// requires and verifies client certificates.
type TLSConfig struct {
	TCPConfig              `mapstructure:",squash"`
	configtls.ServerConfig `mapstructure:",squash"`
}

const (
	garbageResync = "resync"
	garbageClose  = "close"
)

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if !c.UDP.HasValue() && !c.TCP.HasValue() && !c.TLS.HasValue() {
		errs = append(errs, errors.New("at least one of udp, tcp or tls must be configured"))
	}
	if u := c.UDP.Get(); u != nil {
		if u.Endpoint == "" {
			errs = append(errs, errors.New("udp: endpoint must be set"))
		}
		if u.Readers < 1 {
			errs = append(errs, fmt.Errorf("udp: readers must be at least 1, got %d", u.Readers))
		}
		if u.ReadBufferSize < 0 {
			errs = append(errs, fmt.Errorf("udp: read_buffer_size must not be negative, got %d", u.ReadBufferSize))
		}
	}
	if t := c.TCP.Get(); t != nil {
		errs = append(errs, t.validate("tcp"))
	}
	if t := c.TLS.Get(); t != nil {
		errs = append(errs, t.TCPConfig.validate("tls"))
		if t.CertFile == "" && t.CertPem == "" {
			errs = append(errs, errors.New("tls: cert_file or cert_pem must be set"))
		}
		if t.KeyFile == "" && t.KeyPem == "" {
			errs = append(errs, errors.New("tls: key_file or key_pem must be set"))
		}
	}
	if c.MaxPacketSize < hep.HeaderLen+hep.ChunkHeaderLen || c.MaxPacketSize > hep.MaxPacketLen {
		errs = append(errs, fmt.Errorf("max_packet_size must be between %d and %d, got %d",
			hep.HeaderLen+hep.ChunkHeaderLen, hep.MaxPacketLen, c.MaxPacketSize))
	}
	return errors.Join(errs...)
}

func (t *TCPConfig) validate(name string) error {
	var errs []error
	if t.Endpoint == "" {
		errs = append(errs, fmt.Errorf("%s: endpoint must be set", name))
	}
	if t.MaxConnections < 1 {
		errs = append(errs, fmt.Errorf("%s: max_connections must be at least 1, got %d", name, t.MaxConnections))
	}
	if t.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("%s: idle_timeout must not be negative, got %s", name, t.IdleTimeout))
	}
	if t.OnGarbage != garbageResync && t.OnGarbage != garbageClose {
		errs = append(errs, fmt.Errorf("%s: on_garbage must be %q or %q, got %q", name, garbageResync, garbageClose, t.OnGarbage))
	}
	return errors.Join(errs...)
}
