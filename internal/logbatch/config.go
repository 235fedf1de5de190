package logbatch

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/siphon-otel/siphon-otel/internal/record"
)

// Config is a receiver's `batch` block: how records are grouped before
// they are handed to the pipeline.
type Config struct {
	// MaxSize is the largest number of records per ConsumeLogs call.
	MaxSize int `mapstructure:"max_size"`
	// Timeout is the longest a record waits for its batch to fill.
	Timeout time.Duration `mapstructure:"timeout"`
}

// Validate checks the block; the collector calls it for the receiver.
func (c Config) Validate() error {
	var errs []error
	if c.MaxSize < 1 {
		errs = append(errs, fmt.Errorf("max_size must be at least 1, got %d", c.MaxSize))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout must be positive, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

// ResourceConfig is a receiver's `resource` block. Records are grouped by
// sending node (each receiver says what identifies one); every node's
// resource has service.name, service.instance.id = the node, the common
// attributes, then the node's own.
type ResourceConfig struct {
	ServiceName string `mapstructure:"service_name"`
	// Attributes are added to every resource.
	Attributes map[string]string `mapstructure:"attributes"`
	// Nodes adds or overrides attributes per node, keyed by the node's
	// identity, e.g. {"10.0.0.5": {"service.instance.id": "sbc-1",
	// "host.name": "sbc-1"}}.
	Nodes map[string]map[string]string `mapstructure:"nodes"`
}

// DefaultResource is the resource block receivers start from.
func DefaultResource() ResourceConfig {
	return ResourceConfig{ServiceName: record.DefaultServiceName}
}

// Validate checks the block; the collector calls it for the receiver.
func (c ResourceConfig) Validate() error {
	if c.ServiceName == "" {
		return errors.New("service_name must not be empty")
	}
	return nil
}

// Fill sets the resource attributes of node's records.
func (c ResourceConfig) Fill(attrs pcommon.Map, node string) {
	attrs.PutStr(record.AttrServiceName, c.ServiceName)
	if node != "" {
		attrs.PutStr(record.AttrServiceInstanceID, node)
	}
	for k, v := range c.Attributes {
		attrs.PutStr(k, v)
	}
	for k, v := range c.Nodes[node] {
		attrs.PutStr(k, v)
	}
}
