package sipcorrelationprocessor

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
	"github.com/siphon-otel/siphon-otel/internal/testenv/pinned"
	"github.com/siphon-otel/siphon-otel/internal/testenv/telemetry"
	"github.com/siphon-otel/siphon-otel/processors/sipcorrelationprocessor/internal/metadata"
)

// sipText is a SIP message of Call-ID callID: a request when first is a
// method, else a response with that status to method.
func sipText(first, method, callID, toTag string, extra ...string) string {
	start := first + " sip:bob@127.0.0.1 SIP/2.0"
	if first[0] >= '1' && first[0] <= '6' {
		start = "SIP/2.0 " + first + " Whatever"
	}
	to := "To: <sip:bob@127.0.0.1>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	lines := append([]string{start, "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-" + callID + first,
		"From: <sip:alice@127.0.0.1>;tag=ft", to, "Call-ID: " + callID, "CSeq: 1 " + method}, extra...)
	return strings.Join(lines, "\r\n") + "\r\nContent-Length: 0\r\n\r\n"
}

// logs holds records as the hep and siphon_cdr receivers make them.
type logs struct {
	ld plog.Logs
	sl plog.ScopeLogs
}

func newLogs() *logs {
	ld := plog.NewLogs()
	return &logs{ld: ld, sl: ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()}
}

func (l *logs) sip(text string) *logs {
	p := hep.Packet{Version: 3, Fields: hep.HasProtoType | hep.HasSrcIP | hep.HasDstIP, ProtoType: hep.TypeSIP,
		SrcIP: netip.MustParseAddr("127.0.0.1"), DstIP: netip.MustParseAddr("127.0.0.2"), Payload: []byte(text)}
	heprecord.FromHEP(&p, p.Payload, false, time.Now(), l.sl.LogRecords().AppendEmpty())
	return l
}

func (l *logs) cdr(callID string) *logs {
	lr := l.sl.LogRecords().AppendEmpty()
	lr.SetEventName(record.EventCDR)
	lr.Attributes().PutStr(record.AttrSIPCallID, callID)
	return l
}

type harness struct {
	proc processor.Logs
	sink *consumertest.LogsSink
	tel  *telemetry.Reader
}

func start(t *testing.T, cfg *Config) *harness {
	t.Helper()
	sink := new(consumertest.LogsSink)
	h := startTo(t, cfg, sink)
	h.sink = sink
	return h
}

// startTo runs the processor into next (sink stays nil unless it is one).
func startTo(t *testing.T, cfg *Config, next consumer.Logs) *harness {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	proc, err := NewFactory().CreateLogs(context.Background(), set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, proc.Shutdown(context.Background())) })
	r, err := telemetry.NewReader(tel, "metadata.yaml")
	require.NoError(t, err)
	return &harness{proc: proc, tel: r}
}

// keys returns the sip.correlation_id of every record that came out, in
// order ("" for none).
func (h *harness) keys() []string {
	var out []string
	for _, ld := range h.sink.AllLogs() {
		for _, it := range record.All(ld) {
			v, _ := it.Log.Attributes().Get(record.AttrSIPCorrelationID)
			out = append(out, v.Str())
		}
	}
	return out
}

func source(s string) attribute.KeyValue { return attribute.String("source", s) }

