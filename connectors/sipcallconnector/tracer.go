package sipcallconnector

import (
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/siphon-otel/siphon-otel/internal/callmedia"
	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/lru"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
	"github.com/siphon-otel/siphon-otel/internal/sipscanner"
)

// Bounds that need no setting.
const (
	// maxEvents is the events kept per transaction span (an INVITE with its
	// provisional responses and a full run of retransmissions fits); more
	// are counted in the span's dropped events.
	maxEvents = 64
	// maxNodes is the capturing nodes remembered (resource, learned
	// addresses); the least recently active goes first.
	maxNodes = 1024
	// maxNodeAddresses bounds the addresses learned per node.
	maxNodeAddresses = 64
)

// endpoint is one end of a captured message.
type endpoint struct {
	addr string
	port int64
}

func (e endpoint) String() string { return calltrace.Endpoint(e.addr, e.port) }

// event is one captured message of a transaction.
type event struct {
	at      int64  // capture time, Unix ns
	code    int    // status code; 0 for a request
	method  string // the request's method (ACK, in an INVITE transaction)
	toTag   string // a response's To tag
	body    string // include_body
	retrans bool
}

// txn is one SIP transaction on one hop as one node captured it: a span.
type txn struct {
	id         pcommon.SpanID
	node       *node
	callID     string
	method     string // the CSeq method
	cseq       uint32
	branch     string
	fromTag    string
	transport  string
	src, dst   endpoint // the request's
	hasRequest bool
	initial    bool  // an initial INVITE (no To tag)
	start, end int64 // capture times, Unix ns
	finalAt    int64 // the first final response's capture
	code       int   // the first final response's code; 0: none yet
	acked      bool  // the ACK of a non-2xx came (in this transaction)
	scanner    bool  // its request, initial or out of dialog, came from a scanner's User-Agent
	done       bool
	doneAt     time.Time // connector clock, for linger
	emitted    bool
	events     []event
	dropped    uint32 // events beyond maxEvents
}

// leg is one Call-ID of a call. Its times are capture times (Unix ns, 0:
// not seen) of its initial INVITE, first response beyond 100, first 18x,
// first 2xx and first BYE.
type leg struct {
	callID             string
	id                 pcommon.SpanID // its leg span; the root's for the key's Call-ID
	fromTag            string         // of its initial INVITE
	fromURI, toURI, ua string
	first              *txn // its earliest initial INVITE transaction
	inviteAt, respAt   int64
	ringAt, answerAt   int64
	bye                int64
	initiator          string // caller, callee: who sent the BYE (or the CANCEL)
	scanner            bool   // its initial INVITE came from a scanner's User-Agent
}

// cdrRec is a CDR held for its call.
type cdrRec struct {
	callID string
	at     time.Time // the record's Timestamp
	attrs  pcommon.Map
	node   *node
}

// call is a call in flight, or an out-of-dialog transaction (ood).
type call struct {
	key         string
	ood         bool
	keyFromAttr bool // the key is the record's sip.correlation_id
	traceID     pcommon.TraceID
	rootID      pcommon.SpanID
	created     time.Time // connector clock
	entry       *node     // the node of its first record: the root's resource
	legs        []*leg
	txs         []*txn
	spans       int // spans it has or will have: root, legs, transactions
	established bool
	responded   bool // a response to any of its requests was seen
	ended       bool
	endedAt     time.Time
	end         eviction // why it ended early, "" when it did not
	cdrs        []*cdrRec
	messages    int
	media       *callMedia
}

// tracer holds the calls in flight and builds their spans. It is not safe
// for concurrent use.
type tracer struct {
	cfg   *Config
	calls *lru.Map[call]
	ended *lru.Map[time.Time] // keys whose root left, until when
	// out-of-dialog transactions and their ended keys: tables of their own,
	// so that a flood of them evicts no call
	oodCalls   *lru.Map[call]
	oodEnded   *lru.Map[time.Time]
	nodes      *lru.Map[node]
	configured map[string]map[endpoint]struct{} // node name -> configured addresses
	ood        map[string]bool
	out        batch
	clock      time.Time // of the current operation, for eviction callbacks
	// media gathers the calls' media reports into streams (nil: media off)
	media *callmedia.Aggregator[bool]
	hooks
}

