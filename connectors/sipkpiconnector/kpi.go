package sipkpiconnector

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/lru"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
	"github.com/siphon-otel/siphon-otel/internal/sipscanner"
)

// Metric indexes into store.metrics, in definition order.
const (
	mCalls = iota
	mCallDuration
	mCallSetup
	mPostDialDelay
	mRegistrationEvents
	mRequests
	mResponses
	mTransactions
	mRetransmissions
	mScannerDetections
	mScannerRequests
)

func metricDefs(cfg *Config) []*metricDef {
	return append([]*metricDef{
		mCalls: {name: "sip.calls", unit: "{call}", labels: []string{labelResult, labelStatusCode, labelInitiator},
			description: "Calls (INVITE CDRs) by result class, final response code and who ended them."},
		mCallDuration: {name: "sip.call.duration", unit: "s", isHistogram: true, bounds: cfg.Histograms.CallDuration,
			description: "Duration of answered calls, answer to end (ACD = sum / count)."},
		mCallSetup: {name: "sip.call.setup.duration", unit: "s", isHistogram: true, bounds: cfg.Histograms.Setup,
			labels:      []string{labelResult},
			description: "From the INVITE to the answer, or to the final response of an unanswered call (CDR timestamps)."},
		mPostDialDelay: {name: "sip.call.post_dial_delay", unit: "s", isHistogram: true, bounds: cfg.Histograms.Setup,
			description: "Post-dial delay (RFC 6076 SRD): from an initial INVITE to its first 18x or final response, from SIP messages."},
		mRegistrationEvents: {name: "sip.registration.events", unit: "{event}", labels: []string{labelRegEvent, labelStatusCode},
			description: "REGISTER CDRs by registration event and final response code."},
		mRequests: {name: "sip.requests", unit: "{request}", labels: []string{labelMethod},
			description: "SIP requests by method, each transaction once (retransmissions are not counted)."},
		mResponses: {name: "sip.responses", unit: "{response}", labels: []string{labelMethod, labelStatusCode},
			description: "SIP responses by CSeq method and code, each once per transaction and To-tag (retransmissions are not counted)."},
		mTransactions: {name: "sip.transactions", unit: "{transaction}", labels: []string{labelMethod, labelStatusCode},
			description: "Completed SIP transactions by method and first final response code; \"none\" when none came before transactions.timeout."},
		mRetransmissions: {name: "sip.retransmissions", unit: "{message}", labels: []string{labelMessageType, labelMethod},
			description: "Retransmitted SIP requests and responses."},
		mScannerDetections: {name: "sip.scanner.detections", unit: "{detection}", labels: []string{labelScannerReason},
			description: "Sources flagged as SIP scanners, once per episode, by reason (user_agent, flood)."},
		mScannerRequests: {name: "sip.scanner.requests", unit: "{request}", labels: []string{labelScannerReason},
			description: "Requests from sources flagged as SIP scanners, by reason."},
	}, mediaMetricDefs()...)
}

// The call result classes (label sip.call.result) are calltrace's, shared
// with the sipcall connector's root spans so that a series and the traces
// its exemplars open agree; the KPI formulas in the README and alerts/ are
// written in terms of these and of the code.
const resultAnswered = calltrace.ResultAnswered

func classify(code int) string { return calltrace.Result(code) }

// codeLabel keeps the label bounded: a SIP status code is 100..699.
func codeLabel(code int64) string {
	if code < 100 || code > 699 {
		return "invalid"
	}
	return codeLabels[code-100]
}

// codeLabels are the labels of codes 100..699, made once rather than for
// every response.
var codeLabels = func() []string {
	l := make([]string, 600)
	for i := range l {
		l[i] = strconv.Itoa(100 + i)
	}
	return l
}()

// methodLabel keeps the label bounded: RFC 3261 methods and their
// extensions; anything else is "other".
func methodLabel(m string) string {
	if n, ok := sipmsg.KnownMethod(m); ok {
		return n // a constant: the entries and points that keep it keep no message
	}
	return "other"
}

// txEntry is one SIP transaction seen at one hop.
type txEntry struct {
	method    string
	final     bool
	callIDLen uint32   // txKey starts with the Call-ID
	responses []string // code + To-tag of responses seen
	set       *dimSet
	txKey     string // Call-ID, CSeq number, CSeq method, branch
	corr      string // the record's sip.correlation_id when it is not the Call-ID
}

