package sipcorr

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
)

// sip builds a SIP message of Call-ID callID: a request when first is a
// method, else a response to method with that status. toTag "" leaves the
// To-tag out; extra are further header lines.
func sip(first, method, callID, toTag string, extra ...string) string {
	start := first + " sip:bob@127.0.0.1 SIP/2.0"
	if first[0] >= '1' && first[0] <= '6' {
		start = "SIP/2.0 " + first + " Whatever"
	}
	to := "To: <sip:bob@127.0.0.1>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	lines := append([]string{start, "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-" + callID,
		"From: <sip:alice@127.0.0.1>;tag=ft", to, "Call-ID: " + callID, "CSeq: 1 " + method}, extra...)
	return strings.Join(lines, "\r\n") + "\r\nContent-Length: 0\r\n\r\n"
}

// batch is a plog.Logs that tests fill with records.
type batch struct {
	ld plog.Logs
	sl plog.ScopeLogs
}

func newBatch() *batch {
	ld := plog.NewLogs()
	return &batch{ld: ld, sl: ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()}
}

// msg adds a sip.message record as the hep receiver makes it.
func (b *batch) msg(t testing.TB, text string) plog.LogRecord {
	t.Helper()
	lr := b.sl.LogRecords().AppendEmpty()
	lr.SetEventName(record.EventSIPMessage)
	lr.Body().SetStr(text)
	s, err := sipmsg.Parse(text)
	require.NoError(t, err)
	heprecord.PutSIPSummary(lr.Attributes(), &s)
	return lr
}

// cdr adds a sip.cdr record of callID.
func (b *batch) cdr(callID string) plog.LogRecord {
	lr := b.sl.LogRecords().AppendEmpty()
	lr.SetEventName(record.EventCDR)
	lr.Body().SetStr(`{"call_id":"` + callID + `"}`)
	lr.Attributes().PutStr(record.AttrSIPCallID, callID)
	return lr
}

func keyOf(t *testing.T, lr plog.LogRecord) string {
	t.Helper()
	v, ok := lr.Attributes().Get(record.AttrSIPCorrelationID)
	if !ok {
		return "<none>"
	}
	return v.Str()
}

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newCorrelator(t *testing.T, sources []Source, maxCallIDs int, ttl time.Duration, clk *clock) *Correlator {
	t.Helper()
	var now func() time.Time
	if clk != nil {
		now = clk.now
	}
	c, err := New(Config{Sources: sources, MaxCallIDs: maxCallIDs, TTL: ttl}, now)
	require.NoError(t, err)
	return c
}

// one keys a single SIP message on a fresh correlator.
func one(t *testing.T, sources []Source, text string, hepCorrID string) (string, Stats) {
	t.Helper()
	c := newCorrelator(t, sources, 100, time.Hour, nil)
	b := newBatch()
	lr := b.msg(t, text)
	if hepCorrID != "" {
		lr.Attributes().PutStr(record.AttrHEPCorrelationID, hepCorrID)
	}
	st := c.Process(b.ld)
	return keyOf(t, lr), st
}

const (
	uuidA = "ab30317f1a784dc48ff824d0d3715d86"
	uuidB = "47755a9de7794ba387653f2099600ef2"
)

