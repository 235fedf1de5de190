package recordjson

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
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
	heprecord.FromHEP(&p, p.Payload, false, time.Now(), lr)
	res := pcommon.NewResource()
	res.Attributes().PutStr(record.AttrServiceInstanceID, "sbc-1")
	out, err := Append(nil, lr, res, record.SourceBody)
	require.NoError(t, err)
	assert.Equal(t, `{"timestamp":"2026-03-06T14:23:01.042Z","event":"sip.message","call_id":"c-1","method":"BYE","status_code":null,"cseq":"2 BYE","from_tag":"ft","to_tag":null,"user_agent":"\"UA\"","source":"[2001:db8::1]:5061","destination":"[2001:db8::2]:5062","transport":"tcp","capture_id":2001,"node":"sbc-1","message":`+string(cdr.AppendString(nil, msg))+`}`, string(out))
	assert.True(t, json.Valid(out))
	assert.Equal(t, record.KindSIPMessage, record.KindOf(lr))
	assert.Equal(t, "c-1", record.CallID(lr))
	assert.Equal(t, "sbc-1", record.Node(res))
}

func TestCDRIsSIPhonBytes(t *testing.T) {
	b := fixture.CDR()
	r, err := cdr.Parse(b)
	require.NoError(t, err)
	lr := plog.NewLogRecord()
	cdrrecord.FromCDR(r, b, time.Now(), lr)
	out, err := Append(nil, lr, pcommon.NewResource(), record.SourceBody)
	require.NoError(t, err)
	assert.Equal(t, string(b), string(out))
	assert.Equal(t, record.KindCDR, record.KindOf(lr))
	assert.Equal(t, "a84b4c76e66710@192.168.1.100", record.CallID(lr))
}

func TestOther(t *testing.T) {
	lr := plog.NewLogRecord()
	lr.SetEventName("hep.rtcp")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Date(2026, 3, 6, 14, 23, 1, 0, time.UTC)))
	lr.Attributes().PutInt(record.AttrHEPProtocolType, 5)
	lr.Attributes().PutStr(record.AttrHEPCorrelationID, "call-9")
	lr.Attributes().PutEmptyMap("m").PutStr("k", "v")
	lr.Body().SetStr(`{"ssrc":1}`)
	out, err := Append(nil, lr, pcommon.NewResource(), record.SourceBody)
	require.NoError(t, err)
	assert.Equal(t, `{"timestamp":"2026-03-06T14:23:01.000Z","event":"hep.rtcp","attributes":{"hep.protocol_type":5,"hep.correlation_id":"call-9","m":{"k":"v"}},"body":"{\"ssrc\":1}"}`, string(out))
	assert.True(t, json.Valid(out))
	assert.Equal(t, record.KindOther, record.KindOf(lr))
	assert.Equal(t, "call-9", record.CallID(lr))
}