func newTracer(cfg *Config, h hooks) *tracer {
	t := &tracer{cfg: cfg, configured: map[string]map[endpoint]struct{}{}, ood: map[string]bool{}, hooks: h}
	endedOut := func(string, *time.Time, string) { t.entries(tableEnded, -1) }
	t.calls = lru.New(cfg.MaxCalls, t.onEvict)
	t.ended = lru.New(cfg.MaxCalls, endedOut)
	t.oodCalls = lru.New(cfg.OutOfDialog.MaxTransactions, t.onEvict)
	t.oodEnded = lru.New(cfg.OutOfDialog.MaxTransactions, endedOut)
	t.nodes = lru.New(maxNodes, func(string, *node, string) { t.entries(tableNodes, -1) })
	for _, m := range cfg.OutOfDialog.Methods {
		t.ood[m] = true
	}
	for _, n := range cfg.Nodes {
		set := map[endpoint]struct{}{}
		for _, a := range n.Addresses {
			if e, err := parseNodeAddress(a); err == nil { // checked by Validate
				set[e] = struct{}{}
			}
		}
		t.configured[n.Name] = set
	}
	t.out.reset()
	if cfg.Media.Enabled {
		t.newMedia()
	}
	return t
}

// method returns the stored name of a usual method and a copy of another:
// the attribute's string may be a slice of the whole message, which a
// stored reference would keep alive.
func method(m string) string {
	if n, ok := sipmsg.KnownMethod(m); ok {
		return n
	}
	return strings.Clone(m)
}

// captureTime is the record's capture time, else when it was received,
// else now.
func captureTime(lr plog.LogRecord, now time.Time) int64 {
	if ts := lr.Timestamp(); ts != 0 {
		return int64(ts)
	}
	if ts := lr.ObservedTimestamp(); ts != 0 {
		return int64(ts)
	}
	return now.UnixNano()
}

// msg is the summary of a sip.message record the tracer works with.
type msg struct {
	callID     string
	cseq       uint32
	cseqMethod string
	method     string // request method; "" for a response
	code       int    // response code; 0 for a request
	toTag      string
	fromTag    string
	branch     string
	src, dst   endpoint
	at         int64
	lr         plog.LogRecord
}

func (m *msg) isResponse() bool { return m.code != 0 }

// parse reads a sip.message record; it returns the reason when the record
// cannot be traced.
func parse(lr plog.LogRecord, now time.Time) (msg, malformed) {
	a := lr.Attributes()
	m := msg{callID: record.Str(a, record.AttrSIPCallID), cseqMethod: record.Str(a, record.AttrSIPCSeqMethod), lr: lr}
	if m.callID == "" {
		return m, badNoCallID
	}
	cseq, ok := record.Int(a, record.AttrSIPCSeqNumber)
	if m.cseqMethod == "" || !ok || cseq < 0 || cseq > 1<<32-1 {
		return m, badNoCSeq
	}
	m.cseq = uint32(cseq)
	if code, ok := record.Int(a, record.AttrSIPResponseStatusCode); ok {
		if code < 100 || code > 699 {
			return m, badNotSIP
		}
		m.code = int(code)
	} else if m.method = record.Str(a, record.AttrSIPRequestMethod); m.method == "" {
		return m, badNotSIP
	}
	m.toTag = record.Str(a, record.AttrSIPToTag)
	m.fromTag = record.Str(a, record.AttrSIPFromTag)
	m.branch = record.Str(a, record.AttrSIPViaBranch)
	m.src.addr = record.Str(a, record.AttrSourceAddress)
	m.src.port, _ = record.Int(a, record.AttrSourcePort)
	m.dst.addr = record.Str(a, record.AttrDestinationAddress)
	m.dst.port, _ = record.Int(a, record.AttrDestinationPort)
	m.at = captureTime(lr, now)
	return m, ""
}

// isScanner tells whether the request that starts a call (its initial
// INVITE) or an out-of-dialog transaction came from a SIP scanner's
// User-Agent (the list sipproxy blocks and sipkpi counts); other requests
// are not looked at.
func isScanner(c *call, m *msg) bool {
	return (c.ood || m.method == "INVITE" && m.toTag == "") &&
		sipscanner.Match(record.Str(m.lr.Attributes(), record.AttrUserAgentOriginal))
}

// node returns the capturing node of a record's resource, remembering it.
func (t *tracer) node(res pcommon.Resource, now time.Time) *node {
	name := record.Node(res)
	if n, ok := t.nodes.Get(name, now); ok {
		return n
	}
	n := t.nodes.Add(name, now)
	t.entries(tableNodes, 1)
	n.name = name
	n.res = pcommon.NewResource()
	res.CopyTo(n.res)
	n.fixed = t.configured[name]
	return n
}

