package siphoncdrreceiver

import (
	"context"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/logbatch"
	"github.com/siphon-otel/siphon-otel/receivers/siphoncdrreceiver/internal/metadata"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
)

// Defaults listen on loopback; 5514 because 514 needs privileges, 6514 is
// syslog over TLS (RFC 5425).
const (
	defaultHTTPEndpoint      = "127.0.0.1:8082"
	defaultSyslogEndpoint    = "127.0.0.1:5514"
	defaultSyslogTLSEndpoint = "127.0.0.1:6514"
	defaultPath              = "/v1/cdr"
)

// Default limits: every listener bounds what a sender may hold (README,
// "Limits and security").
const (
	// SIPhon posts one record of 0.6 to 1 KB per request. Batches (the
	// siphon_http exporter sends 1,000 records; a group commit takes as
	// many) are allowed 2 KiB a record: room for long URIs and script
	// fields.
	defaultMaxRecordsPerRequest = 1000
	recordAllowance             = 2 << 10
	defaultMaxRequestBodySize   = defaultMaxRecordsPerRequest * recordAllowance // 2,048,000 bytes
	// 32 batches of the largest size, or some 20,000 SIPhon posts waiting
	// for the pipeline (each holds ~3 KiB: its body and its record).
	defaultMaxInFlightBytes = 64 << 20
	// A SIPhon post is one small packet: 10 s for its headers and 30 s for
	// the whole request leave a 2 MiB batch 70 KB/s.
	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = 30 * time.Second
	// From the end of the headers to the end of the answer: the body's
	// read, then the pipeline's answer.
	defaultWriteTimeout = 60 * time.Second
	// A kept-alive HTTP connection and a syslog stream that sent no
	// complete message are closed after a minute. Syslog senders that keep
	// a connection (rsyslog, syslog-ng; SIPhon's syslog is UDP) open a new
	// one with their next message, so at worst a quiet sender reconnects
	// once a minute, while slots that a client holds without sending come
	// back within a minute.
	defaultIdleTimeout    = time.Minute
	defaultMaxConnections = 256
	defaultMaxMessageSize = 64 << 10
	defaultReadBufferSize = 4 << 20
	defaultRetryAfter     = 5 * time.Second
)

// defaultCompressionAlgorithms are the decoders whose memory is small and
// fixed. zstd, lz4 and snappy are left out: zstd's and lz4's decoders take
// windows and blocks of several MiB that the sender chooses, and snappy's
// block format is read whole before the handler (and its auth check) runs;
// max_in_flight_bytes sees none of it. SIPhon does not compress.
func defaultCompressionAlgorithms() []string { return []string{"", "gzip", "zlib", "deflate"} }

// NewFactory returns the siphon_cdr receiver factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = defaultHTTPEndpoint
	server.MaxRequestBodySize = defaultMaxRequestBodySize
	server.ReadHeaderTimeout = defaultReadHeaderTimeout
	server.ReadTimeout = defaultReadTimeout
	server.WriteTimeout = defaultWriteTimeout
	server.IdleTimeout = defaultIdleTimeout
	server.CompressionAlgorithms = defaultCompressionAlgorithms()
	stream := func(endpoint string) SyslogTCPConfig {
		return SyslogTCPConfig{Endpoint: endpoint, MaxConnections: defaultMaxConnections, IdleTimeout: defaultIdleTimeout}
	}
	return &Config{
		HTTP: configoptional.Default(HTTPConfig{
			ServerConfig: server, Path: defaultPath, MaxRecordsPerRequest: defaultMaxRecordsPerRequest,
			MaxInFlightBytes: defaultMaxInFlightBytes, RetryAfter: defaultRetryAfter,
		}),
		Syslog: configoptional.Default(SyslogConfig{
			UDP:            configoptional.Default(SyslogUDPConfig{Endpoint: defaultSyslogEndpoint, ReadBufferSize: defaultReadBufferSize}),
			TCP:            configoptional.Default(stream(defaultSyslogEndpoint)),
			TLS:            configoptional.Default(SyslogTLSConfig{SyslogTCPConfig: stream(defaultSyslogTLSEndpoint)}),
			MaxMessageSize: defaultMaxMessageSize,
		}),
		Batch:    logbatch.Config{MaxSize: 512, Timeout: 5 * time.Millisecond},
		Resource: logbatch.DefaultResource(),
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(set, cfg.(*Config), next)
}
