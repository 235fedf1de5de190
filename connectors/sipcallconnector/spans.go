package sipcallconnector

import (
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/siphon-otel/siphon-otel/connectors/sipcallconnector/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/record"
)

// Span names.
const (
	nameCall = "SIP call"
	nameLeg  = "SIP leg"
	nameCDR  = "SIP CDR"
)

// batch collects spans to send, one ResourceSpans per capturing node: a
// call's transaction spans go under the resource of the node that captured
// them, so one trace spans several resources (as OTLP allows); its root and
// leg spans go under the node of its first record, a CDR span under the
// CDR's.
type batch struct {
	td     ptrace.Traces
	byNode map[*node]ptrace.SpanSlice
}

func (b *batch) reset() {
	b.td = ptrace.NewTraces()
	b.byNode = map[*node]ptrace.SpanSlice{}
}

func (b *batch) spans(n *node) ptrace.SpanSlice {
	if s, ok := b.byNode[n]; ok {
		return s
	}
	rs := b.td.ResourceSpans().AppendEmpty()
	n.res.CopyTo(rs.Resource())
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(metadata.ScopeName)
	b.byNode[n] = ss.Spans()
	return ss.Spans()
}

// codeStatus is a span's status for a final response code: an error for a
// server or global failure (5xx, 6xx: 600 Busy Everywhere and 603 Decline
// too, the callee refusing the call everywhere) and a request timeout
// (408); another 4xx (486 Busy Here, 404, 487 after a CANCEL) or a 3xx is
// the call's outcome, not an error (its sip.call.result says which).
func codeStatus(st ptrace.Status, code int) {
	if code >= 500 || code == 408 {
		st.SetCode(ptrace.StatusCodeError)
		st.SetMessage("SIP " + strconv.Itoa(code))
	}
}

// parentOf is the span a transaction of callID hangs under.
func (c *call) parentOf(callID string) pcommon.SpanID {
	if callID == c.key {
		return c.rootID
	}
	if l := c.leg(callID); l != nil {
		return l.id
	}
	return c.rootID
}

// txSpan emits a transaction's span and frees its events; the transaction
// stays, to recognise its late messages.
func (t *tracer) txSpan(c *call, tx *txn) {
	tx.emitted = true
	tx.end = tx.spanEnd() // before its events go
	t.entries(tableTransactions, -1)
	t.spans(spanTransaction, 1)
	sp := t.out.spans(tx.node).AppendEmpty()
	sp.SetTraceID(c.traceID)
	sp.SetSpanID(tx.id)
	if !c.ood {
		sp.SetParentSpanID(c.parentOf(tx.callID))
	}
	sp.SetName(tx.method)
	kind := tx.node.kind(tx.src, tx.dst)
	sp.SetKind(kind)
	sp.SetStartTimestamp(pcommon.Timestamp(tx.start))
	sp.SetEndTimestamp(pcommon.Timestamp(tx.spanEnd()))
	a := sp.Attributes()
	if tx.initial {
		a.EnsureCapacity(15) // the setup, its result and sip.scanner too
	} else {
		a.EnsureCapacity(10)
	}
	a.PutStr(record.AttrSIPRequestMethod, tx.method)
	if tx.code != 0 {
		a.PutInt(record.AttrSIPResponseStatusCode, int64(tx.code))
	}
	a.PutInt(record.AttrSIPCSeqNumber, int64(tx.cseq))
	if tx.branch != "" {
		a.PutStr(record.AttrSIPViaBranch, tx.branch)
	}
	if tx.transport != "" {
		a.PutStr(record.AttrNetworkTransport, tx.transport)
	}
	putEndpoint(a, record.AttrSourceAddress, record.AttrSourcePort, tx.src)
	putEndpoint(a, record.AttrDestinationAddress, record.AttrDestinationPort, tx.dst)
	a.PutStr(record.AttrSIPCallID, tx.callID)
	if tx.initial && tx.hasRequest {
		// the setup and result as this hop saw them, so that a tail sampler
		// deciding on the setup spans (the root leaves at the call's end)
		// can read them
		tx.setup().put(a)
		if tx.code >= 200 {
			a.PutStr(record.AttrSIPCallResult, calltrace.Result(tx.code))
		}
	}
	if tx.scanner {
		a.PutBool(record.AttrSIPScanner, true)
	}
	switch {
	case tx.code != 0:
		codeStatus(sp.Status(), tx.code)
	case tx.method != "ACK":
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage("no final response")
	}
	// as the node saw it: a request it received (SERVER) came in, its
	// responses went out
	in, out := "receive", "transmit"
	if kind == ptrace.SpanKindClient {
		in, out = out, in
	}
	evs := sp.Events()
	evs.EnsureCapacity(len(tx.events))
	for _, e := range tx.events {
		ev := evs.AppendEmpty()
		ev.SetTimestamp(pcommon.Timestamp(e.at))
		ea := ev.Attributes()
		dir := in
		if e.code == 0 {
			ev.SetName(e.method)
			ea.PutStr(record.AttrSIPRequestMethod, e.method)
		} else {
			ev.SetName(strconv.Itoa(e.code))
			ea.PutInt(record.AttrSIPResponseStatusCode, int64(e.code))
			if e.toTag != "" {
				ea.PutStr(record.AttrSIPToTag, e.toTag)
			}
			dir = out
		}
		if kind != ptrace.SpanKindInternal {
			ea.PutStr(record.AttrNetworkIODirection, dir)
		}
		ea.PutStr(record.AttrServiceInstanceID, tx.node.name)
		ea.PutBool(record.AttrSIPMessageRetransmission, e.retrans)
		if e.body != "" {
			ea.PutStr(record.AttrSIPMessageBody, e.body)
		}
	}
	sp.SetDroppedEventsCount(tx.dropped)
	tx.events = nil
}