// tables are the calls in flight and the ended keys of calls (ood false)
// or of out-of-dialog transactions.
func (t *tracer) tables(ood bool) (*lru.Map[call], *lru.Map[time.Time]) {
	if ood {
		return t.oodCalls, t.oodEnded
	}
	return t.calls, t.ended
}

// isEnded tells whether key's root already left (its late messages are not
// traced).
func (t *tracer) isEnded(key string, ood bool, now time.Time) bool {
	_, ended := t.tables(ood)
	until, ok := ended.Peek(key)
	return ok && now.Before(*until)
}

// newCall starts tracing key.
func (t *tracer) newCall(key string, ood bool, n *node, now time.Time) *call {
	calls, _ := t.tables(ood)
	c := calls.Add(key, now)
	*c = call{key: key, ood: ood, traceID: calltrace.TraceID(key), created: now, entry: n}
	if ood {
		t.entries(tableOutOfDialog, 1)
	} else {
		c.rootID = calltrace.RootSpanID(key)
		c.spans = 1
		t.entries(tableCalls, 1)
	}
	return c
}

// message traces one sip.message record.
func (t *tracer) message(res pcommon.Resource, lr plog.LogRecord, now time.Time) outcome {
	t.clock = now
	m, bad := parse(lr, now)
	if bad != "" {
		t.malformed(bad)
		return outMalformed
	}
	corr := record.Str(lr.Attributes(), record.AttrSIPCorrelationID)
	key, keyFromAttr := calltrace.Key(corr, m.callID), corr != ""
	n := t.node(res, now)
	c, ok := t.calls.Get(key, now)
	if !ok {
		if t.isEnded(key, false, now) {
			return outMessageLate
		}
		switch {
		case !calltrace.IsDialogMethod(m.cseqMethod):
			return t.outOfDialog(n, &m, now)
		case m.method == "INVITE" && m.toTag == "":
			key = strings.Clone(key)
			c = t.newCall(key, false, n, now)
		default:
			// in a dialog whose start was not seen: a restart, an eviction
			t.malformed(badUnknownDialog)
			key = strings.Clone(key)
			c = t.newCall(key, false, n, now)
			c.established = m.cseqMethod != "INVITE" && m.cseqMethod != "CANCEL" || (!m.isResponse() && m.toTag != "")
		}
		c.keyFromAttr = keyFromAttr
	}
	return t.inCall(c, n, &m, now, outMessage)
}

// outOfDialog traces a transaction outside an INVITE dialog: a trace of
// its own.
func (t *tracer) outOfDialog(n *node, m *msg, now time.Time) outcome {
	if !t.ood[m.cseqMethod] {
		return outOutOfDialogOff
	}
	key := calltrace.OutOfDialogKey(m.callID, m.cseq, m.cseqMethod)
	c, ok := t.oodCalls.Get(key, now)
	if !ok {
		if t.isEnded(key, true, now) {
			return outMessageLate
		}
		c = t.newCall(key, true, n, now)
	}
	return t.inCall(c, n, m, now, outOutOfDialog)
}

// inCall adds a message to its call; ok is the outcome when it is traced.
func (t *tracer) inCall(c *call, n *node, m *msg, now time.Time, ok outcome) outcome {
	c.messages++
	var l *leg
	if !c.ood {
		if l = c.leg(m.callID); l == nil {
			if !t.room(c) {
				return outSpanLimit
			}
			l = c.addLeg(m.callID)
		}
	}
	if m.isResponse() {
		c.responded = true
		return t.response(c, l, n, m, now, ok)
	}
	return t.request(c, l, n, m, now, ok)
}

// room tells whether the call may have one more span; if not, it evicts
// the call.
func (t *tracer) room(c *call) bool {
	if c.spans < t.cfg.MaxSpansPerCall {
		c.spans++
		return true
	}
	c.end = evMaxSpans
	t.evicted(evMaxSpans)
	calls, _ := t.tables(c.ood)
	calls.Remove(c.key, string(evMaxSpans))
	return false
}

func (c *call) leg(callID string) *leg {
	for _, l := range c.legs {
		if l.callID == callID {
			return l
		}
	}
	return nil
}

func (c *call) addLeg(callID string) *leg {
	l := &leg{callID: strings.Clone(callID)}
	if callID == c.key {
		l.id = c.rootID
		c.spans-- // the root is this leg's span, already counted
	} else {
		l.id = calltrace.LegSpanID(c.key, callID)
	}
	c.legs = append(c.legs, l)
	return l
}