// ref is the transaction's call, for the exemplar of a transaction that
// never completed: read back from its key, so that an entry holds no more
// than the key it is stored under.
func (e *txEntry) ref() callRef {
	r := callRef{callID: e.txKey[:e.callIDLen], corr: e.corr}
	cseq, rest, _ := strings.Cut(e.txKey[e.callIDLen+1:], "\x00")
	r.cseqMethod, _, _ = strings.Cut(rest, "\x00")
	n, _ := strconv.ParseUint(cseq, 10, 32)
	r.cseq = uint32(n)
	return r
}

// setupEntry tracks an initial INVITE (Call-ID + CSeq, across hops) until
// its first 18x or final response.
type setupEntry struct {
	invite    time.Time
	done      bool
	responded bool // any response came, a 100 included
}

// sourceEntry is the scanner state of one source address.
type sourceEntry struct {
	windowStart time.Time
	count       int
	flooding    bool
	uaFlagged   bool
}

// kpi computes the metrics. It is not safe for concurrent use.
type kpi struct {
	cfg      *Config
	st       *store
	tx       *lru.Map[txEntry]
	setups   *lru.Map[setupEntry]
	sources  *lru.Map[sourceEntry]
	cdrs     *lru.Map[struct{}]  // CDRs counted within the duplicates window, by the hash of appendCDRKey
	keyBuf   []byte              // appendCDRKey's scratch
	txBuf    []byte              // message's transaction key
	respBuf  []byte              // message's response key
	extras   []string            // appendCDRKey's scratch
	uas      *sipscanner.Matcher // scanner.user_agents
	excluded []netip.Prefix
	flood    map[string]bool
	media    *media // nil when media.enabled is false

	// hooks for the connector's own telemetry
	invalid  func(reason string)
	overflow func()
	evicted  func(state, reason string)
	entries  func(state string, delta int64)
	clock    time.Time // processing time of the current call, for eviction callbacks

	// mediaReport counts the outcomes of records carrying a media report
	mediaReport func(outcome string, n int64)
}

func newKPI(cfg *Config) *kpi {
	k := &kpi{cfg: cfg, st: newStore(cfg, metricDefs(cfg)), flood: map[string]bool{},
		invalid: func(string) {}, overflow: func() {}, evicted: func(string, string) {}, entries: func(string, int64) {},
		mediaReport: func(string, int64) {}}
	k.tx = lru.New(cfg.Transactions.MaxEntries, func(_ string, e *txEntry, reason string) {
		// A transaction that never completed still counts, as "none".
		if !e.final && e.method != "ACK" {
			k.st.add(mTransactions, e.set, []string{e.method, valueNone}, 1, k.clock, e.ref())
		}
		k.evicted("transactions", reason)
		k.entries("transactions", -1)
	})
	k.setups = lru.New(cfg.Transactions.MaxEntries, func(_ string, _ *setupEntry, reason string) {
		k.evicted("setups", reason)
		k.entries("setups", -1)
	})
	k.cdrs = lru.New(max(cfg.Duplicates.MaxEntries, 1), func(_ string, _ *struct{}, reason string) {
		k.evicted("cdrs", reason)
		k.entries("cdrs", -1)
	})
	k.sources = lru.New(cfg.Scanner.MaxSources, func(_ string, _ *sourceEntry, reason string) {
		k.evicted("sources", reason)
		k.entries("sources", -1)
	})
	k.uas = sipscanner.NewMatcher(cfg.Scanner.UserAgents)
	k.excluded, _ = parsePrefixes(cfg.Scanner.Flood.ExcludeSources) // checked by Validate
	for _, m := range cfg.Scanner.Flood.Methods {
		k.flood[m] = true
	}
	k.media = newMedia(k)
	return k
}

func (k *kpi) dims(res, attrs pcommon.Map) *dimSet {
	set, over := k.st.resolve(res, attrs)
	if over {
		k.overflow()
	}
	return set
}

func num(m pcommon.Map, key string) (float64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return float64(v.Int()), true
	case pcommon.ValueTypeDouble:
		return v.Double(), true
	case pcommon.ValueTypeStr:
		f, err := strconv.ParseFloat(v.Str(), 64)
		return f, err == nil
	}
	return 0, false
}