// TestB2BUA: both legs of a B2BUA call, the b-leg's INVITE naming the
// a-leg's Call-ID in X-CID, come out keyed by the a-leg's Call-ID, the
// b-leg's later messages and CDR from the table; the counters say how.
func TestB2BUA(t *testing.T) {
	h := start(t, createDefaultConfig().(*Config))
	batches := []*logs{
		newLogs().sip(sipText("INVITE", "INVITE", "A", "")).sip(sipText("INVITE", "INVITE", "B", "", "X-CID: A")),
		newLogs().sip(sipText("180", "INVITE", "B", "bt")).sip(sipText("200", "INVITE", "B", "bt")).
			sip(sipText("200", "INVITE", "A", "at")).sip(sipText("BYE", "BYE", "B", "bt")),
		newLogs().cdr("B").cdr("A"),
	}
	for _, b := range batches {
		require.NoError(t, h.proc.ConsumeLogs(context.Background(), b.ld))
	}
	assert.Equal(t, []string{"A", "A", "A", "A", "A", "A", "A", "A"}, h.keys())
	assert.Equal(t, int64(1), h.tel.Sum(t, "sip_correlation_records", source("header")))
	assert.Equal(t, int64(4), h.tel.Sum(t, "sip_correlation_records", source("table")), "the b-leg's 180, 200, BYE and CDR")
	assert.Equal(t, int64(3), h.tel.Sum(t, "sip_correlation_records", source("call_id")), "the a-leg's INVITE, 200 and CDR")
	assert.Equal(t, int64(8), h.tel.Sum(t, "sip_correlation_records"))
	assert.Equal(t, int64(2), h.tel.Sum(t, "sip_correlation_table_entries"))
	assert.Zero(t, h.tel.Sum(t, "sip_correlation_records_late"))
	assert.Zero(t, h.tel.Sum(t, "sip_correlation_table_evictions"))
	assert.Zero(t, h.tel.Sum(t, "sip_correlation_malformed"))
}

// TestBoundsAndBadInput: a table of one Call-ID; the evicted call's later
// records key themselves and are counted late; malformed headers are
// counted by source and the record keys itself; records of other events
// pass as they came.
func TestBoundsAndBadInput(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.MaxCallIDs = 1
	h := start(t, cfg)
	in := newLogs().
		sip(sipText("INVITE", "INVITE", "B1", "", "X-CID: A1")).
		sip(sipText("INVITE", "INVITE", "B2", "", "Session-ID: not-a-uuid", "P-Charging-Vector: orig-ioi=x")).
		sip(sipText("BYE", "BYE", "B1", "t1")).
		cdr("B1")
	rtcp := in.sl.LogRecords().AppendEmpty()
	rtcp.SetEventName("hep.rtcp")
	rtcp.Body().SetStr("rtcp")
	require.NoError(t, h.proc.ConsumeLogs(context.Background(), in.ld))
	assert.Equal(t, []string{"A1", "B2", "B1", "B1", ""}, h.keys())
	assert.Equal(t, int64(2), h.tel.Sum(t, "sip_correlation_records_late"), "B1's BYE and CDR")
	assert.Equal(t, int64(1), h.tel.Sum(t, "sip_correlation_table_evictions", attribute.String("reason", "capacity")))
	assert.Equal(t, int64(1), h.tel.Sum(t, "sip_correlation_table_entries"))
	assert.Equal(t, int64(1), h.tel.Sum(t, "sip_correlation_malformed", source("session_id")))
	assert.Equal(t, int64(1), h.tel.Sum(t, "sip_correlation_malformed", source("p_charging_vector")))
	assert.Equal(t, int64(4), h.tel.Sum(t, "sip_correlation_records"), "the rtcp record is not counted")
	out := h.sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(4)
	assert.Equal(t, "rtcp", out.Body().Str())
	assert.Zero(t, out.Attributes().Len())
}

// TestTableKeepsNoMessage: the Call-ID table keeps no record's message
// alive: its keys and values are copies, not slices of the messages.
func TestTableKeepsNoMessage(t *testing.T) {
	h := startTo(t, createDefaultConfig().(*Config), consumertest.NewNop())
	ld := pinned.Calls(t, 100)
	bodies := pinned.Watch(ld)
	require.NoError(t, h.proc.ConsumeLogs(context.Background(), ld))
	ld = plog.Logs{}
	require.GreaterOrEqual(t, h.tel.Sum(t, "sip_correlation_table_entries"), int64(100), "the b-legs at least")
	assert.Empty(t, bodies.Reachable(), "messages still reachable, of %d", bodies.Len())
}
