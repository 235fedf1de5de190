// Package calls tracks the proxy's calls from INVITE to their end, for the
// dialog gauges and for one CDR per call in SIPhon's exact JSON.
package calls

import (
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/proxy/cdrsink"
)

// Who ended a call (SIPhon's disconnect_initiator).
const (
	Caller  = "caller"
	Callee  = "callee"
	Timeout = "timeout"
	Error   = "error"
)

// Call is one INVITE dialog (or its attempt).
type Call struct {
	CallID        string    `json:"call_id"`
	FromTag       string    `json:"-"`
	FromURI       string    `json:"from_uri"`
	ToURI         string    `json:"to_uri"`
	RURI          string    `json:"ruri"`
	SourceIP      string    `json:"source_ip"`
	DestinationIP string    `json:"destination_ip"`
	Transport     string    `json:"transport"`
	UserAgent     string    `json:"user_agent"`
	AuthUser      string    `json:"auth_user"`
	Start         time.Time `json:"timestamp_start"`
	Answer        time.Time `json:"-"`
	State         string    `json:"state"` // trying, early, confirmed
	code          int
	initiator     string
	reason        string
	ackPending    bool
	byePending    bool // a BYE came before the INVITE's final response
}

type key struct{ callID, fromTag string }

// Gauges receive the counts the tracker keeps.
type Gauges interface {
	Dialogs(n int)             // confirmed dialogs (siphon_dialogs_active)
	CDRSessions(n int)         // calls with an open CDR (siphon_cdr_sessions)
	ProxyDialogSessions(n int) // INVITEs in their 2xx/ACK window (siphon_proxy_dialog_sessions)
}

// Tracker holds the calls.
type Tracker struct {
	// OnEnd, when set, learns of every call that ended (answered and
	// hung up, failed, cancelled, timed out or expired) by its Call-ID
	// and caller's tag. It runs under the tracker's lock: it must not
	// block or call the tracker.
	OnEnd func(callID, callerTag string)

	mu     sync.Mutex
	calls  map[key]*Call
	g      Gauges
	emit   func(cdrsink.Record) // nil when CDRs are off
	now    func() time.Time
	window int
}

// New returns a tracker; emit receives each finished call's CDR (nil for
// none).
func New(g Gauges, emit func(cdrsink.Record)) *Tracker {
	return &Tracker{calls: map[key]*Call{}, g: g, emit: emit, now: time.Now}
}

// Invite opens a call for an initial INVITE. A repeated INVITE of the same
// call (a retransmission that made it past the transaction, or a fork) is
// ignored.
func (t *Tracker) Invite(c Call) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key{c.CallID, c.FromTag}
	if _, ok := t.calls[k]; ok {
		return
	}
	c.State, c.Start = "trying", t.now()
	t.calls[k] = &c
	t.window++
	t.publish()
}

// Provisional records a 1xx (other than 100) from the callee.
func (t *Tracker) Provisional(callID, fromTag string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.calls[key{callID, fromTag}]; c != nil && c.State == "trying" {
		c.State = "early"
	}
}

// Cancelled marks that the caller cancelled; the final 487 ends the call.
func (t *Tracker) Cancelled(callID, fromTag, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.calls[key{callID, fromTag}]; c != nil && c.initiator == "" {
		c.initiator, c.reason = Caller, reason
	}
}

// TimedOut marks that nobody answered in time; the final 408 ends the call.
func (t *Tracker) TimedOut(callID, fromTag string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.calls[key{callID, fromTag}]; c != nil && c.initiator == "" {
		c.initiator = Timeout
	}
}

// Final records the INVITE's final response: a 2xx confirms the dialog,
// anything else ends the call. byProxy is true when the proxy itself
// answered (no route, not registered): the initiator is then "error".
func (t *Tracker) Final(callID, fromTag string, code int, reason, destIP string, byProxy bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key{callID, fromTag}
	c := t.calls[k]
	if c == nil || c.State == "confirmed" {
		return
	}
	c.code = code
	if destIP != "" {
		c.DestinationIP = destIP
	}
	if code/100 == 2 {
		c.State, c.Answer, c.ackPending = "confirmed", t.now(), true
		if c.byePending {
			t.end(k, c)
			return
		}
		t.publish()
		return
	}
	if c.initiator == "" {
		c.initiator = Callee
		if byProxy {
			c.initiator = Error
		}
	}
	if c.reason == "" {
		c.reason = reason
	}
	t.end(k, c)
}

// Ack closes the 2xx/ACK window of a confirmed call.
func (t *Tracker) Ack(callID, fromTag string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.calls[key{callID, fromTag}]; c != nil && c.ackPending {
		c.ackPending = false
		t.window--
		t.publish()
	}
}

// Bye ends a confirmed call; fromCaller tells who sent the BYE. A BYE
// before the INVITE's final response is recorded (a callee's BYE that
// overtook its own 200 inside this proxy, whose goroutines handle the two
// apart, or a caller's BYE on an early dialog) ends the call when that
// response comes: the CDR keeps the response's code and the BYE's sender.
func (t *Tracker) Bye(callID, callerTag string, fromCaller bool, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key{callID, callerTag}
	c := t.calls[k]
	if c == nil {
		return
	}
	c.initiator, c.reason = Callee, reason
	if fromCaller {
		c.initiator = Caller
	}
	if c.State != "confirmed" {
		c.byePending = true
		return
	}
	t.end(k, c)
}

