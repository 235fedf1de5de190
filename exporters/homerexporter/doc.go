// Package homerexporter sends log records to Homer (or any HEP capture
// node) as HEP3 packets over UDP, TCP or TLS.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package homerexporter