func TestSources(t *testing.T) {
	def := DefaultSources()
	long := strings.Repeat("x", MaxKeyLength+1)
	tests := []struct {
		name      string
		sources   []Source
		text      string
		hepCorrID string
		want      string
		how       Kind
		malformed Kind // a source kind counted malformed once, when numKinds is not it
	}{
		{"x-cid", def, sip("INVITE", "INVITE", "B", "", "X-CID: A"), "", "A", KindHeader, numKinds},
		{"x-cid any case, folded", def, sip("INVITE", "INVITE", "B", "", "x-cid:", "  leg-a@127.0.0.1"), "", "leg-a@127.0.0.1", KindHeader, numKinds},
		{"x-cid empty is malformed", def, sip("INVITE", "INVITE", "B", "", "X-CID:  "), "", "B", KindCallID, KindHeader},
		{"x-cid too long is malformed", def, sip("INVITE", "INVITE", "B", "", "X-CID: "+long), "", "B", KindCallID, KindHeader},
		{"x-cid: the first value that holds a key", def, sip("INVITE", "INVITE", "B", "", "X-CID:", "X-CID: A2"), "", "A2", KindHeader, numKinds},
		{"no source: the Call-ID", def, sip("INVITE", "INVITE", "B", ""), "", "B", KindCallID, numKinds},

		{"p-charging-vector", def, sip("INVITE", "INVITE", "B", "",
			"P-Charging-Vector: icid-value=1234bc9876e;icid-generated-at=192.0.6.8;orig-ioi=home1.net"), "", "1234bc9876e", KindPChargingVector, numKinds},
		{"p-charging-vector quoted, not first", def, sip("INVITE", "INVITE", "B", "",
			`P-Charging-Vector: orig-ioi=home1.net; ICID-VALUE="AyretyU0dm+6O2IrT5tAFrbHLso=023551024"`), "", "AyretyU0dm+6O2IrT5tAFrbHLso=023551024", KindPChargingVector, numKinds},
		{"p-charging-vector without icid-value is malformed", def, sip("INVITE", "INVITE", "B", "",
			"P-Charging-Vector: orig-ioi=home1.net"), "", "B", KindCallID, KindPChargingVector},

		{"session-id initial request: local", def, sip("INVITE", "INVITE", "B", "",
			"Session-ID: "+uuidA+";remote="+nullUUID), "", uuidA, KindSessionID, numKinds},
		{"session-id RFC 7329 form, upper case", def, sip("INVITE", "INVITE", "B", "",
			"Session-ID: "+strings.ToUpper(uuidA)), "", uuidA, KindSessionID, numKinds},
		{"session-id response: remote", def, sip("180", "INVITE", "B", "tt",
			"Session-ID: "+uuidB+" ; remote="+uuidA+";x=1"), "", uuidA, KindSessionID, numKinds},
		{"session-id response, null remote: local", def, sip("200", "INVITE", "B", "tt",
			"Session-ID: "+uuidB+";remote="+nullUUID), "", uuidB, KindSessionID, numKinds},
		{"session-id null local of a request: no key", def, sip("INVITE", "INVITE", "B", "",
			"Session-ID: "+nullUUID+";remote="+nullUUID), "", "B", KindCallID, numKinds},
		{"session-id in-dialog request: either end, no key", def, sip("BYE", "BYE", "B", "tt",
			"Session-ID: "+uuidA+";remote="+uuidB), "", "B", KindCallID, numKinds},
		{"session-id not a uuid is malformed", def, sip("INVITE", "INVITE", "B", "",
			"Session-ID: 1234"), "", "B", KindCallID, KindSessionID},
		{"session-id remote not a uuid is malformed", def, sip("INVITE", "INVITE", "B", "",
			"Session-ID: "+uuidA+";remote=zz"), "", "B", KindCallID, KindSessionID},

		{"regex: the first group", []Source{{Header: "X-Ref", Regex: `^call=([^;]+);`}}, sip("INVITE", "INVITE", "B", "",
			"X-Ref: call=A-1;leg=2"), "", "A-1", KindRegex, numKinds},
		{"regex over the compact Call-ID", []Source{{Header: "Call-ID", Regex: `^(.+)-leg\d$`}}, strings.Replace(
			sip("INVITE", "INVITE", "A-leg2", ""), "Call-ID:", "i:", 1), "", "A", KindRegex, numKinds},
		{"regex not matching: no key", []Source{{Header: "X-Ref", Regex: `^call=([^;]+);`}}, sip("INVITE", "INVITE", "B", "",
			"X-Ref: other"), "", "B", KindCallID, numKinds},
		{"regex group too long is malformed", []Source{{Header: "X-Ref", Regex: `^(.*)$`}}, sip("INVITE", "INVITE", "B", "",
			"X-Ref: "+long), "", "B", KindCallID, KindRegex},

		{"hep correlation id", def, sip("INVITE", "INVITE", "B", ""), "A", "A", KindHEPCorrelationID, numKinds},
		{"hep correlation id equal to the Call-ID", def, sip("INVITE", "INVITE", "B", ""), "B", "B", KindCallID, numKinds},
		{"hep correlation id too long is malformed", def, sip("INVITE", "INVITE", "B", ""), long, "B", KindCallID, KindHEPCorrelationID},

		{"order: x-cid before session-id", def, sip("INVITE", "INVITE", "B", "",
			"Session-ID: "+uuidA, "X-CID: A"), "", "A", KindHeader, numKinds},
		{"order: session-id before x-cid", []Source{{Header: "Session-ID"}, {Header: "X-CID"}}, sip("INVITE", "INVITE", "B", "",
			"X-CID: A", "Session-ID: "+uuidA), "", uuidA, KindSessionID, numKinds},
		{"order: hep first", []Source{{HEPCorrelationID: true}, {Header: "X-CID"}}, sip("INVITE", "INVITE", "B", "",
			"X-CID: A"), "H", "H", KindHEPCorrelationID, numKinds},
		{"no sources: the Call-ID", []Source{}, sip("INVITE", "INVITE", "B", "", "X-CID: A"), "A", "B", KindCallID, numKinds},
		{"a header in the body is no header", def, sip("INVITE", "INVITE", "B", "") + "X-CID: A\r\n", "", "B", KindCallID, numKinds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, st := one(t, tt.sources, tt.text, tt.hepCorrID)
			assert.Equal(t, tt.want, key)
			assert.Equal(t, int64(1), st.Records[tt.how], "counted as %s: %v", tt.how, st.Records)
			for _, k := range Kinds() {
				want := int64(0)
				if k == tt.malformed {
					want = 1
				}
				assert.Equal(t, want, st.Malformed[k], "malformed %s", k)
			}
		})
	}
}

