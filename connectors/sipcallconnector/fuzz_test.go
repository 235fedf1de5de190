package sipcallconnector

import (
	"bytes"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipflow"
)

// FuzzRecords feeds the tracer arbitrary SIP messages and CDRs (separated
// by "\n--\n"), as the hep and siphon_cdr receivers would turn them into
// records, captured by two nodes between three addresses, with arbitrary
// time jumps; an X-CID header becomes the record's sip.correlation_id.
// The state must stay within its bounds, every span must be well formed,
// and nothing may be left once every lifetime has passed. Seeds: the
// recorded flows of the tests and testdata/fuzz/FuzzRecords.
func FuzzRecords(f *testing.F) {
	ld := sipflow.Logs("sbc-1")
	t := &testing.T{}
	answered(sipflow.New(t, ld, t0, "call-1"))
	b2bua(t, ld)
	sipflow.CDR(t, ld, t0, "call-1", 200, 0, 5, 60, "caller", "a")
	var flow [][]byte
	for _, r := range record.All(ld) {
		flow = append(flow, []byte(r.Log.Body().Str()))
	}
	for i := 0; i+4 <= len(flow); i += 4 {
		f.Add(bytes.Join(flow[i:i+4], []byte("\n--\n")), uint16(1))
	}
	f.Add(bytes.Join(flow, []byte("\n--\n")), uint16(40))
	f.Fuzz(func(t *testing.T, data []byte, step uint16) {
		cfg := testConfig()
		cfg.MaxCalls = 4
		cfg.OutOfDialog.MaxTransactions = 3
		cfg.MaxSpansPerCall = 6
		var txs int64
		h := noHooks()
		h.entries = func(tb table, d int64) {
			if tb == tableTransactions {
				txs += d
			}
		}
		tr := newTracer(cfg, h)
		nodes := []pcommon.Resource{pcommon.NewResource(), pcommon.NewResource()}
		nodes[0].Attributes().PutStr(record.AttrServiceInstanceID, "sbc-1")
		nodes[1].Attributes().PutStr(record.AttrServiceInstanceID, "sbc-2")
		addrs := []string{"192.0.2.1", "192.0.2.2", "fd00::1"}
		now := t0
		check := func() {
			if tr.calls.Len() > cfg.MaxCalls || tr.ended.Len() > cfg.MaxCalls ||
				tr.oodCalls.Len() > cfg.OutOfDialog.MaxTransactions || tr.oodEnded.Len() > cfg.OutOfDialog.MaxTransactions {
				t.Fatalf("state over its bounds: %d calls, %d ended, %d out of dialog, %d of them ended",
					tr.calls.Len(), tr.ended.Len(), tr.oodCalls.Len(), tr.oodEnded.Len())
			}
			for _, s := range flatten(tr.take()) {
				if s.trace.IsEmpty() || s.id.IsEmpty() || s.end.Before(s.start) {
					t.Fatalf("malformed span %+v", s)
				}
			}
		}
		for i, part := range bytes.Split(data, []byte("\n--\n")) {
			now = now.Add(time.Duration(step) * time.Second)
			res := nodes[i%2]
			lr := plog.NewLogRecord()
			if r, err := cdr.Parse(part); err == nil {
				cdrrecord.FromCDR(r, part, now, lr)
				tr.cdr(res, lr, now)
				check()
				continue
			}
			body := string(part)
			s, err := sipmsg.Parse(body)
			if err != nil {
				continue
			}
			lr.SetEventName(record.EventSIPMessage)
			lr.Body().SetStr(body)
			lr.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Duration(i%5) * time.Second)))
			heprecord.PutSIPSummary(lr.Attributes(), &s)
			if cid := sipmsg.FirstHeader(body, "X-CID"); cid != "" {
				lr.Attributes().PutStr(record.AttrSIPCorrelationID, cid)
			}
			lr.Attributes().PutStr(record.AttrSourceAddress, addrs[i%3])
			lr.Attributes().PutStr(record.AttrDestinationAddress, addrs[(i+1)%3])
			lr.Attributes().PutInt(record.AttrSourcePort, 5060)
			tr.message(res, lr, now)
			check()
			if i%3 == 0 {
				tr.sweep(now)
				check()
			}
		}
		tr.sweep(now.Add(cfg.IdleTimeout + cfg.CDRWait + cfg.Linger))
		check()
		// a call evicted by the last sweep keeps its ended key max_call_duration
		tr.sweep(now.Add(cfg.MaxCallDuration * 2))
		tr.sweep(now.Add(cfg.MaxCallDuration * 4))
		check()
		if tr.calls.Len()+tr.ended.Len()+tr.oodCalls.Len()+tr.oodEnded.Len() != 0 || txs != 0 {
			t.Fatalf("state left after every lifetime passed: %d calls, %d ended, %d out of dialog, %d of them ended, %d transactions",
				tr.calls.Len(), tr.ended.Len(), tr.oodCalls.Len(), tr.oodEnded.Len(), txs)
		}
	})
}