func timeAttr(m pcommon.Map, key string) (time.Time, bool) {
	s := record.Str(m, key)
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// cdr counts one sip.cdr record, unless a copy of it was counted within the
// duplicates window; it returns what kind of CDR it was.
func (k *kpi) cdr(res pcommon.Map, lr plog.LogRecord, at, now time.Time) string {
	k.clock, k.st.now = now, now
	attrs := lr.Attributes()
	method := record.Str(attrs, record.AttrSIPRequestMethod)
	if method != "INVITE" && method != "REGISTER" {
		return "cdr_other"
	}
	code, ok := num(attrs, record.AttrSIPResponseStatusCode)
	if !ok {
		k.invalid("cdr_no_response_code")
		return "cdr_invalid"
	}
	// only CDRs that count are remembered
	if k.duplicate(lr, now) {
		return "cdr_duplicate"
	}
	ref := callRef{callID: record.Str(attrs, record.AttrSIPCallID), corr: record.Str(attrs, record.AttrSIPCorrelationID)}
	set := k.dims(res, attrs)
	if method == "REGISTER" {
		ev := record.Str(attrs, record.AttrCDRRegEvent)
		if ev == "" {
			ev = valueNone
		}
		k.st.add(mRegistrationEvents, set, []string{truncate(ev), codeLabel(int64(code))}, 1, at, ref)
		return "cdr_register"
	}
	result := classify(int(code))
	initiator := record.Str(attrs, record.AttrCDRDisconnectInitiator)
	switch initiator {
	case "caller", "callee", "timeout", "error":
	case "":
		initiator = valueNone
	default:
		initiator = "other"
	}
	k.st.add(mCalls, set, []string{result, codeLabel(int64(code)), initiator}, 1, at, ref)
	if result == resultAnswered {
		if d, ok := num(attrs, record.AttrCDRDurationSecs); ok && d >= 0 {
			k.st.observe(mCallDuration, set, nil, d, at, ref)
		} else {
			k.invalid("cdr_no_duration")
		}
	}
	start, okStart := timeAttr(attrs, record.AttrCDRTimestampStart)
	endKey := record.AttrCDRTimestampEnd
	if result == resultAnswered {
		endKey = record.AttrCDRTimestampAnswer
	}
	if end, okEnd := timeAttr(attrs, endKey); okStart && okEnd && !end.Before(start) {
		k.st.observe(mCallSetup, set, []string{result}, end.Sub(start).Seconds(), at, ref)
	} else {
		k.invalid("cdr_no_setup_times")
	}
	return "cdr_call"
}

// message counts one sip.message record.
func (k *kpi) message(res, attrs pcommon.Map, at time.Time, now time.Time) {
	k.clock, k.st.now = now, now
	callID := record.Str(attrs, record.AttrSIPCallID)
	cseqMethod := record.Str(attrs, record.AttrSIPCSeqMethod)
	cseq, okCSeq := num(attrs, record.AttrSIPCSeqNumber)
	if callID == "" || cseqMethod == "" || !okCSeq {
		k.invalid("message_no_call_id_or_cseq")
		return
	}
	method := record.Str(attrs, record.AttrSIPRequestMethod)
	code, isResponse := num(attrs, record.AttrSIPResponseStatusCode)
	if method == "" && !isResponse {
		k.invalid("message_not_request_or_response")
		return
	}
	// The keys are built in reused buffers and looked up through views of
	// them (lru.Map keeps no key it is given to look up): a message of a
	// known transaction allocates none. setupKey is txKey's start.
	k.txBuf = append(append(k.txBuf[:0], callID...), 0)
	k.txBuf = strconv.AppendInt(k.txBuf, int64(cseq), 10)
	setupLen := len(k.txBuf)
	k.txBuf = append(append(append(append(k.txBuf, 0), cseqMethod...), 0), record.Str(attrs, record.AttrSIPViaBranch)...)
	txKey, setupKey := view(k.txBuf), view(k.txBuf[:setupLen])
	corr := record.Str(attrs, record.AttrSIPCorrelationID)
	ref := callRef{callID: callID, corr: corr, cseq: uint32(cseq), cseqMethod: cseqMethod}
	set := k.dims(res, attrs)
	if !set.scannerSeries {
		// the scanner counters of a node exist at 0 from its first message,
		// so that its first detection is an increase an alert can see
		set.scannerSeries = true
		for _, r := range []string{"user_agent", "flood"} {
			k.st.add(mScannerDetections, set, []string{r}, 0, at, callRef{})
			k.st.add(mScannerRequests, set, []string{r}, 0, at, callRef{})
		}
	}
	mlabel := methodLabel(cseqMethod)

	if !isResponse {
		if _, seen := k.tx.Get(txKey, now); seen {
			k.st.add(mRetransmissions, set, []string{"request", mlabel}, 1, at, ref)
			return
		}
		k.addTx(txKey, mlabel, set, len(callID), corr, now)
		k.st.add(mRequests, set, []string{methodLabel(method)}, 1, at, ref)
		if method == "INVITE" && record.Str(attrs, record.AttrSIPToTag) == "" {
			if s, ok := k.setups.Get(setupKey, now); ok {
				if at.Before(s.invite) { // the other hop's copy came later but was sent first
					s.invite = at
				}
			} else {
				s := k.setups.Add(strings.Clone(setupKey), now)
				k.entries("setups", 1)
				s.invite = at
			}
		}
		k.scanner(res, attrs, set, method, ref, at, now)
		return
	}

	e, ok := k.tx.Get(txKey, now)
	if !ok { // the request was not captured (or has expired): the response still counts
		e = k.addTx(txKey, mlabel, set, len(callID), corr, now)
	}
	clabel := codeLabel(int64(code))
	k.respBuf = append(append(append(k.respBuf[:0], clabel...), 0), record.Str(attrs, record.AttrSIPToTag)...)
	rkey := view(k.respBuf)
	if slices.Contains(e.responses, rkey) {
		k.st.add(mRetransmissions, set, []string{"response", mlabel}, 1, at, ref)
		return
	}
	if len(e.responses) < 16 { // bounded: forks beyond 16 are counted, not remembered
		e.responses = append(e.responses, strings.Clone(rkey))
	}
	k.st.add(mResponses, set, []string{mlabel, clabel}, 1, at, ref)
	if code >= 200 && !e.final {
		e.final = true
		k.st.add(mTransactions, set, []string{mlabel, clabel}, 1, at, ref)
	}
	if cseqMethod == "INVITE" {
		if s, ok := k.setups.Get(setupKey, now); ok {
			s.responded = true
			if code > 100 && !s.done {
				s.done = true
				if d := at.Sub(s.invite); d >= 0 {
					k.st.observe(mPostDialDelay, set, nil, d.Seconds(), at, ref)
				}
			}
		}
	}
}

// addTx adds the transaction txKey (a view of a scratch buffer, copied
// here for the table to keep).
func (k *kpi) addTx(txKey, mlabel string, set *dimSet, callIDLen int, corr string, now time.Time) *txEntry {
	key := strings.Clone(txKey)
	e := k.tx.Add(key, now)
	k.entries("transactions", 1)
	*e = newTxEntry(mlabel, set, key, callIDLen, corr)
	return e
}

// view is b as a string without a copy, for lookups only: valid until b
// changes, never kept.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// newTxEntry is a new transaction's entry. It keeps no string of the
// record (a slice of the whole batch): the Call-ID is the start of txKey, a
// correlation key other than the Call-ID is copied.
func newTxEntry(method string, set *dimSet, txKey string, callIDLen int, corr string) txEntry {
	e := txEntry{method: method, set: set, txKey: txKey, callIDLen: uint32(callIDLen)}
	if corr != "" && corr != txKey[:callIDLen] {
		e.corr = strings.Clone(corr)
	}
	return e
}

// scanner flags sources by User-Agent and by floods of new requests.
func (k *kpi) scanner(res, attrs pcommon.Map, set *dimSet, method string, ref callRef, at, now time.Time) {
	src := record.Str(attrs, record.AttrSourceAddress)
	if src == "" {
		return
	}
	isUA := k.uas.Match(record.Str(attrs, record.AttrUserAgentOriginal))
	if !isUA && (!k.flood[method] || k.isExcluded(src)) {
		return
	}
	e, ok := k.sources.Get(src, now)
	if !ok {
		e = k.sources.Add(src, now)
		k.entries("sources", 1)
		e.windowStart = at
	}
	if isUA {
		if !e.uaFlagged {
			e.uaFlagged = true
			k.st.add(mScannerDetections, set, []string{"user_agent"}, 1, at, ref)
		}
		k.st.add(mScannerRequests, set, []string{"user_agent"}, 1, at, ref)
		return
	}
	window := k.cfg.Scanner.Flood.Window
	if at.Sub(e.windowStart) >= window {
		if e.count < k.cfg.Scanner.Flood.Threshold {
			e.flooding = false
		}
		e.windowStart, e.count = at, 0
	}
	e.count++
	switch {
	case e.flooding:
		k.st.add(mScannerRequests, set, []string{"flood"}, 1, at, ref)
	case e.count >= k.cfg.Scanner.Flood.Threshold:
		e.flooding = true
		k.st.add(mScannerDetections, set, []string{"flood"}, 1, at, ref)
		k.st.add(mScannerRequests, set, []string{"flood"}, uint64(e.count), at, ref)
	}
}

func (k *kpi) isExcluded(src string) bool {
	a, err := netip.ParseAddr(src)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range k.excluded {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// expire drops state past its lifetime; transactions that never completed
// are counted with code "none" as they go.
func (k *kpi) expire(now time.Time) {
	k.clock, k.st.now = now, now
	tc := k.cfg.Transactions
	k.tx.Sweep(func(_ string, e *txEntry, touched time.Time) bool {
		life := tc.Timeout
		switch {
		case e.final || e.method == "ACK":
			life = tc.Linger
		case len(e.responses) == 0:
			life = tc.UnansweredTimeout
		}
		return now.Sub(touched) > life
	})
	k.setups.Sweep(func(_ string, e *setupEntry, touched time.Time) bool {
		idle := now.Sub(touched)
		return idle > tc.Timeout || (e.done && idle > tc.Linger) || (!e.responded && idle > tc.UnansweredTimeout)
	})
	window := k.cfg.Scanner.Flood.Window
	k.sources.Sweep(func(_ string, _ *sourceEntry, touched time.Time) bool { return now.Sub(touched) > 2*window })
	k.cdrs.Sweep(func(_ string, _ *struct{}, touched time.Time) bool { return now.Sub(touched) > k.cfg.Duplicates.Window })
	k.expireMedia(now)
}

// duplicate tells whether a copy of the CDR lr was counted within the
// window, and remembers lr.
func (k *kpi) duplicate(lr plog.LogRecord, now time.Time) bool {
	if k.cfg.Duplicates.MaxEntries == 0 {
		return false
	}
	h := fnv.New128a()
	k.keyBuf = k.appendCDRKey(k.keyBuf[:0], lr)
	_, _ = h.Write(k.keyBuf)
	key := string(h.Sum(nil))
	if _, seen := k.cdrs.Get(key, now); seen {
		return true
	}
	k.cdrs.Add(key, now)
	k.entries("cdrs", 1)
	return false
}

// appendCDRKey appends what identifies a CDR: its fields as the record's
// attributes carry them (every SIPhon key and every script field,
// cdr.extra.*) and its time to the millisecond SIPhon writes. Two legs of a
// call, or a REGISTER and its refresh, differ in some field (leg, addresses,
// times, event); a copy does not, whether it kept its body (the original
// JSON), lost it or had it rendered again from the attributes (an exporter's
// source: attributes, received again by another tier, renders the time at
// milliseconds). Not the body, then, nor what the receiving collector adds:
// the observed time and the resource.
func (k *kpi) appendCDRKey(b []byte, lr plog.LogRecord) []byte {
	b = binary.AppendVarint(b, lr.Timestamp().AsTime().UnixMilli())
	attrs := lr.Attributes()
	for _, name := range cdrrecord.Attrs {
		if name == "" { // the timestamp, done
			continue
		}
		v, ok := attrs.Get(name)
		b = appendKeyValue(b, v, ok)
	}
	// script fields by name: attribute order is the order they were put in,
	// which a processor may change
	k.extras = k.extras[:0]
	for name := range attrs.All() {
		if strings.HasPrefix(name, record.AttrCDRExtraPrefix) {
			k.extras = append(k.extras, name)
		}
	}
	slices.Sort(k.extras)
	for _, name := range k.extras {
		v, _ := attrs.Get(name)
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = appendKeyValue(b, v, true)
	}
	return b
}

// appendKeyValue appends a typed, length-delimited value; a number is the
// same whether an integer or a double holds it (as for num).
func appendKeyValue(b []byte, v pcommon.Value, present bool) []byte {
	if !present {
		return append(b, 'a')
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return binary.AppendVarint(append(b, 'i'), v.Int())
	case pcommon.ValueTypeDouble:
		if d := v.Double(); d == math.Trunc(d) && math.Abs(d) < 1<<62 {
			return binary.AppendVarint(append(b, 'i'), int64(d))
		}
		return binary.BigEndian.AppendUint64(append(b, 'd'), math.Float64bits(v.Double()))
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return append(b, 't')
		}
		return append(b, 'f')
	case pcommon.ValueTypeStr:
		b = binary.AppendUvarint(append(b, 's'), uint64(len(v.Str())))
		return append(b, v.Str()...)
	}
	s := v.AsString()
	b = binary.AppendUvarint(append(b, 'o'), uint64(len(s)))
	return append(b, s...)
}

// Metric describes one metric the connector emits, for documentation and
// for checks of the content built on it (dashboards, alerts).
type Metric struct {
	Name, Unit, Description string
	Histogram               bool
	// Labels are the connector's own labels; the configured dimensions
	// come on top.
	Labels []string
}

// Metrics lists what the connector emits.
func Metrics() []Metric {
	defs := metricDefs(createDefaultConfig().(*Config))
	out := make([]Metric, len(defs))
	for i, d := range defs {
		out[i] = Metric{Name: d.name, Unit: d.unit, Description: d.description, Histogram: d.isHistogram, Labels: slices.Clone(d.labels)}
	}
	return out
}