// find returns the transaction of a request (src -> dst) at node n. The
// branch tells a hop's transaction from another's; without one (RFC 2543)
// the addresses do.
func (c *call) find(n *node, callID string, cseq uint32, method, branch string, src, dst endpoint) *txn {
	for i := len(c.txs) - 1; i >= 0; i-- {
		tx := c.txs[i]
		if tx.node == n && tx.cseq == cseq && tx.method == method && tx.branch == branch && tx.callID == callID &&
			(branch != "" || tx.src.addr == src.addr && tx.dst.addr == dst.addr) {
			return tx
		}
	}
	return nil
}

func (t *tracer) addTx(c *call, l *leg, n *node, m *msg, src, dst endpoint) *txn {
	tx := &txn{node: n, method: method(m.cseqMethod), cseq: m.cseq, branch: strings.Clone(m.branch),
		fromTag: strings.Clone(m.fromTag), src: src, dst: dst, start: m.at, end: m.at}
	if l != nil {
		tx.callID = l.callID
	} else {
		tx.callID = strings.Clone(m.callID)
	}
	tx.transport = record.Str(m.lr.Attributes(), record.AttrNetworkTransport)
	c.txs = append(c.txs, tx)
	t.entries(tableTransactions, 1)
	tx.setID(c.key)
	return tx
}

func (tx *txn) setID(key string) {
	tx.id = calltrace.TransactionSpanID(calltrace.Transaction{Key: key, CallID: tx.callID, Node: tx.node.name,
		Source: tx.src.String(), Destination: tx.dst.String(), CSeqNumber: tx.cseq, CSeqMethod: tx.method, Branch: tx.branch})
}

func (t *tracer) addEvent(tx *txn, m *msg, retrans bool) {
	if len(tx.events) >= maxEvents {
		tx.dropped++
		return
	}
	e := event{at: m.at, code: m.code, retrans: retrans}
	if m.isResponse() {
		e.toTag = strings.Clone(m.toTag)
	} else {
		e.method = method(m.method)
	}
	if t.cfg.IncludeBody {
		e.body = m.lr.Body().AsString()
	}
	tx.events = append(tx.events, e)
}

func (tx *txn) complete(now time.Time) {
	if !tx.done {
		tx.done, tx.doneAt = true, now
	}
}

func (t *tracer) request(c *call, l *leg, n *node, m *msg, now time.Time, ok outcome) outcome {
	if m.method == "ACK" && m.branch != "" {
		// the ACK of a non-2xx final response is in the INVITE's transaction
		if tx := c.find(n, m.callID, m.cseq, "INVITE", m.branch, m.src, m.dst); tx != nil {
			if tx.emitted {
				return outMessageLate
			}
			t.addEvent(tx, m, tx.acked)
			if !tx.acked {
				tx.acked = true
				tx.end = max(tx.end, m.at)
				tx.complete(now)
			}
			return ok
		}
	}
	tx := c.find(n, m.callID, m.cseq, m.cseqMethod, m.branch, m.src, m.dst)
	switch {
	case tx == nil:
		if !t.room(c) {
			return outSpanLimit
		}
		tx = t.addTx(c, l, n, m, m.src, m.dst)
		tx.hasRequest = true
		tx.scanner = isScanner(c, m)
	case tx.emitted:
		return outMessageLate
	case !tx.hasRequest:
		// its response came first (reordered capture): the request is its start
		tx.hasRequest, tx.src, tx.dst, tx.start = true, m.src, m.dst, min(tx.start, m.at)
		tx.setID(c.key)
		tx.scanner = isScanner(c, m)
	default:
		for _, e := range tx.events {
			if e.code == 0 && e.method == m.method {
				t.addEvent(tx, m, true)
				return ok
			}
		}
	}
	t.addEvent(tx, m, false)
	if m.method == "ACK" {
		tx.complete(now) // a transaction without responses
	}
	c.learn(n, tx)
	if l == nil {
		return ok
	}
	switch m.method {
	case "INVITE":
		if m.toTag != "" {
			break
		}
		tx.initial = true
		if l.first == nil || tx.start < l.first.start {
			l.first = tx
		}
		if l.inviteAt == 0 || m.at < l.inviteAt {
			l.inviteAt = m.at
		}
		if l.fromTag == "" {
			l.fromTag = tx.fromTag
			body := m.lr.Body().AsString()
			l.fromURI = strings.Clone(sipmsg.AddrURI(sipmsg.FirstHeader(body, "From")))
			l.toURI = strings.Clone(sipmsg.AddrURI(sipmsg.FirstHeader(body, "To")))
			l.ua = strings.Clone(record.Str(m.lr.Attributes(), record.AttrUserAgentOriginal))
			l.scanner = tx.scanner
		}
	case "BYE":
		if l.bye == 0 || m.at < l.bye {
			l.bye = m.at
			l.initiator = ""
			if l.fromTag != "" {
				l.initiator = "callee"
				if m.fromTag == l.fromTag {
					l.initiator = "caller"
				}
			}
		}
		c.finish(now)
	case "CANCEL":
		if l.bye == 0 {
			l.initiator = "caller"
		}
	}
	return ok
}