// TestB2BUA: the a-leg INVITE (Call-ID A) and the b-leg INVITE naming A in
// X-CID (Call-ID B); then the b-leg's 180, 200, ACK and BYE without X-CID,
// and both legs' CDRs: every record keyed A, the b-leg's from the table.
func TestB2BUA(t *testing.T) {
	c := newCorrelator(t, DefaultSources(), 100, time.Hour, nil)
	b := newBatch()
	recs := []plog.LogRecord{
		b.msg(t, sip("INVITE", "INVITE", "A", "")),
		b.msg(t, sip("INVITE", "INVITE", "B", "", "X-CID: A")),
	}
	st := c.Process(b.ld)
	assert.Equal(t, int64(1), st.Records[KindCallID])
	assert.Equal(t, int64(1), st.Records[KindHeader])
	assert.Equal(t, int64(2), st.EntriesDelta)

	b = newBatch()
	recs = append(recs,
		b.msg(t, sip("100", "INVITE", "B", "")),
		b.msg(t, sip("180", "INVITE", "B", "bt")),
		b.msg(t, sip("200", "INVITE", "B", "bt")),
		// a header a To-tag message of a keyed Call-ID carries is not read
		b.msg(t, sip("ACK", "ACK", "B", "bt", "X-CID: Z")),
		b.msg(t, sip("200", "INVITE", "A", "at")),
		b.msg(t, sip("BYE", "BYE", "B", "bt")),
		b.msg(t, sip("200", "BYE", "B", "bt")),
		b.cdr("B"),
		b.cdr("A"),
	)
	st = c.Process(b.ld)
	for i, lr := range recs {
		assert.Equal(t, "A", keyOf(t, lr), "record %d: %s", i, lr.Body().AsString())
	}
	assert.Equal(t, int64(7), st.Records[KindTable], "%v", st.Records)
	assert.Equal(t, int64(2), st.Records[KindCallID], "the a-leg's 200 and CDR: %v", st.Records)
	assert.Zero(t, st.Late)
	assert.Zero(t, st.EntriesDelta)
	assert.Equal(t, 2, c.Len())
}

