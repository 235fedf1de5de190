// Package siphoncdrreceiver receives SIPhon call detail records as SIPhon's
// http and syslog CDR backends send them, and emits one sip.cdr log record
// per CDR.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package siphoncdrreceiver
