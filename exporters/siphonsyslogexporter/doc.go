// Package siphonsyslogexporter sends records as syslog messages: by default
// SIPhon's exact CDR line "<134>1 {timestamp} siphon cdr - - - {json}",
// or RFC 3164, over UDP, TCP (octet counting or newline framing) or TLS.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package siphonsyslogexporter
