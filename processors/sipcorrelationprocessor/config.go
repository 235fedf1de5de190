package sipcorrelationprocessor

import (
	"errors"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/sipcorr"
)

// Config is the sip_correlation processor's configuration.
type Config struct {
	// Sources are tried in order on the first message of a Call-ID; the
	// first that finds a key wins. Empty: every Call-ID keys itself.
	Sources []sipcorr.Source `mapstructure:"sources"`
	// MaxCallIDs bounds the table of Call-IDs (of INVITE dialogs) and
	// their keys; the least recently used goes first.
	MaxCallIDs int `mapstructure:"max_call_ids"`
	// TTL is how long a Call-ID stays in the table without a record.
	TTL time.Duration `mapstructure:"ttl"`
}

// Validate checks the configuration; a bad source is named by its index.
func (c *Config) Validate() error {
	var errs []error
	if err := sipcorr.Validate(c.Sources); err != nil {
		errs = append(errs, err)
	}
	if c.MaxCallIDs < 1 {
		errs = append(errs, errors.New("max_call_ids must be at least 1"))
	}
	if c.TTL <= 0 {
		errs = append(errs, errors.New("ttl must be positive"))
	}
	return errors.Join(errs...)
}
