package siphonkafkaexporter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/siphon-otel/siphon-otel/exporters/siphonkafkaexporter/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/logexport"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/recordjson"
)

// Message headers.
const (
	HeaderKind = "kind" // cdr, sip_message or other
	HeaderNode = "node" // the resource's service.instance.id
)

type kafkaExporter struct {
	cfg       *Config
	logger    *zap.Logger // rate-limited
	tel       *metadata.TelemetryBuilder
	transport *kafka.Transport
	w         *kafka.Writer
}

func newExporter(set exporter.Settings, cfg *Config) (*kafkaExporter, error) {
	tel, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("siphon_kafka exporter: telemetry: %w", err)
	}
	return &kafkaExporter{
		cfg: cfg, tel: tel,
		logger: logexport.SampledLogger(set.Logger),
	}, nil
}

func (e *kafkaExporter) start(ctx context.Context, _ component.Host) error {
	e.transport = &kafka.Transport{
		ClientID: e.cfg.ClientID, DialTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second, MetadataTTL: 10 * time.Second,
	}
	if t := e.cfg.TLS.Get(); t != nil {
		tlsCfg, err := logexport.ClientTLS(ctx, *t)
		if err != nil {
			return fmt.Errorf("siphon_kafka exporter: %w", err)
		}
		e.transport.TLS = tlsCfg
	}
	if s := e.cfg.SASL.Get(); s != nil {
		mech, err := mechanism(s)
		if err != nil {
			return fmt.Errorf("siphon_kafka exporter: sasl: %w", err)
		}
		e.transport.SASL = mech
	}
	acks := map[string]kafka.RequiredAcks{"all": kafka.RequireAll, "one": kafka.RequireOne, "none": kafka.RequireNone}[e.cfg.RequiredAcks]
	compression := map[string]kafka.Compression{"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd}[e.cfg.Compression]
	e.w = &kafka.Writer{
		Addr: kafka.TCP(e.cfg.Brokers...),
		// the Java client's default partitioner: same key, same partition
		Balancer:     &kafka.Murmur2Balancer{},
		MaxAttempts:  3,
		BatchSize:    e.cfg.BatchSize,
		BatchBytes:   e.cfg.BatchBytes,
		BatchTimeout: e.cfg.BatchTimeout,
		ReadTimeout:  e.cfg.Timeout, WriteTimeout: e.cfg.Timeout,
		RequiredAcks: acks, Compression: compression,
		Transport:              e.transport,
		AllowAutoTopicCreation: e.cfg.AllowAutoTopicCreation,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			e.logger.Warn("kafka: " + fmt.Sprintf(msg, args...))
		}),
	}
	return nil
}

func mechanism(s *SASLConfig) (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "PLAIN":
		return plain.Mechanism{Username: s.Username, Password: string(s.Password)}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, s.Username, string(s.Password))
	case "SCRAM-SHA-512":
		return scram.Mechanism(scram.SHA512, s.Username, string(s.Password))
	}
	return nil, fmt.Errorf("unknown mechanism %q", s.Mechanism)
}

func (e *kafkaExporter) shutdown(context.Context) error {
	var err error
	if e.w != nil {
		err = e.w.Close()
	}
	if e.transport != nil {
		e.transport.CloseIdleConnections()
	}
	e.tel.Shutdown()
	return err
}

func (e *kafkaExporter) topic(k record.Kind) string {
	switch k {
	case record.KindCDR:
		return e.cfg.Topics.CDR
	case record.KindSIPMessage:
		return e.cfg.Topics.SIPMessage
	}
	return e.cfg.Topics.Other
}

func (e *kafkaExporter) dropped(ctx context.Context, reason string, n int) {
	e.tel.SiphonKafkaExporterRecordsDropped.Add(ctx, int64(n), metric.WithAttributes(attribute.String("reason", reason)))
}

// pushLogs produces one message per record and waits for the acks. When
// some messages fail, only the records behind retriable failures are handed
// back; permanent failures (a message too large, say) are counted.
func (e *kafkaExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	var (
		msgs []kafka.Message
		recs []int // record index of each message
	)
	for i, r := range record.All(ld) {
		kind := record.KindOf(r.Log)
		topic := e.topic(kind)
		if topic == "" {
			e.dropped(ctx, "no_topic", 1)
			continue
		}
		value, err := recordjson.Append(nil, r.Log, r.Resource, e.cfg.Source)
		if err != nil {
			e.dropped(ctx, "render_error", 1)
			e.logger.Warn("record cannot be rendered; dropped", zap.Error(err))
			continue
		}
		m := kafka.Message{Topic: topic, Value: value, Headers: []kafka.Header{{Key: HeaderKind, Value: []byte(kind)}}}
		if id := record.CallID(r.Log); id != "" {
			m.Key = []byte(id)
		}
		if node := record.Node(r.Resource); node != "" {
			m.Headers = append(m.Headers, kafka.Header{Key: HeaderNode, Value: []byte(node)})
		}
		msgs = append(msgs, m)
		recs = append(recs, i)
	}
	if len(msgs) == 0 {
		return nil
	}
	err := e.w.WriteMessages(ctx, msgs...)
	var werrs kafka.WriteErrors
	if err != nil && !errors.As(err, &werrs) {
		return fmt.Errorf("siphon_kafka exporter: %w", err) // nothing is known written: retry all
	}
	retry := map[int]bool{}
	var firstErr error
	for i, m := range msgs {
		var merr error
		if werrs != nil {
			merr = werrs[i]
		}
		switch {
		case merr == nil:
			e.tel.SiphonKafkaExporterMessagesProduced.Add(ctx, 1, metric.WithAttributes(attribute.String("topic", m.Topic)))
		case permanent(merr):
			e.dropped(ctx, "broker_refused", 1)
			e.logger.Error("Kafka refused a message for good; dropped", zap.String("topic", m.Topic), zap.Error(merr))
		default:
			retry[recs[i]] = true
			if firstErr == nil {
				firstErr = merr
			}
		}
	}
	if len(retry) == 0 {
		return nil
	}
	return logexport.Retry(fmt.Errorf("siphon_kafka exporter: %d of %d messages failed: %w", len(retry), len(msgs), firstErr),
		ld, func(i int) bool { return retry[i] })
}

// permanent tells errors that resending cannot fix.
func permanent(err error) bool {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke {
	case kafka.MessageSizeTooLarge, kafka.InvalidMessage, kafka.InvalidMessageSize, kafka.InvalidTopic,
		kafka.RecordListTooLarge, kafka.TopicAuthorizationFailed, kafka.InvalidRecord:
		return true
	}
	return false
}
