// Package sipcallconnector turns sip.message and sip.cdr log records into
// traces: one trace per SIP call (a root span, a span per SIP transaction
// per hop and capturing node, a span per B2BUA leg), one per out-of-dialog
// transaction, with deterministic ids (internal/calltrace), as
// docs/call-traces.md designs them.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package sipcallconnector
