package recordjson

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/logmodel"
)

func TestSIPMessage(t *testing.T) {
	msg := "BYE sip:b@[2001:db8::2] SIP/2.0\r\nCall-ID: c-1\r\nCSeq: 2 BYE\r\nFrom: <sip:a@x>;tag=ft\r\nUser-Agent: \"UA\"\r\n\r\n"
	p := hep.Packet{
		Family: hep.FamilyIPv6, Protocol: hep.ProtoTCP,
		SrcIP: netip.MustParseAddr("2001:db8::1"), DstIP: netip.MustParseAddr("2001:db8::2"), SrcPort: 5061, DstPort: 5062,
		ProtoType: hep.TypeSIP, CaptureID: 2001, Payload: []byte(msg),
		Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort | hep.HasDstPort | hep.HasProtoType | hep.HasCaptureID,
	}
	p.SetTime(time.Date(2026, 3, 6, 14, 23, 1, 42e6, time.UTC))
	lr := plog.NewLogRecord()
	logmodel.FromHEP(&p, p.Payload, false, time.Now(), lr)
	res := pcommon.NewResource()
	res.Attributes().PutStr(logmodel.AttrServiceInstanceID, "sbc-1")
	out, err := Append(nil, lr, res, true)
	require.NoError(t, err)
	assert.Equal(t, `{"timestamp":"2026-03-06T14:23:01.042Z","event":"sip.message","call_id":"c-1","method":"BYE","status_code":null,"cseq":"2 BYE","from_tag":"ft","to_tag":null,"user_agent":"\"UA\"","source":"[2001:db8::1]:5061","destination":"[2001:db8::2]:5062","transport":"tcp","capture_id":2001,"node":"sbc-1","message":`+string(cdr.AppendString(nil, msg))+`}`, string(out))
	assert.True(t, json.Valid(out))
	assert.Equal(t, KindSIPMessage, KindOf(lr))
	assert.Equal(t, "c-1", CallID(lr))
	assert.Equal(t, "sbc-1", Node(res))
}

func TestCDRIsSIPhonBytes(t *testing.T) {
	b, err := os.ReadFile("../testdata/siphon/siphon-cdr.json")
	require.NoError(t, err)
	b = bytes.TrimSpace(b)
	r, err := cdr.Parse(b)
	require.NoError(t, err)
	lr := plog.NewLogRecord()
	cdr.ToLogRecord(r, b, time.Now(), lr)
	out, err := Append(nil, lr, pcommon.NewResource(), true)
	require.NoError(t, err)
	assert.Equal(t, string(b), string(out))
	assert.Equal(t, KindCDR, KindOf(lr))
	assert.Equal(t, "a84b4c76e66710@192.168.1.100", CallID(lr))
}

func TestOther(t *testing.T) {
	lr := plog.NewLogRecord()
	lr.SetEventName("hep.rtcp")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Date(2026, 3, 6, 14, 23, 1, 0, time.UTC)))
	lr.Attributes().PutInt(logmodel.AttrHEPProtocolType, 5)
	lr.Attributes().PutStr(logmodel.AttrHEPCorrelationID, "call-9")
	lr.Attributes().PutEmptyMap("m").PutStr("k", "v")
	lr.Body().SetStr(`{"ssrc":1}`)
	out, err := Append(nil, lr, pcommon.NewResource(), true)
	require.NoError(t, err)
	assert.Equal(t, `{"timestamp":"2026-03-06T14:23:01.000Z","event":"hep.rtcp","attributes":{"hep.protocol_type":5,"hep.correlation_id":"call-9","m":{"k":"v"}},"body":"{\"ssrc\":1}"}`, string(out))
	assert.True(t, json.Valid(out))
	assert.Equal(t, KindOther, KindOf(lr))
	assert.Equal(t, "call-9", CallID(lr))
}