func (t *tracer) response(c *call, l *leg, n *node, m *msg, now time.Time, ok outcome) outcome {
	// a response goes back the way its request came
	tx := c.find(n, m.callID, m.cseq, m.cseqMethod, m.branch, m.dst, m.src)
	switch {
	case tx == nil:
		t.malformed(badResponseNoRequest)
		if !t.room(c) {
			return outSpanLimit
		}
		tx = t.addTx(c, l, n, m, m.dst, m.src)
		if tx.method == "INVITE" && l != nil && (l.first == nil || l.first.cseq == tx.cseq) {
			tx.initial = true
			if l.first == nil {
				l.first = tx
			}
		}
	case tx.emitted:
		return outMessageLate
	default:
		for _, e := range tx.events {
			if e.code == m.code && e.toTag == m.toTag {
				t.addEvent(tx, m, true)
				return ok
			}
		}
	}
	t.addEvent(tx, m, false)
	final := m.code >= 200 && tx.code == 0
	switch {
	case final:
		tx.code, tx.finalAt, tx.end = m.code, m.at, max(m.at, tx.start)
		tx.complete(now)
	case tx.code == 0: // an incomplete transaction ends at its last response
		tx.end = max(tx.end, m.at)
	}
	if !tx.initial || l == nil {
		return ok
	}
	if m.code > 100 && (l.respAt == 0 || m.at < l.respAt) {
		l.respAt = m.at
	}
	if m.code >= 180 && m.code < 190 && (l.ringAt == 0 || m.at < l.ringAt) {
		l.ringAt = m.at
	}
	if m.code >= 200 && m.code < 300 {
		c.established = true
		if l.answerAt == 0 || m.at < l.answerAt {
			l.answerAt = m.at
		}
	}
	if final && m.code >= 300 && c.failed() {
		c.finish(now)
	}
	return ok
}

// failed tells whether every initial INVITE of the call got a final
// response and none was a 2xx: the call is over.
func (c *call) failed() bool {
	for _, tx := range c.txs {
		if tx.initial && tx.code < 300 {
			return false
		}
	}
	return true
}

func (c *call) finish(now time.Time) {
	if !c.ended {
		c.ended, c.endedAt = true, now
	}
}

// learn marks the node's own addresses: an address at which one request of
// the call arrived and from which the same request (method, CSeq, From tag)
// left is the node's.
func (c *call) learn(n *node, r *txn) {
	for _, tx := range c.txs {
		if tx == r || tx.node != n || !tx.hasRequest || tx.method != r.method || tx.cseq != r.cseq || tx.fromTag != r.fromTag {
			continue
		}
		if tx.dst.addr == r.src.addr { // tx arrived where r left from
			n.learn(r.src, tx.dst.port == r.src.port)
		}
		if tx.src.addr == r.dst.addr { // r arrived where tx left from
			n.learn(r.dst, tx.src.port == r.dst.port)
		}
	}
}

// cdr holds a sip.cdr record for its call's root or leg span, or makes it a
// span of its own when the root already left.
func (t *tracer) cdr(res pcommon.Resource, lr plog.LogRecord, now time.Time) outcome {
	t.clock = now
	a := lr.Attributes()
	callID := record.Str(a, record.AttrSIPCallID)
	if callID == "" {
		t.malformed(badNoCallID)
		return outMalformed
	}
	corr := record.Str(a, record.AttrSIPCorrelationID)
	key, keyFromAttr := calltrace.Key(corr, callID), corr != ""
	rec := &cdrRec{callID: strings.Clone(callID), at: lr.Timestamp().AsTime(), attrs: pcommon.NewMap(), node: t.node(res, now)}
	record.CopyOwned(a, rec.attrs)
	// Peek: a CDR is no activity of the call, its linger runs on
	if c, ok := t.calls.Peek(key); ok {
		for _, h := range c.cdrs {
			if h.callID == rec.callID && h.at.Equal(rec.at) {
				return outCDRDuplicate
			}
		}
		c.cdrs = append(c.cdrs, rec)
		return outCDR
	}
	if t.isEnded(key, false, now) {
		t.cdrSpan(key, calltrace.TraceID(key), calltrace.RootSpanID(key), rec)
		return outCDRLate
	}
	// the CDR came first: it waits cdr_wait for the call's messages
	c := t.newCall(strings.Clone(key), false, rec.node, now)
	c.keyFromAttr = keyFromAttr
	c.cdrs = append(c.cdrs, rec)
	return outCDR
}

