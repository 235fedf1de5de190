// Package hepreceiver receives HEP (Homer Encapsulation Protocol) v1, v2 and
// v3 over UDP, TCP and TLS and emits one log record per packet.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package hepreceiver