func putEndpoint(a pcommon.Map, addrKey, portKey string, e endpoint) {
	if e.addr != "" {
		a.PutStr(addrKey, e.addr)
	}
	if e.port > 0 {
		a.PutInt(portKey, e.port)
	}
}

// emitCall emits what a call leaving the table holds: its transactions,
// leg spans and root (with its CDR), and CDR spans. At shutdown, only what
// completed.
func (t *tracer) emitCall(c *call) {
	shutdown := c.end == evShutdown
	for _, tx := range c.txs {
		switch {
		case tx.emitted:
		case shutdown && !tx.done:
			t.entries(tableTransactions, -1) // not emitted: counted as the call's eviction
		default:
			t.txSpan(c, tx)
		}
	}
	if c.ood {
		return
	}
	if len(c.txs) == 0 { // only a CDR came
		for _, rec := range c.cdrs {
			t.cdrWithoutMessages()
			t.cdrSpan(c.key, c.traceID, c.rootID, rec)
		}
		return
	}
	if shutdown {
		for _, rec := range c.cdrs {
			t.cdrSpan(c.key, c.traceID, c.parentOf(rec.callID), rec)
		}
		return
	}
	// each span takes the first CDR of its Call-ID; any other is a span
	var rootCDR *cdrRec
	legCDR := map[*leg]*cdrRec{}
	for _, rec := range c.cdrs {
		l := c.leg(rec.callID)
		switch {
		case rec.callID == c.key && rootCDR == nil:
			rootCDR = rec
		case rec.callID != c.key && l != nil && legCDR[l] == nil:
			legCDR[l] = rec
		default:
			t.cdrSpan(c.key, c.traceID, c.parentOf(rec.callID), rec)
		}
	}
	for _, l := range c.legs {
		if l.callID != c.key {
			t.legSpan(c, l, legCDR[l])
		}
	}
	t.rootSpan(c, rootCDR)
}

// spanEnd is the final response's capture (the ACK's for a non-2xx INVITE)
// or, for a transaction that got none, its last message's.
func (tx *txn) spanEnd() int64 {
	end := max(tx.end, tx.start)
	if tx.code == 0 {
		for _, e := range tx.events {
			end = max(end, e.at)
		}
	}
	return end
}

// bounds are the earliest start and latest end of the call's transactions
// (of one Call-ID when callID is not "").
func (c *call) bounds(callID string) (start, end int64) {
	for _, tx := range c.txs {
		if callID != "" && tx.callID != callID {
			continue
		}
		if start == 0 || tx.start < start {
			start = tx.start
		}
		end = max(end, tx.spanEnd())
	}
	return start, end
}

