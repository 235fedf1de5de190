package sipkpiconnector

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
	"github.com/siphon-otel/siphon-otel/internal/testenv/mediaflow"
)

// FuzzRecords feeds the KPI state machine arbitrary SIP messages, CDRs and
// RTCP JSON (a part starting with '{'), separated by "\n--\n", as the hep
// and siphon_cdr receivers would turn them into records, with arbitrary
// time jumps; the state must stay within its bounds and nothing may panic.
func FuzzRecords(f *testing.F) {
	msgs, cdrs := recordedCalls(&testing.T{}, t0)
	var flow [][]byte
	for _, ld := range []plog.Logs{msgs, cdrs} {
		for _, r := range record.All(ld) {
			flow = append(flow, []byte(r.Log.Body().Str()))
		}
	}
	for i := 0; i+4 <= len(flow); i += 4 {
		f.Add(bytes.Join(flow[i:i+4], []byte("\n--\n")), uint16(1))
	}
	f.Add(bytes.Join(flow, []byte("\n--\n")), uint16(40))
	f.Add([]byte("SIP/2.0 180 Ringing\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n\n--\nINVITE sip:a SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n"), uint16(0))
	// a call with media reports: SDP, RTCP, X-RTP-Stat, an RFC 6035 PUBLISH
	call := mediaflow.New(&testing.T{}, fuzzCallID)
	var media [][]byte
	for _, p := range call.Setup(time.Second) {
		media = append(media, p.Payload)
	}
	for _, p := range call.RTCP() {
		media = append(media, p.Payload)
	}
	for _, p := range call.Bye(0, false, mediaflow.RTPStat(&testing.T{}, "X-RTP-Stat: PS=1234,"), "") {
		media = append(media, p.Payload)
	}
	media = append(media, call.Publish(0, call.VQReport()).Payload)
	f.Add(bytes.Join(media, []byte("\n--\n")), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, step uint16) {
		cfg := createDefaultConfig().(*Config)
		cfg.Transactions.MaxEntries = 8
		cfg.Scanner.MaxSources = 4
		cfg.Scanner.Flood.Threshold = 3
		cfg.Duplicates.MaxEntries = 4
		cfg.Media.MaxCalls, cfg.Media.MaxStreams, cfg.Media.CallTimeout = 4, 4, 30*time.Minute
		k := newKPI(cfg)
		res := pcommon.NewMap()
		now := t0
		for i, part := range bytes.Split(data, []byte("\n--\n")) {
			now = now.Add(time.Duration(step) * time.Second)
			lr := plog.NewLogRecord()
			if bytes.HasPrefix(part, []byte("{")) {
				rtcpRecord(part, now, lr)
				k.mediaRecord(res, lr, now, now)
				checkMediaBounds(t, k)
				continue
			}
			if r, err := cdr.Parse(part); err == nil {
				cdrrecord.FromCDR(r, part, now, lr)
				k.cdr(res, lr, now, now)
				if k.cdrs.Len() > cfg.Duplicates.MaxEntries {
					t.Fatalf("%d CDRs remembered", k.cdrs.Len())
				}
				continue
			}
			s, err := sipmsg.Parse(string(part))
			if err != nil {
				continue
			}
			heprecord.PutSIPSummary(lr.Attributes(), &s)
			lr.Attributes().PutStr(record.AttrSourceAddress, []string{"192.0.2.1", "192.0.2.2", "fd00::1"}[i%3])
			lr.SetEventName(record.EventSIPMessage)
			lr.Body().SetStr(string(part))
			k.message(res, lr.Attributes(), now.Add(-time.Duration(i%5)*time.Second), now)
			k.mediaRecord(res, lr, now, now)
			checkMediaBounds(t, k)
			if k.tx.Len() > cfg.Transactions.MaxEntries || k.setups.Len() > cfg.Transactions.MaxEntries ||
				k.sources.Len() > cfg.Scanner.MaxSources {
				t.Fatalf("state over its bounds: %d transactions, %d setups, %d sources", k.tx.Len(), k.setups.Len(), k.sources.Len())
			}
		}
		k.expire(now.Add(time.Hour))
		if calls, streams := k.media.agg.Len(); calls+streams != 0 {
			t.Fatalf("media state left after every lifetime passed: %d calls, %d streams", calls, streams)
		}
		if k.tx.Len() != 0 || k.setups.Len() != 0 || k.sources.Len() != 0 || k.cdrs.Len() != 0 {
			t.Fatalf("state left after every lifetime passed: %d %d %d %d", k.tx.Len(), k.setups.Len(), k.sources.Len(), k.cdrs.Len())
		}
		k.st.emit(pmetricScope(), now)
	})
}

const fuzzCallID = "fuzz-media"

// rtcpRecord makes a hep.rtcp record of an RTCP JSON payload of the call
// fuzzCallID, as the hep receiver does.
func rtcpRecord(payload []byte, at time.Time, lr plog.LogRecord) {
	p := hep.Packet{Family: hep.FamilyIPv4, Protocol: hep.ProtoUDP, SrcIP: netip.MustParseAddr("127.0.0.1"),
		DstIP: netip.MustParseAddr("127.0.0.1"), SrcPort: mediaflow.PortB + 1, DstPort: mediaflow.PortEngineB + 1,
		ProtoType: hep.TypeRTCP, CorrelationID: []byte(fuzzCallID), Payload: payload,
		Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort | hep.HasDstPort |
			hep.HasTimeSec | hep.HasTimeUsec | hep.HasProtoType}
	p.SetTime(at)
	_ = heprecord.FromHEP(&p, payload, false, at, lr) // unreadable media: a record without figures
}

func checkMediaBounds(t *testing.T, k *kpi) {
	calls, streams := k.media.agg.Len()
	if calls > k.cfg.Media.MaxCalls || streams > k.cfg.Media.MaxStreams {
		t.Fatalf("media state over its bounds: %d calls, %d streams", calls, streams)
	}
}

func pmetricScope() pmetric.ScopeMetrics {
	return pmetric.NewMetrics().ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
}