// TestLateInvite: the b-leg's 100 Trying comes before its INVITE: the
// INVITE still establishes the key for the rest of the leg; a To-tag
// message of a Call-ID no source matched is not looked into.
func TestLateInvite(t *testing.T) {
	c := newCorrelator(t, DefaultSources(), 100, time.Hour, nil)
	b := newBatch()
	trying := b.msg(t, sip("100", "INVITE", "B", ""))
	invite := b.msg(t, sip("INVITE", "INVITE", "B", "", "X-CID: A"))
	ringing := b.msg(t, sip("180", "INVITE", "B", "bt", "X-CID: A"))
	c.Process(b.ld)
	assert.Equal(t, "B", keyOf(t, trying), "keyed before its INVITE came")
	assert.Equal(t, "A", keyOf(t, invite))
	assert.Equal(t, "A", keyOf(t, ringing))

	b = newBatch()
	plain := b.msg(t, sip("INVITE", "INVITE", "P", ""))
	ok := b.msg(t, sip("200", "INVITE", "P", "pt", "X-CID: Q"))
	c.Process(b.ld)
	assert.Equal(t, "P", keyOf(t, plain))
	assert.Equal(t, "P", keyOf(t, ok), "a To-tag message of a held Call-ID is not looked into")
}

// TestChain: a b-leg naming a-leg A, a c-leg naming b-leg B: all keyed A.
func TestChain(t *testing.T) {
	c := newCorrelator(t, DefaultSources(), 100, time.Hour, nil)
	b := newBatch()
	legs := []plog.LogRecord{
		b.msg(t, sip("INVITE", "INVITE", "A", "")),
		b.msg(t, sip("INVITE", "INVITE", "B", "", "X-CID: A")),
		b.msg(t, sip("INVITE", "INVITE", "C", "", "X-CID: B")),
		b.msg(t, sip("INVITE", "INVITE", "S", "", "X-CID: S")),
	}
	c.Process(b.ld)
	for i, want := range []string{"A", "A", "A", "S"} {
		assert.Equal(t, want, keyOf(t, legs[i]), "leg %d", i)
	}
}

func TestCapacity(t *testing.T) {
	c := newCorrelator(t, DefaultSources(), 2, time.Hour, nil)
	b := newBatch()
	b.msg(t, sip("INVITE", "INVITE", "B1", "", "X-CID: A1"))
	b.msg(t, sip("INVITE", "INVITE", "B2", "", "X-CID: A2"))
	// out-of-dialog requests and their responses make no entry
	for i := range 5 {
		id := fmt.Sprintf("opt-%d", i)
		b.msg(t, sip("OPTIONS", "OPTIONS", id, ""))
		b.msg(t, sip("200", "OPTIONS", id, "ot"))
		b.msg(t, sip("REGISTER", "REGISTER", "reg", ""))
	}
	st := c.Process(b.ld)
	assert.Equal(t, 2, c.Len())
	assert.Zero(t, st.EvictedCapacity)

	// B2 used, then B3 pushes B1 (the least recently used) out
	b = newBatch()
	b.msg(t, sip("180", "INVITE", "B2", "t2"))
	b.msg(t, sip("INVITE", "INVITE", "B3", "", "X-CID: A3"))
	st = c.Process(b.ld)
	assert.Equal(t, int64(1), st.EvictedCapacity)
	assert.Equal(t, 2, c.Len())
	assert.Zero(t, st.EntriesDelta)

	b = newBatch()
	bye1 := b.msg(t, sip("BYE", "BYE", "B1", "t1"))
	ok1 := b.msg(t, sip("200", "BYE", "B1", "t1"))
	cdr1 := b.cdr("B1")
	bye2 := b.msg(t, sip("BYE", "BYE", "B2", "t2"))
	fresh := b.cdr("never-seen")
	st = c.Process(b.ld)
	assert.Equal(t, "B1", keyOf(t, bye1), "its entry was gone: keyed itself")
	assert.Equal(t, "B1", keyOf(t, ok1))
	assert.Equal(t, "B1", keyOf(t, cdr1))
	assert.Equal(t, int64(3), st.Late, "the three records of B1")
	assert.Equal(t, "A2", keyOf(t, bye2))
	assert.Equal(t, "never-seen", keyOf(t, fresh), "a Call-ID never held is not late")
	assert.Zero(t, st.EvictedCapacity, "late records of other methods than INVITE make no entry")

	// a late INVITE-dialog message makes an entry again, marked late
	b = newBatch()
	reinvite := b.msg(t, sip("INVITE", "INVITE", "B1", "t1"))
	ack := b.msg(t, sip("ACK", "ACK", "B1", "t1"))
	st = c.Process(b.ld)
	assert.Equal(t, "B1", keyOf(t, reinvite))
	assert.Equal(t, "B1", keyOf(t, ack))
	assert.Equal(t, int64(2), st.Late)
	assert.Equal(t, int64(1), st.EvictedCapacity, "B1's new entry took the place of another")
}

