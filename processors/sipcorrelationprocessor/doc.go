// Package sipcorrelationprocessor writes a call's correlation key,
// sip.correlation_id, on its sip.message and sip.cdr records
// (docs/call-traces.md, section 1; the logic is internal/sipcorr), so that
// every record of a call, a B2BUA's legs included, groups and routes as one.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package sipcorrelationprocessor
