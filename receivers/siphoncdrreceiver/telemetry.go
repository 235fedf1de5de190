package siphoncdrreceiver

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/siphon-otel/siphon-otel/receivers/siphoncdrreceiver/internal/metadata"
)

// Transport names, also the obsreport transport label.
const (
	transportHTTP      = "http"
	transportSyslogUDP = "syslog_udp"
	transportSyslogTCP = "syslog_tcp"
	transportSyslogTLS = "syslog_tls"
)

// transportTelemetry records the receiver's own metrics for one transport.
type transportTelemetry struct {
	tel       *metadata.TelemetryBuilder
	name      string
	transport attribute.KeyValue
	set       metric.MeasurementOption
}

func newTransportTelemetry(tel *metadata.TelemetryBuilder, transport string) *transportTelemetry {
	kv := attribute.String("transport", transport)
	return &transportTelemetry{tel: tel, name: transport, transport: kv, set: metric.WithAttributeSet(attribute.NewSet(kv))}
}

func (t *transportTelemetry) withReason(reason string) metric.MeasurementOption {
	return t.withAttr("reason", reason)
}

func (t *transportTelemetry) withAttr(key, value string) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(t.transport, attribute.String(key, value)))
}

func (t *transportTelemetry) malformed(reason string) {
	t.tel.SiphonCdrReceiverRecordsMalformed.Add(context.Background(), 1, t.withReason(reason))
}

func (t *transportTelemetry) dropped(reason string, n int) {
	t.tel.SiphonCdrReceiverRecordsDropped.Add(context.Background(), int64(n), t.withReason(reason))
}

func (t *transportTelemetry) connections(delta int64) {
	t.tel.SiphonCdrReceiverConnectionsActive.Add(context.Background(), delta, t.set)
}

func (t *transportTelemetry) rejected(reason string) {
	t.tel.SiphonCdrReceiverConnectionsRejected.Add(context.Background(), 1, t.withReason(reason))
}

// refused counts an HTTP request refused.
func (t *transportTelemetry) refused(reason string) {
	t.tel.SiphonCdrReceiverRequestsRefused.Add(context.Background(), 1, t.withReason(reason))
}

func (t *transportTelemetry) inFlight(delta int64) {
	t.tel.SiphonCdrReceiverBytesInFlight.Add(context.Background(), delta, t.set)
}

func (t *transportTelemetry) timedOut() {
	t.tel.SiphonCdrReceiverConnectionsTimedOut.Add(context.Background(), 1, t.set)
}

func (t *transportTelemetry) datagramRefused(reason string) {
	t.tel.SiphonCdrReceiverDatagramsRefused.Add(context.Background(), 1, t.withReason(reason))
}

func (t *transportTelemetry) retry() {
	t.tel.SiphonCdrReceiverBackpressureRetries.Add(context.Background(), 1, t.set)
}

func (t *transportTelemetry) listenerError(outcome string) {
	t.tel.SiphonCdrReceiverListenerErrors.Add(context.Background(), 1, t.withAttr("outcome", outcome))
}
