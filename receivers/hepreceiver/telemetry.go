package hepreceiver

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver/internal/metadata"
)

// transportTelemetry records the receiver's own metrics for one transport.
type transportTelemetry struct {
	tel       *metadata.TelemetryBuilder
	transport attribute.KeyValue
	set       metric.MeasurementOption
	// once per packet: a variadic call would allocate its option slice each time
	addOpts []metric.AddOption
}

func newTransportTelemetry(tel *metadata.TelemetryBuilder, transport string) *transportTelemetry {
	kv := attribute.String("transport", transport)
	set := metric.WithAttributeSet(attribute.NewSet(kv))
	return &transportTelemetry{tel: tel, transport: kv, set: set, addOpts: []metric.AddOption{set}}
}

func (t *transportTelemetry) withReason(reason string) metric.MeasurementOption {
	return t.withAttr("reason", reason)
}

func (t *transportTelemetry) withAttr(key, value string) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(t.transport, attribute.String(key, value)))
}

func (t *transportTelemetry) received() {
	t.tel.HepReceiverPacketsReceived.Add(context.Background(), 1, t.addOpts...)
}

func (t *transportTelemetry) malformed(reason string) {
	t.tel.HepReceiverPacketsMalformed.Add(context.Background(), 1, t.withReason(reason))
}

func (t *transportTelemetry) mediaUnreadable(reason string) {
	t.tel.HepReceiverMediaUnreadable.Add(context.Background(), 1, t.withReason(reason))
}

func (t *transportTelemetry) dropped(reason string, n int) {
	t.tel.HepReceiverPacketsDropped.Add(context.Background(), int64(n), t.withReason(reason))
}

func (t *transportTelemetry) retry() {
	t.tel.HepReceiverBackpressureRetries.Add(context.Background(), 1, t.set)
}

func (t *transportTelemetry) connections(delta int64) {
	t.tel.HepReceiverConnectionsActive.Add(context.Background(), delta, t.set)
}

func (t *transportTelemetry) closed(reason string) {
	t.tel.HepReceiverConnectionsClosed.Add(context.Background(), 1, t.withReason(reason))
}

func (t *transportTelemetry) rejected(reason string) {
	t.tel.HepReceiverConnectionsRejected.Add(context.Background(), 1, t.withReason(reason))
}

func (t *transportTelemetry) listenerError(outcome string) {
	t.tel.HepReceiverListenerErrors.Add(context.Background(), 1, t.withAttr("outcome", outcome))
}