// lead is the leg whose setup the root describes: the one with the
// earliest initial INVITE (the caller's), else the key's, else the first.
func (c *call) lead() *leg {
	var lead *leg
	for _, l := range c.legs {
		if l.inviteAt != 0 && (lead == nil || l.inviteAt < lead.inviteAt) {
			lead = l
		}
	}
	if lead == nil {
		lead = c.leg(c.key)
	}
	if lead == nil && len(c.legs) > 0 {
		lead = c.legs[0]
	}
	return lead
}

func (t *tracer) rootSpan(c *call, rec *cdrRec) {
	t.spans(spanCall, 1)
	sp := t.out.spans(c.entry).AppendEmpty()
	sp.SetTraceID(c.traceID)
	sp.SetSpanID(c.rootID)
	sp.SetName(nameCall)
	sp.SetKind(ptrace.SpanKindInternal)
	start, end := c.bounds("")
	sp.SetStartTimestamp(pcommon.Timestamp(start))
	sp.SetEndTimestamp(pcommon.Timestamp(end))
	a := sp.Attributes()
	lead := c.lead()
	callID := c.key
	if c.leg(c.key) == nil && lead != nil {
		callID = lead.callID
	}
	a.PutStr(record.AttrSIPCallID, callID)
	if c.keyFromAttr {
		a.PutStr(record.AttrSIPCorrelationID, c.key)
	}
	partial := true
	for _, l := range c.legs {
		partial = partial && l.inviteAt == 0
	}
	if partial {
		a.PutBool(record.AttrSIPCallPartial, true)
	}
	// who ended the call: the first BYE, of whichever leg
	var bye *leg
	for _, l := range c.legs {
		if l.bye != 0 && (bye == nil || l.bye < bye.bye) {
			bye = l
		}
	}
	if lead != nil {
		c.setupAttrs(a, sp.Status(), lead)
	}
	if bye != nil && bye.initiator != "" {
		a.PutStr(record.AttrSIPCallDisconnectInitiator, bye.initiator)
	}
	putCDR(a, rec)
	putMedia(sp, c.media)
}

func (t *tracer) legSpan(c *call, l *leg, rec *cdrRec) {
	start, end := c.bounds(l.callID)
	if start == 0 {
		return // no transaction of its own: nothing to hold
	}
	t.spans(spanLeg, 1)
	sp := t.out.spans(c.entry).AppendEmpty()
	sp.SetTraceID(c.traceID)
	sp.SetSpanID(l.id)
	sp.SetParentSpanID(c.rootID)
	sp.SetName(nameLeg)
	sp.SetKind(ptrace.SpanKindInternal)
	sp.SetStartTimestamp(pcommon.Timestamp(start))
	sp.SetEndTimestamp(pcommon.Timestamp(end))
	a := sp.Attributes()
	a.PutStr(record.AttrSIPCallID, l.callID)
	c.setupAttrs(a, sp.Status(), l)
	putCDR(a, rec)
}

func seconds(from, to int64) float64 { return float64(to-from) / 1e9 }

// final is a leg's final response: the code its earliest initial INVITE
// transaction got (the caller's side: a proxy that tried another callee
// after a failure relays the last), at the earliest capture of that code on
// any hop, as the leg's other times are taken.
func (c *call) final(l *leg) (code int, at int64) {
	if l.first == nil || l.first.code == 0 {
		return 0, 0
	}
	code = l.first.code
	for _, tx := range c.txs {
		if tx.initial && tx.callID == l.callID && tx.code == code && (at == 0 || tx.finalAt < at) {
			at = tx.finalAt
		}
	}
	return code, at
}

// setup holds the capture times (Unix ns, 0: not seen) of an initial
// INVITE, its first response beyond 100, its first 18x, its 2xx and its
// final response.
type setup struct{ invite, resp, ring, answer, final int64 }

// put writes the setup's post-dial delay, setup and ringing durations.
func (s setup) put(a pcommon.Map) {
	if s.invite == 0 {
		return
	}
	if s.resp != 0 {
		a.PutDouble(record.AttrSIPCallPostDialDelay, seconds(s.invite, s.resp))
	}
	end := s.answer
	if end == 0 {
		end = s.final
	}
	if end == 0 {
		return
	}
	a.PutDouble(record.AttrSIPCallSetupDuration, seconds(s.invite, end))
	if s.ring != 0 {
		a.PutDouble(record.AttrSIPCallRingingDuration, seconds(s.ring, end))
	}
}