func TestTTL(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	c := newCorrelator(t, DefaultSources(), 100, time.Minute, clk)
	b := newBatch()
	b.msg(t, sip("INVITE", "INVITE", "B1", "", "X-CID: A1"))
	b.msg(t, sip("INVITE", "INVITE", "B2", "", "X-CID: A2"))
	c.Process(b.ld)

	// B2 is used within the minute, B1 is not
	clk.t = clk.t.Add(40 * time.Second)
	b = newBatch()
	b.msg(t, sip("180", "INVITE", "B2", "t2"))
	st := c.Process(b.ld)
	assert.Zero(t, st.EvictedExpired)

	clk.t = clk.t.Add(40 * time.Second)
	b = newBatch()
	bye1 := b.msg(t, sip("BYE", "BYE", "B1", "t1"))
	bye2 := b.msg(t, sip("BYE", "BYE", "B2", "t2"))
	st = c.Process(b.ld)
	assert.Equal(t, int64(1), st.EvictedExpired)
	assert.Equal(t, int64(-1), st.EntriesDelta)
	assert.Equal(t, "B1", keyOf(t, bye1))
	assert.Equal(t, int64(1), st.Late)
	assert.Equal(t, "A2", keyOf(t, bye2))

	clk.t = clk.t.Add(2 * time.Minute)
	st = c.Process(plog.NewLogs())
	assert.Equal(t, int64(1), st.EvictedExpired)
	assert.Zero(t, c.Len())
}

// TestGhosts: the table remembers as many evicted Call-IDs as it holds
// entries, the oldest forgotten first.
func TestGhosts(t *testing.T) {
	g := newGhosts(3)
	g.add(1)
	g.add(1) // evicted again (it came back in between): two slots
	g.add(2)
	assert.True(t, g.has(1))
	g.add(3) // the oldest slot goes, but 1 has a later one
	assert.True(t, g.has(1))
	assert.True(t, g.has(2))
	g.add(4) // 1's later slot goes
	assert.False(t, g.has(1))
	assert.True(t, g.remove(3))
	assert.False(t, g.has(3))
	assert.False(t, g.remove(3))
	g.add(5)
	g.add(6)
	assert.False(t, g.has(2))
	assert.True(t, g.has(4))
	assert.Len(t, g.seq, 3, "4, 5, 6")
	assert.Len(t, g.ring, 3)
}

