package main

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/jaegerapi"
	"github.com/siphon-otel/siphon-otel/internal/record"
)

// The span names sipcall gives the call and a B2BUA's other legs.
const (
	nameCall = "SIP call"
	nameLeg  = "SIP leg"
)

// message is one arrow: a span event of a transaction span, on the hop
// the span names.
type message struct {
	at       time.Time
	label    string // method, or code and reason
	code     int    // 0 for a request
	retrans  bool
	src, dst int    // columns
	tx       string // the transaction's tag: its leg's letter and number
	order    int    // span order then event order, for equal capture times
}

// column is one network address of the ladder.
type column struct {
	addr string // host:port
	node string // the capturing node whose address it is, when known
}

// leg is one Call-ID of the call.
type leg struct {
	callID string
	letter string // A, B ... in order of first message; "" for a single leg
}

// ladder is a call laid out: what the drawing needs, computed once.
type ladder struct {
	traceID  string
	others   []string // other traces of the Call-ID asked for
	root     *jaegerapi.Span
	legs     []leg
	cols     []column
	msgs     []message
	txs      int // transactions
	from, to string
}

// layout builds the ladder of a trace. Every transaction span (a span with
// a CSeq) gives one arrow per event: a request from the span's source to
// its destination, a response back. Columns come in the order their
// address first appears; an address is named by the node that captured a
// request there (a SERVER span's destination, a CLIENT span's source).
func layout(f found) (*ladder, error) {
	tr := f.trace
	l := &ladder{traceID: tr.ID, others: f.others}
	type txSpan struct {
		s      jaegerapi.Span
		first  time.Time
		callID string
	}
	var txs []txSpan
	for i := range tr.Spans {
		s := tr.Spans[i]
		switch {
		case s.Name == nameCall && s.ParentID == "":
			l.root = &tr.Spans[i]
		case s.Tags[record.AttrSIPCSeqNumber] != nil && len(s.Logs) > 0:
			callID, _ := s.Tags[record.AttrSIPCallID].(string)
			t := txSpan{s: s, callID: callID, first: s.Logs[0].At}
			for _, lg := range s.Logs {
				if lg.At.Before(t.first) {
					t.first = lg.At
				}
			}
			txs = append(txs, t)
		}
	}
	if len(txs) == 0 {
		return nil, fmt.Errorf("trace %s has no SIP transaction spans (%d spans): nothing to draw", tr.ID, len(tr.Spans))
	}
	sort.SliceStable(txs, func(i, j int) bool { return txs[i].first.Before(txs[j].first) })
	// legs in the order of their first message, the caller's first
	legOf := map[string]int{}
	for _, t := range txs {
		if _, ok := legOf[t.callID]; !ok {
			legOf[t.callID] = len(l.legs)
			l.legs = append(l.legs, leg{callID: t.callID})
		}
	}
	if len(l.legs) > 1 {
		for i := range l.legs {
			l.legs[i].letter = string(rune('A' + i%26))
		}
	}
	colOf := map[string]int{}
	col := func(addr string) int {
		if i, ok := colOf[addr]; ok {
			return i
		}
		colOf[addr] = len(l.cols)
		l.cols = append(l.cols, column{addr: addr})
		return len(l.cols) - 1
	}
	nodes := map[string]string{} // address -> the node it is
	name := func(addr, node string) {
		if _, ok := nodes[addr]; !ok {
			nodes[addr] = node
		}
	}
	perLeg := make([]int, len(l.legs))
	type pending struct {
		message
		srcAddr, dstAddr string
	}
	var all []pending
	for _, t := range txs {
		lg := legOf[t.callID]
		perLeg[lg]++
		l.txs++
		tag := l.legs[lg].letter + strconv.Itoa(perLeg[lg])
		if len(l.legs) == 1 {
			tag = "T" + tag
		}
		src, dst := endpoint(t.s.Tags, "source"), endpoint(t.s.Tags, "destination")
		node, _ := t.s.Resource[record.AttrServiceInstanceID].(string)
		for _, lg := range t.s.Logs {
			m := pending{message: message{at: lg.At, tx: tag, order: len(all)}, srcAddr: src, dstAddr: dst}
			m.retrans, _ = lg.Fields[record.AttrSIPMessageRetransmission].(bool)
			ev := fmt.Sprint(lg.Fields["event"])
			if code, err := strconv.Atoi(ev); err == nil {
				m.code = code
				m.label = ev
				if r := reason(code); r != "" {
					m.label += " " + r
				}
				m.srcAddr, m.dstAddr = dst, src
			} else {
				m.label = ev
			}
			if n, ok := lg.Fields[record.AttrServiceInstanceID].(string); ok && node == "" {
				node = n
			}
			all = append(all, m)
		}
		// the node's own address names its column
		if node != "" {
			switch t.s.Kind {
			case "server":
				name(dst, node)
			case "client":
				name(src, node)
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if !all[i].at.Equal(all[j].at) {
			return all[i].at.Before(all[j].at)
		}
		return all[i].order < all[j].order
	})
	for _, m := range all {
		m.src, m.dst = col(m.srcAddr), col(m.dstAddr)
		l.msgs = append(l.msgs, m.message)
	}
	for i := range l.cols {
		l.cols[i].node = nodes[l.cols[i].addr]
	}
	if l.root != nil {
		l.from, _ = l.root.Tags[record.AttrSIPFromURI].(string)
		l.to, _ = l.root.Tags[record.AttrSIPToURI].(string)
	}
	return l, nil
}

// endpoint is a span's source or destination as host:port.
func endpoint(tags map[string]any, which string) string {
	addr := fmt.Sprint(tags[which+".address"])
	if tags[which+".address"] == nil {
		addr = "?"
	}
	port, _ := tags[which+".port"].(int64)
	return calltrace.Endpoint(addr, port)
}

// outcome is the header's first line: the call's result and code, its
// error, its duration.
func (l *ladder) outcome() string {
	if l.root == nil {
		d := l.msgs[len(l.msgs)-1].at.Sub(l.msgs[0].at)
		return fmt.Sprintf("no call span (yet): %d messages over %s", len(l.msgs), seconds(d))
	}
	r := l.root
	out := "call"
	if v, ok := r.Tags[record.AttrSIPCallResult]; ok {
		out = fmt.Sprint(v)
	}
	if code, ok := r.Tags[record.AttrSIPResponseStatusCode].(int64); ok {
		out += fmt.Sprintf(" (%d", code)
		if rs := reason(int(code)); rs != "" {
			out += " " + rs
		}
		out += ")"
	}
	if r.Error() {
		out += ", error"
		if d, ok := r.Tags["otel.status_description"]; ok {
			out += ": " + fmt.Sprint(d)
		}
	}
	if p, ok := r.Tags[record.AttrSIPCallPartial].(bool); ok && p {
		out += ", partial"
	}
	out += ", " + seconds(r.Duration)
	if d, ok := r.Tags[record.AttrSIPCallDuration].(float64); ok {
		out += fmt.Sprintf(" (talk %.3f s)", d)
	}
	return out
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

// hostPort splits a column's address for the two header lines.
func hostPort(addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, ""
	}
	return h, p
}

// reasons are RFC 3261's (section 21) and the common extensions' reason
// phrases: spans keep the code, not the phrase a node sent.
var reasons = map[int]string{
	100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
	199: "Early Dialog Terminated",
	200: "OK", 202: "Accepted", 204: "No Notification",
	300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy", 380: "Alternative Service",
	400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
	405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
	410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long", 415: "Unsupported Media Type",
	416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required", 422: "Session Interval Too Small",
	423: "Interval Too Brief", 428: "Use Identity Header", 429: "Provide Referrer Identity", 430: "Flow Failed",
	433: "Anonymity Disallowed", 480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
	482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here",
	487: "Request Terminated", 488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
	494: "Security Agreement Required",
	500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
	504: "Server Time-out", 505: "Version Not Supported", 513: "Message Too Large", 580: "Precondition Failure",
	600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable", 607: "Unwanted",
	608: "Rejected",
}

func reason(code int) string { return reasons[code] }