// setup is an initial INVITE transaction's setup on its own hop, from its
// events.
func (tx *txn) setup() setup {
	s := setup{invite: tx.start}
	if tx.code != 0 {
		s.final = tx.finalAt
	}
	for _, e := range tx.events {
		if e.code > 100 && (s.resp == 0 || e.at < s.resp) {
			s.resp = e.at
		}
		if e.code >= 180 && e.code < 190 && (s.ring == 0 || e.at < s.ring) {
			s.ring = e.at
		}
	}
	return s
}

// setupAttrs describes a leg's setup (of the call, on the root: its lead
// leg) and sets the span's status: an error for a 5xx, 6xx or 408 final
// response, a timeout and an eviction.
func (c *call) setupAttrs(a pcommon.Map, st ptrace.Status, l *leg) {
	end := c.end
	code, finalAt := c.final(l)
	switch {
	case code >= 200:
		a.PutStr(record.AttrSIPCallResult, calltrace.Result(code))
		a.PutInt(record.AttrSIPResponseStatusCode, int64(code))
	case end == evIdle:
		a.PutStr(record.AttrSIPCallResult, calltrace.ResultTimeout)
	}
	setup{invite: l.inviteAt, resp: l.respAt, ring: l.ringAt, answer: l.answerAt, final: finalAt}.put(a)
	if l.answerAt != 0 && l.bye != 0 {
		a.PutDouble(record.AttrSIPCallDuration, seconds(l.answerAt, l.bye))
	}
	if l.initiator != "" {
		a.PutStr(record.AttrSIPCallDisconnectInitiator, l.initiator)
	}
	if l.fromURI != "" {
		a.PutStr(record.AttrSIPFromURI, l.fromURI)
	}
	if l.toURI != "" {
		a.PutStr(record.AttrSIPToURI, l.toURI)
	}
	if l.ua != "" {
		a.PutStr(record.AttrUserAgentOriginal, l.ua)
	}
	if l.scanner {
		a.PutBool(record.AttrSIPScanner, true)
	}
	switch end {
	case "":
		codeStatus(st, code)
	case evIdle:
		st.SetCode(ptrace.StatusCodeError)
		st.SetMessage("timeout")
	default:
		st.SetCode(ptrace.StatusCodeError)
		st.SetMessage("evicted: " + string(end))
	}
}

// putCDR adds a CDR's fields under their record attribute names where the
// messages did not already say (they are what was captured; the CDR is the
// node's account).
func putCDR(a pcommon.Map, rec *cdrRec) {
	if rec == nil {
		return
	}
	for k, v := range rec.attrs.All() {
		if _, ok := a.Get(k); !ok {
			v.CopyTo(a.PutEmpty(k))
		}
	}
}

// cdrSpan emits a CDR as a span of its own ("SIP CDR") under parent: from
// the CDR's start to its end.
func (t *tracer) cdrSpan(key string, traceID pcommon.TraceID, parent pcommon.SpanID, rec *cdrRec) {
	t.spans(spanCDR, 1)
	sp := t.out.spans(rec.node).AppendEmpty()
	sp.SetTraceID(traceID)
	sp.SetSpanID(calltrace.CDRSpanID(key, rec.callID, rec.at))
	sp.SetParentSpanID(parent)
	sp.SetName(nameCDR)
	sp.SetKind(ptrace.SpanKindInternal)
	start, end := rec.at, rec.at
	if ts, ok := timeAttr(rec.attrs, record.AttrCDRTimestampStart); ok {
		start = ts
	}
	if ts, ok := timeAttr(rec.attrs, record.AttrCDRTimestampEnd); ok {
		end = ts
	}
	if end.Before(start) {
		end = start
	}
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	rec.attrs.CopyTo(sp.Attributes())
	if code, ok := record.Int(rec.attrs, record.AttrSIPResponseStatusCode); ok {
		codeStatus(sp.Status(), int(code))
	}
}

func timeAttr(m pcommon.Map, key string) (time.Time, bool) {
	s := record.Str(m, key)
	if s == "" {
		return time.Time{}, false
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	return ts, err == nil
}