func TestUpstreamAndOtherRecords(t *testing.T) {
	c := newCorrelator(t, DefaultSources(), 100, time.Hour, nil)
	b := newBatch()
	keyed := b.msg(t, sip("INVITE", "INVITE", "B", "", "X-CID: A"))
	keyed.Attributes().PutStr(record.AttrSIPCorrelationID, "K")
	cdr := b.cdr("B")
	cdr.Attributes().PutStr(record.AttrSIPCorrelationID, "K")
	rtcp := b.sl.LogRecords().AppendEmpty()
	rtcp.SetEventName("hep.rtcp")
	rtcp.Attributes().PutStr(record.AttrHEPCorrelationID, "B")
	noID := b.sl.LogRecords().AppendEmpty()
	noID.SetEventName(record.EventSIPMessage)
	noID.Body().SetStr("garbage")
	st := c.Process(b.ld)
	assert.Equal(t, "K", keyOf(t, keyed))
	assert.Equal(t, "K", keyOf(t, cdr))
	assert.Equal(t, "<none>", keyOf(t, rtcp))
	assert.Equal(t, 1, rtcp.Attributes().Len(), "other records are left as they are")
	assert.Equal(t, "<none>", keyOf(t, noID))
	assert.Equal(t, int64(2), st.Records[KindUpstream])
	assert.Equal(t, int64(1), st.Records[KindNoCallID])
	assert.Zero(t, c.Len(), "a kept key teaches the table nothing")
}

func TestBytesBody(t *testing.T) {
	c := newCorrelator(t, DefaultSources(), 100, time.Hour, nil)
	b := newBatch()
	text := sip("INVITE", "INVITE", "B", "", "X-CID: A")
	lr := b.msg(t, text)
	lr.Body().SetEmptyBytes().FromRaw([]byte(text))
	c.Process(b.ld)
	assert.Equal(t, "A", keyOf(t, lr))
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		sources []Source
		err     string
	}{
		{"defaults", DefaultSources(), ""},
		{"none", nil, ""},
		{"empty entry", []Source{{}}, "sources[0]: needs a header or hep_correlation_id: true"},
		{"bad header name", []Source{{Header: "X CID"}}, `sources[0]: header "X CID" is not a SIP header name`},
		{"header and hep", []Source{{Header: "X-CID", HEPCorrelationID: true}}, "takes no header or regex"},
		{"regex without header", []Source{{Regex: "(x)"}}, "needs a header"},
		{"bad regex", []Source{{Header: "X-A", Regex: "(x"}}, "sources[0]: regex: error parsing regexp"},
		{"regex without group", []Source{{Header: "X-A", Regex: "x+"}}, `regex "x+" has no group`},
		{"twice", []Source{{Header: "X-CID"}, {HEPCorrelationID: true}, {Header: "x-cid"}}, "sources[2]: the same source as an earlier one"},
		{"same header, other regexes", []Source{{Header: "X-A", Regex: "(a)"}, {Header: "X-A", Regex: "(b)"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.sources)
			if tt.err == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}

// TestConcurrent: Process from several goroutines (run with -race): every
// b-leg record is keyed by its a-leg.
func TestConcurrent(t *testing.T) {
	c := newCorrelator(t, DefaultSources(), 1000, time.Hour, nil)
	var wg sync.WaitGroup
	const workers, calls = 4, 50
	batches := make([][]plog.LogRecord, workers)
	for w := range workers {
		b := newBatch()
		for i := range calls {
			a := fmt.Sprintf("A-%d-%d", w, i)
			b.msg(t, sip("INVITE", "INVITE", "B"+a, "", "X-CID: "+a))
			b.msg(t, sip("200", "INVITE", "B"+a, "bt"))
			b.cdr("B" + a)
		}
		for _, lr := range b.sl.LogRecords().All() {
			batches[w] = append(batches[w], lr)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Process(b.ld)
		}()
	}
	wg.Wait()
	for w, recs := range batches {
		for _, lr := range recs {
			callID, _ := lr.Attributes().Get(record.AttrSIPCallID)
			assert.Equal(t, strings.TrimPrefix(callID.Str(), "B"), keyOf(t, lr), "worker %d", w)
		}
	}
	assert.Equal(t, workers*calls, c.Len())
}