// Lookup finds the call of an in-dialog request in either direction: by
// the request's From tag (caller to callee) or To tag (callee to caller).
func (t *Tracker) Lookup(callID, fromTag, toTag string) (callerTag string, fromCaller, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, found := t.calls[key{callID, fromTag}]; found {
		return fromTag, true, true
	}
	if _, found := t.calls[key{callID, toTag}]; found {
		return toTag, false, true
	}
	return "", false, false
}

// end closes a call and emits its CDR; the caller holds mu.
func (t *Tracker) end(k key, c *Call) {
	delete(t.calls, k)
	if t.OnEnd != nil {
		t.OnEnd(k.callID, k.fromTag)
	}
	if c.ackPending || c.State != "confirmed" {
		t.window--
	}
	t.publish()
	if t.emit != nil {
		t.emit(t.record(c, t.now()))
	}
}

func (t *Tracker) publish() {
	confirmed := 0
	for _, c := range t.calls {
		if c.State == "confirmed" {
			confirmed++
		}
	}
	t.g.Dialogs(confirmed)
	t.g.CDRSessions(len(t.calls))
	t.g.ProxyDialogSessions(t.window)
}

// Active lists the open calls, oldest first.
func (t *Tracker) Active() []Call {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Call, 0, len(t.calls))
	for _, c := range t.calls {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Expire ends calls older than maxAge (a lost BYE) as timeouts.
func (t *Tracker) Expire(maxAge time.Duration) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k, c := range t.calls {
		if t.now().Sub(c.Start) > maxAge {
			if c.code == 0 {
				c.code = 408
			}
			c.initiator = Timeout
			t.end(k, c)
			n++
		}
	}
	return n
}

// record renders a call's CDR in SIPhon's JSON: it fills a sip.cdr log
// record and renders it with the shared codec, so the bytes follow SIPhon's
// key order and formatting.
func (t *Tracker) record(c *Call, end time.Time) cdrsink.Record {
	lr, a := newCDR(end, c.CallID, c.FromURI, c.ToURI, c.RURI, "INVITE", c.code)
	a.PutStr(record.AttrCDRTimestampStart, cdr.FormatTime(c.Start))
	duration := 0.0
	if !c.Answer.IsZero() {
		a.PutStr(record.AttrCDRTimestampAnswer, cdr.FormatTime(c.Answer))
		duration = float64(end.Sub(c.Answer).Milliseconds()) / 1000
	}
	a.PutStr(record.AttrCDRTimestampEnd, cdr.FormatTime(end))
	a.PutDouble(record.AttrCDRDurationSecs, duration)
	putPeers(a, c.SourceIP, c.DestinationIP, c.Transport, c.UserAgent, c.AuthUser)
	putOpt(a, record.AttrCDRDisconnectInitiator, c.initiator)
	putOpt(a, record.AttrSIPReason, c.reason)
	return render(lr, end)
}

// newCDR starts a sip.cdr record with the fields every CDR has.
func newCDR(at time.Time, callID, from, to, ruri, method string, code int) (plog.LogRecord, pcommon.Map) {
	lr := plog.NewLogRecord()
	lr.SetEventName(record.EventCDR)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
	a := lr.Attributes()
	a.PutStr(record.AttrSIPCallID, callID)
	a.PutStr(record.AttrSIPFromURI, from)
	a.PutStr(record.AttrSIPToURI, to)
	a.PutStr(record.AttrSIPRequestURI, ruri)
	a.PutStr(record.AttrSIPRequestMethod, method)
	a.PutInt(record.AttrSIPResponseStatusCode, int64(code))
	return lr, a
}

// putPeers adds where the request came from and who sent it.
func putPeers(a pcommon.Map, sourceIP, destinationIP, transport, userAgent, authUser string) {
	a.PutStr(record.AttrSourceAddress, sourceIP)
	a.PutStr(record.AttrDestinationAddress, destinationIP)
	a.PutStr(record.AttrCDRTransport, transport)
	putOpt(a, record.AttrUserAgentOriginal, userAgent)
	putOpt(a, record.AttrCDRAuthUser, authUser)
}

// render writes the record as SIPhon's JSON with the shared codec.
func render(lr plog.LogRecord, at time.Time) cdrsink.Record {
	b, _ := cdrrecord.AppendJSON(nil, lr, record.SourceAttributes) // a sip.cdr record always renders
	return cdrsink.Record{JSON: b, Time: at}
}

func putOpt(a pcommon.Map, k, v string) {
	if v != "" {
		a.PutStr(k, v)
	}
}

// Register is one REGISTER for a REGISTER CDR (cdr.include_register).
type Register struct {
	CallID, FromURI, ToURI, RURI, SourceIP, DestinationIP, Transport, UserAgent, AuthUser string
	Code                                                                                  int
	Event                                                                                 string
	Time                                                                                  time.Time
}

// RegisterRecord renders a REGISTER CDR in SIPhon's JSON.
func RegisterRecord(r Register) cdrsink.Record {
	lr, a := newCDR(r.Time, r.CallID, r.FromURI, r.ToURI, r.RURI, "REGISTER", r.Code)
	a.PutDouble(record.AttrCDRDurationSecs, 0)
	putPeers(a, r.SourceIP, r.DestinationIP, r.Transport, r.UserAgent, r.AuthUser)
	putOpt(a, record.AttrCDRRegEvent, r.Event)
	return render(lr, r.Time)
}
