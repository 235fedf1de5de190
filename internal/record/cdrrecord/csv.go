package cdrrecord

import (
	"bytes"
	"encoding/csv"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/record"
)

// CSV renders sip.cdr records as CSV rows (RFC 4180 quoting). The columns
// are the documented keys in SIPhon's order, then one column per configured
// extra key, then "extra": a JSON object of any remaining script fields, so
// nothing is lost. Null and absent values are empty cells.
type CSV struct {
	ExtraColumns []string
}

// Header returns the column names.
func (c CSV) Header() []string {
	h := make([]string, 0, len(cdr.Fields)+len(c.ExtraColumns)+1)
	for _, f := range cdr.Fields {
		h = append(h, f.Key)
	}
	h = append(h, c.ExtraColumns...)
	return append(h, "extra")
}

// AppendHeader appends the header line.
func (c CSV) AppendHeader(dst []byte) []byte {
	return appendCSV(dst, c.Header())
}

// AppendRow appends one record's line.
func (c CSV) AppendRow(dst []byte, lr plog.LogRecord) ([]byte, error) {
	if lr.EventName() != record.EventCDR {
		return dst, ErrNotCDR
	}
	attrs := lr.Attributes()
	row := make([]string, 0, len(cdr.Fields)+len(c.ExtraColumns)+1)
	for i, f := range cdr.Fields {
		if f.Key == "timestamp" {
			row = append(row, cdr.FormatTime(lr.Timestamp().AsTime()))
			continue
		}
		v, ok := attrs.Get(Attrs[i])
		row = append(row, cell(v, ok))
	}
	for _, k := range c.ExtraColumns {
		v, ok := attrs.Get(record.AttrCDRExtraPrefix + k)
		row = append(row, cell(v, ok))
	}
	var rest []byte
	for k, v := range attrs.All() {
		name, ok := strings.CutPrefix(k, record.AttrCDRExtraPrefix)
		if !ok || slices.Contains(c.ExtraColumns, name) {
			continue
		}
		if rest == nil {
			rest = append(rest, '{')
		} else {
			rest = append(rest, ',')
		}
		rest = cdr.AppendString(rest, name)
		rest = append(rest, ':')
		rest = AppendValue(rest, v)
	}
	if rest != nil {
		rest = append(rest, '}')
	}
	row = append(row, string(rest))
	return appendCSV(dst, row), nil
}

func cell(v pcommon.Value, ok bool) string {
	if !ok {
		return ""
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return strconv.FormatInt(v.Int(), 10)
	case pcommon.ValueTypeDouble:
		return string(cdr.AppendFloat(nil, v.Double()))
	case pcommon.ValueTypeEmpty:
		return ""
	}
	return v.AsString()
}

func appendCSV(dst []byte, row []string) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(row) // writes to memory cannot fail
	w.Flush()
	return append(dst, b.Bytes()...)
}
