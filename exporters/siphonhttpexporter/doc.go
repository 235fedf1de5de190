// Package siphonhttpexporter POSTs records as SIPhon's JSON to an HTTP
// endpoint: one record per request exactly as SIPhon's http CDR backend
// does, or batches as a JSON array or NDJSON.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package siphonhttpexporter
