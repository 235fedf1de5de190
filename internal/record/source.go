package record

import "fmt"

// Source says where an exporter takes a CDR's JSON from: the exporters'
// `source` option.
type Source string

const (
	// SourceBody writes the bytes SIPhon sent, as received (the record's
	// body); a record whose body is not a JSON object falls back to its
	// attributes.
	SourceBody Source = "body"
	// SourceAttributes renders the JSON from the attributes, so that changes
	// made in the pipeline (a transform processor, say) reach the output.
	SourceAttributes Source = "attributes"
)

// Validate checks the option's value; the collector calls it for every
// config field of this type.
func (s Source) Validate() error {
	if s != SourceBody && s != SourceAttributes {
		return fmt.Errorf("must be %q or %q, got %q", SourceBody, SourceAttributes, string(s))
	}
	return nil
}
