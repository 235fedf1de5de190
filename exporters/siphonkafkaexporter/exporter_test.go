package siphonkafkaexporter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/exporters/siphonkafkaexporter/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/pki"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/records"
	"github.com/siphon-otel/siphon-otel/internal/testenv/telemetry"
)

const waitFor = 30 * time.Second

func cluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, "siphon-cdr", "siphon-sip", "siphon-other")}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

type harness struct {
	exp     exporter.Logs
	tel     *componenttest.Telemetry
	metrics *telemetry.Reader // the exporter's own, by their names in metadata.yaml
}

func newKafka(t *testing.T, brokers []string, mutate func(*Config)) *harness {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Brokers = brokers
	cfg.Timeout = 5 * time.Second
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.InitialInterval = 50 * time.Millisecond
	cfg.RetryConfig.MaxInterval = 200 * time.Millisecond
	cfg.RetryConfig.MaxElapsedTime = waitFor
	mutate(cfg)
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := exportertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	exp, err := NewFactory().CreateLogs(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, exp.Shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	metrics, err := telemetry.NewReader(tel, "metadata.yaml")
	require.NoError(t, err)
	return &harness{exp: exp, tel: tel, metrics: metrics}
}

// consume reads n records from topic with a real Kafka client.
func consume(t *testing.T, brokers []string, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "only %d of %d records", len(out), n)
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch: %v", err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	load := func(name string) (*Config, error) {
		cfg := createDefaultConfig().(*Config)
		sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
		require.NoError(t, err)
		require.NoError(t, sub.Unmarshal(cfg))
		return cfg, confmap.Validate(cfg)
	}
	def, err := load("")
	require.NoError(t, err)
	assert.Equal(t, "all", def.RequiredAcks)
	assert.Equal(t, Topics{CDR: "siphon-cdr", SIPMessage: "siphon-sip", Other: "siphon-other"}, def.Topics)
	cfg, err := load("secure")
	require.NoError(t, err)
	assert.Equal(t, []string{"kafka-1.example.net:9093", "kafka-2.example.net:9093"}, cfg.Brokers)
	assert.Equal(t, Topics{CDR: "billing.cdr", SIPMessage: "capture.sip"}, cfg.Topics)
	assert.Equal(t, "zstd", cfg.Compression)
	assert.Equal(t, "/etc/otelcol/kafka-ca.pem", cfg.TLS.Get().CAFile)
	assert.Equal(t, "SCRAM-SHA-512", cfg.SASL.Get().Mechanism)
	assert.Equal(t, 50*time.Millisecond, cfg.BatchTimeout)
	_, err = load("bad")
	for _, want := range []string{"brokers must list at least one", "topics.cdr and topics.sip_message must be set",
		`required_acks must be all, one or none, got "most"`, `compression must be none, gzip, snappy, lz4 or zstd, got "brotli"`,
		"batch_size must be at least 1", "batch_bytes must be at least 1024", "batch_timeout must be positive",
		`source: must be "body" or "attributes", got "cache"`, `sasl: mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got "GSSAPI"`,
		"sasl: username must be set"} {
		assert.ErrorContains(t, err, want)
	}
}

func TestTopicsKeysHeadersValues(t *testing.T) {
	c := cluster(t)
	brokers := c.ListenAddrs()
	h := newKafka(t, brokers, func(cfg *Config) { cfg.Compression = "gzip" })
	ld := records.NodeCDRs(t, "sbc-1", "a84b4c76e66710@192.168.1.100", "call-2", "call-3")
	sip := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	sip.SetEventName(record.EventSIPMessage)
	sip.Body().SetStr("BYE sip:x SIP/2.0\r\n\r\n")
	sip.Attributes().PutStr(record.AttrSIPCallID, "call-2")
	require.NoError(t, h.exp.ConsumeLogs(context.Background(), ld))

	cdrs := consume(t, brokers, "siphon-cdr", 3) // across partitions: in no set order
	for _, r := range cdrs {
		if string(r.Key) == "a84b4c76e66710@192.168.1.100" {
			assert.Equal(t, string(fixture.CDR()), string(r.Value), "SIPhon's JSON as the value")
		}
		parsed, err := cdr.Parse(r.Value)
		require.NoError(t, err)
		assert.Equal(t, parsed.CallID(), string(r.Key), "keyed by Call-ID")
		assert.Equal(t, "cdr", header(r, HeaderKind))
		assert.Equal(t, "sbc-1", header(r, HeaderNode))
	}
	sips := consume(t, brokers, "siphon-sip", 1)
	assert.Equal(t, "call-2", string(sips[0].Key))
	assert.Equal(t, "sip_message", header(sips[0], HeaderKind))
	assert.Contains(t, string(sips[0].Value), `"event":"sip.message","call_id":"call-2"`)
	assert.Equal(t, int64(3), h.metrics.Sum(t, "siphon_kafka_exporter_messages_produced", attribute.String("topic", "siphon-cdr")))
}

