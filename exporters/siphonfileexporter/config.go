package siphonfileexporter

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/siphon-otel/siphon-otel/internal/record"
)

// Formats.
const (
	FormatJSON = "json"
	FormatCSV  = "csv"
)

// Fsync policies.
const (
	FsyncNever  = "never"  // leave it to the OS
	FsyncRotate = "rotate" // before a file is renamed away
	FsyncBatch  = "batch"  // after every batch: an acknowledged record is on disk
)

// Config is the siphon_file exporter's configuration. path and
// rotate_size_mb are SIPhon's cdr.file keys.
type Config struct {
	Path         string `mapstructure:"path"`
	Format       string `mapstructure:"format"`
	RotateSizeMB int    `mapstructure:"rotate_size_mb"`
	// Compress gzips rotated files (<path>.<timestamp>.gz).
	Compress bool `mapstructure:"compress"`
	// MaxFiles keeps at most this many rotated files, deleting the oldest;
	// 0 keeps them all, as SIPhon does.
	MaxFiles int    `mapstructure:"max_files"`
	Fsync    string `mapstructure:"fsync"`
	// Source of a CDR's JSON: "body" writes SIPhon's bytes as received;
	// "attributes" renders it from the attributes, so that processors that
	// redact or enrich attributes show in the file.
	Source record.Source `mapstructure:"source"`
	CSV    CSVConfig     `mapstructure:"csv"`

	exporterhelper.TimeoutConfig `mapstructure:",squash"`
	QueueConfig                  configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	RetryConfig                  configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// CSVConfig configures format: csv.
type CSVConfig struct {
	// ExtraColumns are script fields written as their own columns, after
	// the documented ones; other script fields go to the last column,
	// "extra", as a JSON object.
	ExtraColumns []string `mapstructure:"extra_columns"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("path must be set"))
	}
	if c.Format != FormatJSON && c.Format != FormatCSV {
		errs = append(errs, fmt.Errorf("format must be json or csv, got %q", c.Format))
	}
	if c.RotateSizeMB < 0 {
		errs = append(errs, fmt.Errorf("rotate_size_mb must not be negative, got %d", c.RotateSizeMB))
	}
	if c.MaxFiles < 0 {
		errs = append(errs, fmt.Errorf("max_files must not be negative, got %d", c.MaxFiles))
	}
	if (c.Compress || c.MaxFiles > 0) && c.RotateSizeMB == 0 {
		errs = append(errs, errors.New("compress and max_files need rotate_size_mb"))
	}
	switch c.Fsync {
	case FsyncNever, FsyncRotate, FsyncBatch:
	default:
		errs = append(errs, fmt.Errorf("fsync must be never, rotate or batch, got %q", c.Fsync))
	}
	if len(c.CSV.ExtraColumns) > 0 && c.Format != FormatCSV {
		errs = append(errs, errors.New("csv.extra_columns is set but format is not csv"))
	}
	return errors.Join(errs...)
}
