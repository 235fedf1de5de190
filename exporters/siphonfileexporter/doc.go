// Package siphonfileexporter writes records as JSON Lines identical to
// SIPhon's CDR file backend (or as CSV), rotating by size with SIPhon's
// file naming.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package siphonfileexporter
