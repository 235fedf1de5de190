package siphonhttpexporter

import (
	"errors"
	"fmt"
	"net/url"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/siphon-otel/siphon-otel/internal/record"
)

// Modes.
const (
	ModeSingle = "single" // one record per POST, exactly as SIPhon sends
	ModeBatch  = "batch"  // many records per POST
)

// Batch body formats.
const (
	FormatJSONArray = "json_array"
	FormatNDJSON    = "ndjson"
)

// Config is the siphon_http exporter's configuration. endpoint and
// auth_header are SIPhon's cdr.http.url and cdr.http.auth_header.
type Config struct {
	confighttp.ClientConfig `mapstructure:",squash"`
	// AuthHeader is sent verbatim as the Authorization header.
	AuthHeader configopaque.String `mapstructure:"auth_header"`
	Mode       string              `mapstructure:"mode"`
	// BatchFormat is the body of a batch request.
	BatchFormat string `mapstructure:"batch_format"`
	// MaxRecordsPerRequest splits larger batches (batch mode); the time and
	// size at which batches form are sending_queue.batch settings.
	MaxRecordsPerRequest int `mapstructure:"max_records_per_request"`
	// Source of a CDR's JSON: its body (SIPhon's bytes) or its attributes.
	Source record.Source `mapstructure:"source"`

	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("endpoint must be an http or https URL, got %q", c.Endpoint))
	}
	if c.Mode != ModeSingle && c.Mode != ModeBatch {
		errs = append(errs, fmt.Errorf("mode must be single or batch, got %q", c.Mode))
	}
	if c.BatchFormat != FormatJSONArray && c.BatchFormat != FormatNDJSON {
		errs = append(errs, fmt.Errorf("batch_format must be json_array or ndjson, got %q", c.BatchFormat))
	}
	if c.MaxRecordsPerRequest < 1 {
		errs = append(errs, fmt.Errorf("max_records_per_request must be at least 1, got %d", c.MaxRecordsPerRequest))
	}
	if c.Mode == ModeSingle && c.Compression != "" && c.Compression != "none" {
		errs = append(errs, errors.New("compression applies to batch mode; SIPhon's single requests are not compressed"))
	}
	return errors.Join(errs...)
}
