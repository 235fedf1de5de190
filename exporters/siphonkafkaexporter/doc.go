// Package siphonkafkaexporter produces records to Kafka with
// github.com/segmentio/kafka-go: the value is SIPhon's JSON, the key the
// Call-ID (so one call stays in one partition), a topic per record kind.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package siphonkafkaexporter