// sweep emits what is due and ends the calls past a bound.
func (t *tracer) sweep(now time.Time) {
	t.clock = now
	cfg := t.cfg
	if t.media != nil {
		t.media.Expire(now) // the streams that end reach their roots first
	}
	due := func(_ string, c *call, touched time.Time) bool {
		idle := now.Sub(touched)
		switch {
		case now.Sub(c.created) >= cfg.MaxCallDuration:
			c.end = evMaxCallDuration
		case c.messages == 0: // a CDR waiting for its call's messages
			return now.Sub(c.created) >= cfg.CDRWait
		case c.ood && c.allEmitted():
			return true
		case c.ended && idle >= cfg.Linger && (len(c.cdrs) > 0 || now.Sub(c.endedAt) >= cfg.CDRWait) &&
			!t.awaitsMedia(c, now):
			return true
		case !c.ended && !c.established && (idle >= cfg.IdleTimeout || !c.responded && idle >= cfg.UnansweredTimeout):
			c.end = evIdle
		default:
			t.emitDone(c, now, cfg.Linger)
			return false
		}
		t.evicted(c.end)
		return true
	}
	expired := func(_ string, until *time.Time, _ time.Time) bool { return !now.Before(*until) }
	for _, ood := range []bool{false, true} {
		calls, ended := t.tables(ood)
		calls.Sweep(due)
		ended.Sweep(expired)
	}
}

// shutdown emits what is complete: the transactions that completed and the
// calls that ended, without waiting; the rest is counted.
func (t *tracer) shutdown(now time.Time) {
	t.clock = now
	if t.media != nil {
		t.media.EndAll() // a stream cut short still reaches its root
	}
	for _, calls := range []*lru.Map[call]{t.calls, t.oodCalls} {
		calls.Sweep(func(_ string, c *call, _ time.Time) bool {
			if !c.ended && c.messages > 0 && !(c.ood && c.allDone()) {
				c.end = evShutdown
				t.evicted(evShutdown)
			}
			return true
		})
	}
}

func (c *call) allEmitted() bool {
	for _, tx := range c.txs {
		if !tx.emitted {
			return false
		}
	}
	return true
}

func (c *call) allDone() bool {
	for _, tx := range c.txs {
		if !tx.done {
			return false
		}
	}
	return true
}

// emitDone emits the transactions of c that completed linger ago.
func (t *tracer) emitDone(c *call, now time.Time, linger time.Duration) {
	for _, tx := range c.txs {
		if tx.done && !tx.emitted && now.Sub(tx.doneAt) >= linger {
			t.txSpan(c, tx)
		}
	}
}

// onEvict emits whatever a call that leaves the table still holds and
// remembers that it left.
func (t *tracer) onEvict(key string, c *call, reason string) {
	if reason == lru.ReasonCapacity {
		c.end = evMaxCalls
		if c.ood {
			c.end = evMaxOutOfDialog
		}
		t.evicted(c.end)
	}
	t.emitCall(c)
	if c.ood {
		t.entries(tableOutOfDialog, -1)
	} else {
		t.entries(tableCalls, -1)
	}
	if c.end == evShutdown {
		return
	}
	// late messages (and a late CDR) are recognised for linger, or
	// cdr_wait, after a normal end; after an eviction, for as long as the
	// rest of the call may go on
	keep := max(t.cfg.Linger, t.cfg.CDRWait)
	if c.end != "" {
		keep = t.cfg.MaxCallDuration
	}
	_, ended := t.tables(c.ood)
	until, ok := ended.Peek(key)
	if !ok {
		until = ended.Add(key, t.clock)
		t.entries(tableEnded, 1)
	}
	*until = t.clock.Add(keep)
}

// take returns the spans built since the last take.
func (t *tracer) take() ptrace.Traces {
	td := t.out.td
	t.out.reset()
	return td
}
