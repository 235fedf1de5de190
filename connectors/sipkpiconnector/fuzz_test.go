package sipkpiconnector

import (
	"bytes"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
)

// FuzzRecords feeds the KPI state machine arbitrary SIP messages and CDRs
// (separated by "\n--\n"), as the hep and siphon_cdr receivers would turn
// them into records, with arbitrary time jumps; the state must stay within
// its bounds and nothing may panic.
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
	f.Fuzz(func(t *testing.T, data []byte, step uint16) {
		cfg := createDefaultConfig().(*Config)
		cfg.Transactions.MaxEntries = 8
		cfg.Scanner.MaxSources = 4
		cfg.Scanner.Flood.Threshold = 3
		cfg.Duplicates.MaxEntries = 4
		k := newKPI(cfg)
		res := pcommon.NewMap()
		now := t0
		for i, part := range bytes.Split(data, []byte("\n--\n")) {
			now = now.Add(time.Duration(step) * time.Second)
			lr := plog.NewLogRecord()
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
			k.message(res, lr.Attributes(), now.Add(-time.Duration(i%5)*time.Second), now)
			if k.tx.Len() > cfg.Transactions.MaxEntries || k.setups.Len() > cfg.Transactions.MaxEntries ||
				k.sources.Len() > cfg.Scanner.MaxSources {
				t.Fatalf("state over its bounds: %d transactions, %d setups, %d sources", k.tx.Len(), k.setups.Len(), k.sources.Len())
			}
		}
		k.expire(now.Add(time.Hour))
		if k.tx.Len() != 0 || k.setups.Len() != 0 || k.sources.Len() != 0 || k.cdrs.Len() != 0 {
			t.Fatalf("state left after every lifetime passed: %d %d %d %d", k.tx.Len(), k.setups.Len(), k.sources.Len(), k.cdrs.Len())
		}
		k.st.emit(pmetricScope(), now)
	})
}

func pmetricScope() pmetric.ScopeMetrics {
	return pmetric.NewMetrics().ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
}
