// Package sipcorr computes a call's correlation key (docs/call-traces.md,
// section 1) and writes it on sip.message and sip.cdr records as
// sip.correlation_id.
//
// The key of a Call-ID is established by the first of its messages on
// which a source matches (a header naming another Call-ID, the
// P-Charging-Vector icid, the RFC 7989 Session-ID, a header through a
// regex, the HEP correlation id); a Call-ID on which none matched keys
// itself. A bounded table remembers each INVITE dialog's key, so its later
// messages and its CDR get it without looking at their headers.
package sipcorr

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/record"
)

// Config is what a Correlator needs.
type Config struct {
	Sources    []Source
	MaxCallIDs int           // table entries
	TTL        time.Duration // how long an entry lasts unused
}

// Stats counts what one Process call did.
type Stats struct {
	Records   [numKinds]int64 // records by how they got their key
	Late      int64           // records that keyed themselves because their Call-ID's entry had been evicted
	Malformed [numKinds]int64 // values of a source's header (by the source's kind) that held no valid key
	// EvictedCapacity and EvictedExpired are table entries removed for
	// room and for idleness.
	EvictedCapacity, EvictedExpired int64
	EntriesDelta                    int64 // the change in the number of table entries
}

// Correlator keys records. It is safe for concurrent use.
type Correlator struct {
	sources []source
	seed    maphash.Seed
	now     func() time.Time

	mu    sync.Mutex
	table *table
}

// New checks cfg and makes a Correlator; now is its clock (time.Now when
// nil).
func New(cfg Config, now func() time.Time) (*Correlator, error) {
	srcs, err := compile(cfg.Sources)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Correlator{sources: srcs, seed: maphash.MakeSeed(), now: now, table: newTable(cfg.MaxCallIDs, cfg.TTL)}, nil
}

// Validate checks the sources of a configuration.
func Validate(sources []Source) error {
	_, err := compile(sources)
	return err
}

// Process writes sip.correlation_id on every sip.message and sip.cdr record
// of ld that has a Call-ID. Other records are left as they are.
func (c *Correlator) Process(ld plog.Logs) Stats {
	var st Stats
	c.mu.Lock()
	defer c.mu.Unlock()
	before := int64(c.table.len())
	capacity, expired := c.table.evictedCapacity, c.table.evictedExpired
	now := c.now()
	c.table.expire(now)
	for _, it := range record.All(ld) {
		c.record(it.Log, now, &st)
	}
	st.EvictedCapacity = c.table.evictedCapacity - capacity
	st.EvictedExpired = c.table.evictedExpired - expired
	st.EntriesDelta = int64(c.table.len()) - before
	return st
}

// Len is the number of Call-IDs the table holds.
func (c *Correlator) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.table.len()
}

func (c *Correlator) record(lr plog.LogRecord, now time.Time, st *Stats) {
	kind := record.KindOf(lr)
	if kind != record.KindSIPMessage && kind != record.KindCDR {
		return
	}
	attrs := lr.Attributes()
	if v, ok := attrs.Get(record.AttrSIPCorrelationID); ok && v.Str() != "" {
		st.Records[KindUpstream]++ // an agent keyed it, and routed it by that key
		return
	}
	callID := record.Str(attrs, record.AttrSIPCallID)
	if callID == "" {
		st.Records[KindNoCallID]++
		return
	}
	var key string
	var how Kind
	late := false
	if kind == record.KindCDR {
		key, how, late = c.cdr(callID, now)
	} else {
		key, how, late = c.message(lr, callID, now, st)
	}
	st.Records[how]++
	if late {
		st.Late++
	}
	attrs.PutStr(record.AttrSIPCorrelationID, key)
}

// cdr keys a CDR: from its Call-ID's entry, else by itself. A CDR ends
// its call's records, so it makes no entry.
func (c *Correlator) cdr(callID string, now time.Time) (string, Kind, bool) {
	h := maphash.String(c.seed, callID)
	e := c.table.get(h, now)
	switch {
	case e == nil:
		return callID, KindCallID, c.table.ghosts.has(h)
	case e.matched:
		return keyOr(e.key, callID), KindTable, false
	}
	return callID, KindCallID, e.late
}

// message keys a SIP message. Headers are read only when its Call-ID's key
// may still be found: a Call-ID the table does not hold, or one no source
// matched yet on a request without a To-tag (an INVITE seen after its 100
// Trying). A message with a To-tag of a held Call-ID never needs them.
func (c *Correlator) message(lr plog.LogRecord, callID string, now time.Time, st *Stats) (string, Kind, bool) {
	attrs := lr.Attributes()
	h := maphash.String(c.seed, callID)
	e := c.table.get(h, now)
	if e != nil && e.matched {
		return keyOr(e.key, callID), KindTable, false
	}
	m := message{callID: callID, isResponse: record.IsResponse(attrs), inDialog: record.Str(attrs, record.AttrSIPToTag) != ""}
	if e != nil && (m.isResponse || m.inDialog) {
		return callID, KindCallID, e.late
	}
	m.hepCorrID = record.Str(attrs, record.AttrHEPCorrelationID)
	m.text = body(lr.Body())
	key, how, found := c.find(&m, st)
	late := false
	if e == nil && record.Str(attrs, record.AttrSIPRequestMethod) == "INVITE" {
		// only INVITE dialogs are remembered: keep-alives, registrations
		// and other out-of-dialog requests must not push calls out
		e, late = c.table.add(h, now)
	} else if e == nil {
		late = c.table.ghosts.has(h)
	} else {
		late = e.late
	}
	if !found {
		return callID, KindCallID, late
	}
	if e != nil {
		e.matched = true
		if key != callID {
			e.key = key
		}
	}
	return key, how, false
}

// find tries the sources in order. A key that is itself a Call-ID with an
// established key (a chain of B2BUAs) resolves to that key.
func (c *Correlator) find(m *message, st *Stats) (string, Kind, bool) {
	for i := range c.sources {
		s := &c.sources[i]
		k, malformed := s.key(m)
		if malformed {
			st.Malformed[s.kind]++
		}
		if k == "" {
			continue
		}
		if e := c.table.peek(maphash.String(c.seed, k)); e != nil && e.matched && e.key != "" {
			return e.key, s.kind, true
		}
		// a copy: k may be a substring of the message, which the table
		// and the attribute must not keep alive
		return strings.Clone(k), s.kind, true
	}
	return "", 0, false
}

func keyOr(key, callID string) string {
	if key == "" {
		return callID
	}
	return key
}

// body returns a record's body as text: the SIP message.
func body(b pcommon.Value) string {
	switch b.Type() {
	case pcommon.ValueTypeStr:
		return b.Str()
	case pcommon.ValueTypeBytes:
		return string(b.Bytes().AsRaw())
	}
	return ""
}
