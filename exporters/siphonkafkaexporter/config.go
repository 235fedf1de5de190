package siphonkafkaexporter

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/siphon-otel/siphon-otel/internal/record"
)

// Config is the siphon_kafka exporter's configuration.
type Config struct {
	Brokers  []string `mapstructure:"brokers"`
	ClientID string   `mapstructure:"client_id"`
	Topics   Topics   `mapstructure:"topics"`
	// RequiredAcks is all (default: the write is acknowledged when every
	// in-sync replica has it), one or none.
	RequiredAcks string `mapstructure:"required_acks"`
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression            string        `mapstructure:"compression"`
	BatchSize              int           `mapstructure:"batch_size"`
	BatchBytes             int64         `mapstructure:"batch_bytes"`
	BatchTimeout           time.Duration `mapstructure:"batch_timeout"`
	AllowAutoTopicCreation bool          `mapstructure:"allow_auto_topic_creation"`
	// Source of a CDR's JSON: its body (SIPhon's bytes) or its attributes.
	Source record.Source `mapstructure:"source"`

	TLS  configoptional.Optional[configtls.ClientConfig] `mapstructure:"tls"`
	SASL configoptional.Optional[SASLConfig]             `mapstructure:"sasl"`

	exporterhelper.TimeoutConfig `mapstructure:",squash"`
	QueueConfig                  configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig                  configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Topics names the topic of each record kind.
type Topics struct {
	CDR        string `mapstructure:"cdr"`
	SIPMessage string `mapstructure:"sip_message"`
	// Other takes every other record; empty drops them (counted).
	Other string `mapstructure:"other"`
}

// SASLConfig authenticates to the brokers.
type SASLConfig struct {
	Mechanism string              `mapstructure:"mechanism"` // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	Username  string              `mapstructure:"username"`
	Password  configopaque.String `mapstructure:"password"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers must list at least one host:port"))
	}
	if c.Topics.CDR == "" || c.Topics.SIPMessage == "" {
		errs = append(errs, errors.New("topics.cdr and topics.sip_message must be set"))
	}
	switch c.RequiredAcks {
	case "all", "one", "none":
	default:
		errs = append(errs, fmt.Errorf("required_acks must be all, one or none, got %q", c.RequiredAcks))
	}
	switch c.Compression {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		errs = append(errs, fmt.Errorf("compression must be none, gzip, snappy, lz4 or zstd, got %q", c.Compression))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("batch_size must be at least 1, got %d", c.BatchSize))
	}
	if c.BatchBytes < 1024 {
		errs = append(errs, fmt.Errorf("batch_bytes must be at least 1024, got %d", c.BatchBytes))
	}
	if c.BatchTimeout <= 0 {
		errs = append(errs, fmt.Errorf("batch_timeout must be positive, got %s", c.BatchTimeout))
	}
	if s := c.SASL.Get(); s != nil {
		switch s.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			errs = append(errs, fmt.Errorf("sasl: mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", s.Mechanism))
		}
		if s.Username == "" {
			errs = append(errs, errors.New("sasl: username must be set"))
		}
	}
	return errors.Join(errs...)
}