func TestOneCallOnePartition(t *testing.T) {
	c := cluster(t)
	brokers := c.ListenAddrs()
	h := newKafka(t, brokers, func(*Config) {})
	var ids []string
	for i := range 300 {
		ids = append(ids, "call-"+strconv.Itoa(i%30)) // 30 calls, 10 records each
	}
	require.NoError(t, h.exp.ConsumeLogs(context.Background(), records.NodeCDRs(t, "", ids...)))
	partitionOf := map[string]int32{}
	used := map[int32]bool{}
	for _, r := range consume(t, brokers, "siphon-cdr", 300) {
		if p, ok := partitionOf[string(r.Key)]; ok {
			assert.Equal(t, p, r.Partition, "every record of %s in one partition", r.Key)
		}
		partitionOf[string(r.Key)] = r.Partition
		used[r.Partition] = true
	}
	assert.Len(t, partitionOf, 30)
	assert.Len(t, used, 3, "calls spread over the partitions")
}

func TestBrokerOutageLosesNothing(t *testing.T) {
	port := ports.Port(t)
	first, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(3, "siphon-cdr"))
	require.NoError(t, err)
	brokers := first.ListenAddrs()
	h := newKafka(t, brokers, func(*Config) {})
	require.NoError(t, h.exp.ConsumeLogs(context.Background(), records.NodeCDRs(t, "", "before-1", "before-2")))
	assert.Len(t, consume(t, brokers, "siphon-cdr", 2), 2)
	first.Close() // the broker goes away

	done := make(chan error, 1)
	go func() {
		done <- h.exp.ConsumeLogs(context.Background(), records.NodeCDRs(t, "", "during-1", "during-2", "during-3"))
	}()
	time.Sleep(time.Second) // writes fail and are retried meanwhile
	second, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(3, "siphon-cdr"))
	require.NoError(t, err)
	defer second.Close()
	require.NoError(t, <-done)
	var got []string
	for _, r := range consume(t, brokers, "siphon-cdr", 3) {
		got = append(got, string(r.Key))
	}
	assert.ElementsMatch(t, []string{"during-1", "during-2", "during-3"}, got)
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c := cluster(t, kfake.EnableSASL(), kfake.Superuser(mech, "otel", "s3cret"))
			brokers := c.ListenAddrs()
			h := newKafka(t, brokers, func(cfg *Config) {
				cfg.SASL = configoptional.Some(SASLConfig{Mechanism: mech, Username: "otel", Password: "s3cret"})
			})
			require.NoError(t, h.exp.ConsumeLogs(context.Background(), records.NodeCDRs(t, "", "sasl-"+mech)))
			var auth kgo.Opt
			switch mech {
			case "PLAIN":
				auth = kgo.SASL(plainAuth("otel", "s3cret"))
			default:
				auth = kgo.SASL(scramAuth(mech, "otel", "s3cret"))
			}
			recs := consume(t, brokers, "siphon-cdr", 1, auth)
			assert.Equal(t, "sasl-"+mech, string(recs[0].Key))
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		c := cluster(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "otel", "s3cret"))
		h := newKafka(t, c.ListenAddrs(), func(cfg *Config) {
			cfg.SASL = configoptional.Some(SASLConfig{Mechanism: "PLAIN", Username: "otel", Password: "wrong"})
			cfg.RetryConfig.Enabled = false
		})
		// the broker hangs up on a failed authentication: the send fails,
		// so the records are kept for retry, and nothing counts as produced
		err := h.exp.ConsumeLogs(context.Background(), records.NodeCDRs(t, "", "x"))
		require.Error(t, err)
		assert.Zero(t, h.metrics.Sum(t, "siphon_kafka_exporter_messages_produced"))
	})
}

func TestTLS(t *testing.T) {
	certs := pki.New(t)
	cert, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	require.NoError(t, err)
	c := cluster(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	brokers := c.ListenAddrs()
	h := newKafka(t, brokers, func(cfg *Config) {
		tc := configtls.NewDefaultClientConfig()
		tc.CAFile = certs.CAFile
		cfg.TLS = configoptional.Some(tc)
	})
	require.NoError(t, h.exp.ConsumeLogs(context.Background(), records.NodeCDRs(t, "", "over-tls")))
	ca, err := os.ReadFile(certs.CAFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	recs := consume(t, brokers, "siphon-cdr", 1, kgo.DialTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))
	assert.Equal(t, "over-tls", string(recs[0].Key))
}
