package jaegerapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// response is what Jaeger v1.76.0's /api/traces/{id}?raw=true answered for
// a busy call (e2e TestCallTraces), trimmed to two spans and a few tags.
const response = `{"data":[{"traceID":"34c29e66d7c6ef73cdf213f5a9d7f496","spans":[
{"traceID":"34c29e66d7c6ef73cdf213f5a9d7f496","spanID":"aa00000000000001","operationName":"INVITE",
 "references":[{"refType":"CHILD_OF","traceID":"34c29e66d7c6ef73cdf213f5a9d7f496","spanID":"bb00000000000002"}],
 "startTime":1796028964898973,"duration":8001,
 "tags":[{"key":"sip.cseq.number","type":"int64","value":1},{"key":"source.address","type":"string","value":"127.0.0.1"},
  {"key":"source.port","type":"int64","value":26875},{"key":"destination.address","type":"string","value":"127.0.0.1"},
  {"key":"destination.port","type":"int64","value":26864},{"key":"span.kind","type":"string","value":"server"}],
 "logs":[{"timestamp":1796028964898973,"fields":[{"key":"event","type":"string","value":"INVITE"},
  {"key":"sip.message.retransmission","type":"bool","value":false}]},
  {"timestamp":1796028964906974,"fields":[{"key":"event","type":"string","value":"486"}]}],
 "processID":"p1"},
{"traceID":"34c29e66d7c6ef73cdf213f5a9d7f496","spanID":"bb00000000000002","operationName":"SIP call","references":[],
 "startTime":1796028964898973,"duration":8001,
 "tags":[{"key":"sip.call.result","type":"string","value":"busy"},{"key":"sip.call.post_dial_delay","type":"float64","value":0.001238},
  {"key":"cdr.transport","type":"string","value":"udp"},{"key":"span.kind","type":"string","value":"internal"},
  {"key":"otel.status_code","type":"string","value":"ERROR"},{"key":"otel.status_description","type":"string","value":"SIP 503"}],
 "processID":"p1"}],
 "processes":{"p1":{"serviceName":"siphon","tags":[{"key":"service.instance.id","type":"string","value":"sbc-1"}]}}}]}`

// TestTrace: the client reads spans with their parent, kind (no longer a
// tag), typed tags, events and resource, and draws the tree.
func TestTrace(t *testing.T) {
	var resp responseJSON
	dec := json.NewDecoder(strings.NewReader(response))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&resp))
	tr, err := resp.Data[0].trace()
	require.NoError(t, err)
	require.Len(t, tr.Spans, 2)
	root, invite := tr.Find("SIP call")[0], tr.Find("INVITE")[0]
	assert.Equal(t, "", root.ParentID)
	assert.Equal(t, root.SpanID, invite.ParentID)
	assert.Equal(t, []Span{invite}, tr.Children(root.SpanID))
	assert.Equal(t, "server", invite.Kind)
	assert.NotContains(t, invite.Tags, "span.kind")
	assert.Equal(t, int64(26875), invite.Tags["source.port"])
	assert.Equal(t, 0.001238, root.Tags["sip.call.post_dial_delay"])
	assert.True(t, root.Error())
	assert.False(t, invite.Error())
	assert.Equal(t, time.UnixMicro(1796028964898973), invite.Start)
	assert.Equal(t, 8001*time.Microsecond, invite.Duration)
	assert.Equal(t, []Log{{At: time.UnixMicro(1796028964898973), Fields: map[string]any{"event": "INVITE", "sip.message.retransmission": false}},
		{At: time.UnixMicro(1796028964906974), Fields: map[string]any{"event": "486"}}}, invite.Logs)
	assert.Equal(t, "siphon", invite.Service)
	assert.Equal(t, "sbc-1", invite.Resource["service.instance.id"])
	assert.Equal(t, `trace 34c29e66d7c6ef73cdf213f5a9d7f496
SIP call internal @sbc-1  +0.000s  0.008s  ERROR SIP 503  result=busy post_dial_delay=0.001238 +1 cdr.* fields
└── INVITE   server   @sbc-1  +0.000s  0.008s  127.0.0.1:26875 -> 127.0.0.1:26864  events INVITE 486
`, tr.Tree())
}

func TestValuesRejectWhatTheyCannotRead(t *testing.T) {
	for _, kv := range []keyVal{{"a", "int64", "x"}, {"b", "bool", "yes"}, {"c", "float64", "x"}, {"d", "string", json.Number("1")}, {"e", "map", 1}} {
		_, err := values([]keyVal{kv})
		assert.Error(t, err, kv.Key)
	}
}
