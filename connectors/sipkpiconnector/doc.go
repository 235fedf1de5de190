// Package sipkpiconnector turns sip.cdr and sip.message log records into
// call KPI metrics: calls by result and final code, call duration (ACD),
// setup time and post-dial delay (PDD), per-transaction SIP counters that
// ignore retransmissions, and SIP scanner detections. Exemplars carry the
// call's trace and root span ids (internal/calltrace) and its Call-ID.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package sipkpiconnector
