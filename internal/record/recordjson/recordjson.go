// Package recordjson renders any log record as one JSON object, the line
// format of the siphon_file, siphon_http, siphon_syslog and siphon_kafka
// exporters:
//
//   - sip.cdr: SIPhon's own CDR object (internal/cdr), byte for byte.
//
//   - sip.message and other HEP records: an object with the capture time,
//     the event, the SIP summary, the endpoints and the raw message:
//
//     {"timestamp":"2026-03-06T14:23:01.042Z","event":"sip.message",
//     "call_id":"…","method":"INVITE","status_code":null,"cseq":"314159 INVITE",
//     "from_tag":"…","to_tag":null,"user_agent":"…",
//     "source":"192.168.1.100:5060","destination":"10.0.0.1:5060",
//     "transport":"udp","capture_id":2001,"node":"sbc-1","message":"INVITE sip:…"}
//
//     ("message" is the SIP text; base64 when the payload is not UTF-8.)
//
//   - anything else: {"timestamp":…,"event":…,"attributes":{…},"body":…}.
package recordjson

import (
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/cdr"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
)

// Append appends the record's JSON object to dst. src says where a CDR's
// JSON comes from (its body, SIPhon's bytes, or its attributes).
func Append(dst []byte, lr plog.LogRecord, res pcommon.Resource, src record.Source) ([]byte, error) {
	switch record.KindOf(lr) {
	case record.KindCDR:
		return cdrrecord.AppendJSON(dst, lr, src)
	case record.KindSIPMessage:
		return appendSIPMessage(dst, lr, res), nil
	}
	return appendOther(dst, lr), nil
}

func appendSIPMessage(dst []byte, lr plog.LogRecord, res pcommon.Resource) []byte {
	a := lr.Attributes()
	w := object{dst: append(dst, '{')}
	w.str("timestamp", cdr.FormatTime(lr.Timestamp().AsTime()))
	w.str("event", lr.EventName())
	w.attr("call_id", a, record.AttrSIPCallID)
	// "method" is the request's: null on a response, as "status_code" is on
	// a request
	if record.IsResponse(a) {
		w.null("method")
	} else {
		w.attr("method", a, record.AttrSIPRequestMethod)
	}
	w.attr("status_code", a, record.AttrSIPResponseStatusCode)
	if n, ok := a.Get(record.AttrSIPCSeqNumber); ok {
		m, _ := a.Get(record.AttrSIPCSeqMethod)
		w.str("cseq", strconv.FormatInt(n.Int(), 10)+" "+m.Str())
	} else {
		w.null("cseq")
	}
	w.attr("from_tag", a, record.AttrSIPFromTag)
	w.attr("to_tag", a, record.AttrSIPToTag)
	w.attr("user_agent", a, record.AttrUserAgentOriginal)
	w.endpoint("source", a, record.AttrSourceAddress, record.AttrSourcePort)
	w.endpoint("destination", a, record.AttrDestinationAddress, record.AttrDestinationPort)
	w.attr("transport", a, record.AttrNetworkTransport)
	w.attr("capture_id", a, record.AttrHEPCaptureID)
	if node := record.Node(res); node != "" {
		w.str("node", node)
	} else {
		w.null("node")
	}
	w.key("message")
	w.dst = cdrrecord.AppendValue(w.dst, lr.Body())
	return append(w.dst, '}')
}

func appendOther(dst []byte, lr plog.LogRecord) []byte {
	w := object{dst: append(dst, '{')}
	w.str("timestamp", cdr.FormatTime(lr.Timestamp().AsTime()))
	w.str("event", lr.EventName())
	w.key("attributes")
	w.dst = append(w.dst, '{')
	first := true
	for k, v := range lr.Attributes().All() {
		if !first {
			w.dst = append(w.dst, ',')
		}
		first = false
		w.dst = cdr.AppendString(w.dst, k)
		w.dst = append(w.dst, ':')
		w.dst = cdrrecord.AppendValue(w.dst, v)
	}
	w.dst = append(w.dst, '}')
	w.key("body")
	w.dst = cdrrecord.AppendValue(w.dst, lr.Body())
	return append(w.dst, '}')
}

// object writes the members of a JSON object.
type object struct {
	dst  []byte
	more bool
}

func (o *object) key(k string) {
	if o.more {
		o.dst = append(o.dst, ',')
	}
	o.more = true
	o.dst = cdr.AppendString(o.dst, k)
	o.dst = append(o.dst, ':')
}

func (o *object) str(k, v string) {
	o.key(k)
	o.dst = cdr.AppendString(o.dst, v)
}

func (o *object) null(k string) {
	o.key(k)
	o.dst = append(o.dst, "null"...)
}

func (o *object) attr(k string, a pcommon.Map, name string) {
	o.key(k)
	if v, ok := a.Get(name); ok {
		o.dst = cdrrecord.AppendValue(o.dst, v)
		return
	}
	o.dst = append(o.dst, "null"...)
}

// endpoint writes "ip:port" ("[ip]:port" for IPv6), or null.
func (o *object) endpoint(k string, a pcommon.Map, addrKey, portKey string) {
	addr, ok := a.Get(addrKey)
	if !ok {
		o.null(k)
		return
	}
	s := addr.Str()
	if port, ok := a.Get(portKey); ok {
		host := s
		for i := 0; i < len(s); i++ {
			if s[i] == ':' {
				host = "[" + s + "]"
				break
			}
		}
		s = host + ":" + strconv.FormatInt(port.Int(), 10)
	}
	o.str(k, s)
}
