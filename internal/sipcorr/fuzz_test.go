package sipcorr

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
)

// FuzzCorrelate keys two SIP texts (as the hep receiver makes records of
// them: the summary only when the text parses), then each again and both
// Call-IDs' CDRs, on a table of two Call-IDs. No panic; every record with
// a Call-ID gets a key, its Call-ID or a piece of the texts no longer than
// MaxKeyLength; the table stays within its bound; and an INVITE whose
// source established a key passes it to its Call-ID's CDR.
func FuzzCorrelate(f *testing.F) {
	f.Add(sip("INVITE", "INVITE", "A", ""), sip("INVITE", "INVITE", "B", "", "X-CID: A"))
	f.Fuzz(func(t *testing.T, a, b string) {
		c, err := New(Config{Sources: append(DefaultSources(), Source{Header: "X-Ref", Regex: `ref=(\S+)`}), MaxCallIDs: 2, TTL: time.Hour}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ld := plog.NewLogs()
		sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
		var summaries []sipmsg.Summary
		for _, text := range []string{a, b, a, b} {
			lr := sl.LogRecords().AppendEmpty()
			lr.SetEventName(record.EventSIPMessage)
			lr.Body().SetStr(text)
			s, err := sipmsg.Parse(text)
			if err == nil {
				heprecord.PutSIPSummary(lr.Attributes(), &s)
			}
			summaries = append(summaries, s)
		}
		for _, s := range summaries[:2] {
			if s.CallID != "" {
				lr := sl.LogRecords().AppendEmpty()
				lr.SetEventName(record.EventCDR)
				lr.Attributes().PutStr(record.AttrSIPCallID, s.CallID)
			}
		}
		c.Process(ld)
		if c.Len() > 2 {
			t.Fatalf("%d entries in a table of 2", c.Len())
		}
		texts := strings.ToLower(a + "\n" + b)
		keyOfCallID := map[string]string{}
		for i, lr := range sl.LogRecords().All() {
			callID, _ := lr.Attributes().Get(record.AttrSIPCallID)
			key, ok := lr.Attributes().Get(record.AttrSIPCorrelationID)
			if callID.Str() == "" {
				if ok {
					t.Fatalf("record %d without a Call-ID keyed %q", i, key.Str())
				}
				continue
			}
			k := key.Str()
			switch {
			case k == "":
				t.Fatalf("record %d of Call-ID %q has no key", i, callID.Str())
			case k == callID.Str():
			case len(k) > MaxKeyLength:
				t.Fatalf("record %d: key of %d bytes", i, len(k))
			default:
				for _, piece := range strings.Split(strings.ToLower(k), " ") {
					if !strings.Contains(texts, piece) {
						t.Fatalf("record %d: key %q is not from the texts", i, k)
					}
				}
			}
			if i < 2 {
				s := summaries[i]
				if s.Method == "INVITE" && s.ToTag == "" && k != s.CallID {
					keyOfCallID[s.CallID] = k
				}
			} else if want, ok := keyOfCallID[callID.Str()]; ok && lr.EventName() == record.EventCDR && k != want {
				t.Fatalf("CDR of %q keyed %q, its INVITE %q", callID.Str(), k, want)
			}
		}
	})
}
