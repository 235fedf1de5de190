package homerexporter

import (
	"errors"
	"fmt"
	"net"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Transports the exporter speaks.
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
	TransportTLS = "tls"
)

// Config is the homer exporter's configuration.
type Config struct {
	// Endpoint is the HEP capture node, host:port (Homer's default is 9060).
	Endpoint string `mapstructure:"endpoint"`
	// Transport is udp, tcp or tls. Over TCP and TLS packets go back to
	// back on one connection; over UDP one datagram each.
	Transport string `mapstructure:"transport"`
	// TLS client settings, used when transport is tls.
	TLS configtls.ClientConfig `mapstructure:"tls"`

	// CaptureID is chunk 0x0c of records that did not come in as HEP
	// (CDRs, say); HEP records keep exactly the chunks they came with.
	CaptureID uint32 `mapstructure:"capture_id"`
	// NodeName is chunk 0x13 of records that did not come in as HEP. When
	// empty, the resource's service.instance.id is used.
	NodeName string `mapstructure:"node_name"`
	// AuthKey, when set, is sent in chunk 0x0e of every packet.
	AuthKey configopaque.String `mapstructure:"auth_key"`
	// KeepCompressedPayload sends a payload that came compressed (HEP
	// chunk 0x10) compressed again. By default it goes plain in chunk 0x0f:
	// heplify-server, Homer's capture node, reads no other payload chunk
	// and stores nothing for a packet without it.
	KeepCompressedPayload bool `mapstructure:"keep_compressed_payload"`

	exporterhelper.TimeoutConfig `mapstructure:",squash"`
	QueueConfig                  configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig                  configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("endpoint %q must be host:port: %w", c.Endpoint, err))
	}
	switch c.Transport {
	case TransportUDP, TransportTCP, TransportTLS:
	default:
		errs = append(errs, fmt.Errorf("transport must be udp, tcp or tls, got %q", c.Transport))
	}
	if c.Transport != TransportTLS && !c.TLS.Insecure && (c.TLS.CAFile != "" || c.TLS.CertFile != "") {
		errs = append(errs, errors.New("tls settings are set but transport is not tls"))
	}
	if len(c.NodeName) > 1024 {
		errs = append(errs, errors.New("node_name must not exceed 1024 bytes"))
	}
	return errors.Join(errs...)
}
