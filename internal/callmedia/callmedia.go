// Package callmedia gathers the media-quality reports of calls into one
// set of figures per stream, given at the stream's end: the sipkpi
// connector's sip.media.* metrics come from it, and the sipcall connector's
// root spans can take the same figures.
//
// Its input is the records of calls as the collector has them: hep.rtcp
// records with the media.* attributes heprecord gives them (RTCP from
// RTPEngine, heplify or captagent, correlated by the HEP correlation id,
// the Call-ID), sip.message records (the SDP of offers and answers, RFC
// 6035 vq-rtcpxr bodies of PUBLISH, X-RTP-Stat / P-RTP-Stat headers of a
// BYE or its 200, the call's end) and sip.cdr records (the call's end).
//
// A stream is one direction of one SSRC of a call (a report without an
// SSRC, X-RTP-Stat, is a stream of its reporter and direction). Its
// figures at its end:
//
//   - loss ratio: the last cumulative figure when a report gives one (RFC
//     6035 session reports, RTCP-XR block 7, X-RTP-Stat's lost/received),
//     else the mean of the reports' interval fractions (RTCP fraction lost);
//   - jitter and round-trip time: the means of the reports' figures;
//   - MOS: the mean of the MOS the reports gave (HEP chunk 0x20, RTCP-XR,
//     RFC 6035 MOS-CQ, X-RTP-Stat MOS=), else the ITU-T G.107 E-model
//     (mediaq.Stream.Estimate) of the stream's loss, jitter and round-trip
//     time with the codec of the call's SDP (G.711 when none was seen);
//     Stream.MOSEstimated says which.
//
// The direction is the way the reported media travelled, found by placing
// the reporter in the call: a report describes what its reporter received
// (RTCP report blocks, RFC 6035 LocalMetrics, X-RTP-Stat) or, RFC 6035
// RemoteMetrics, what its peer received. An RTCP report's reporter is its
// packet's source (and its destination the reporter's peer): matched
// against the media endpoints of the call's SDP, those the caller's side
// offered or answered (the caller's own and, with RTPEngine anchoring,
// RTPEngine's towards the callee) and those of the callee's side; an RFC
// 6035 report's by its LocalAddr; an X-RTP-Stat header's is the message's
// sender, known from the dialog's tags. When a reporter matches neither
// side or both, the direction is unknown.
//
// A stream ends Linger after its call ended (the BYE's final response, a
// CANCEL, a failure response to the INVITE, the CDR), since RTPEngine
// sends its last reports after the BYE; or after IdleTimeout without a
// report. State is bounded: MaxCalls calls (their SDP endpoints and codec)
// and MaxStreams streams, least recently used evicted first (an evicted
// stream ends then), and at most MaxReportsPerStream reports per stream.
// A call's SDP is forgotten CallTimeout after its last message or report,
// or 40 s after its offer when nothing at all answered it (unansweredTimeout).
package callmedia

import (
	"errors"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/lru"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
)

// Direction is the way a stream's media travelled.
type Direction uint8

// Directions.
const (
	DirUnknown Direction = iota
	DirCallerToCallee
	DirCalleeToCaller
)

var dirNames = [...]string{"unknown", "caller_to_callee", "callee_to_caller"}

// String is the direction as the media.direction label gives it.
func (d Direction) String() string {
	if int(d) < len(dirNames) {
		return dirNames[d]
	}
	return dirNames[0]
}

// Directions lists every Direction's name.
func Directions() []string { return dirNames[:] }

// CodecUnknown is the codec label of a stream whose call's SDP was not
// seen and whose reports named no codec.
const CodecUnknown = "unknown"

// codecLabels bounds the media.codec label: mediaq.CodecFamily's names of
// the codecs telephony carries; any other is "other".
var codecLabels = map[string]bool{"G711": true, "G729": true, "G723": true, "G722": true, "GSM": true,
	"GSM-EFR": true, "OPUS": true, "ILBC": true, "AMR": true, "AMR-WB": true, "SPEEX": true, "EVS": true,
	"G726": true, "SILK": true}

// CodecLabel is the bounded label of a codec name: its mediaq.CodecFamily
// when one of the common codecs, "other" for the rest, CodecUnknown for "".
func CodecLabel(name string) string {
	if name == "" {
		return CodecUnknown
	}
	f := mediaq.CodecFamily(name)
	if codecLabels[f] {
		return f
	}
	return "other"
}

// Outcome is what became of one record, for counting.
type Outcome uint8

// Outcomes.
const (
	// OutcomeNone: the record carries no report (most SIP messages, CDRs).
	OutcomeNone Outcome = iota
	// OutcomeAccepted: the report was added to its stream.
	OutcomeAccepted
	// OutcomeUnknownCall: added to its stream, but no SIP of its call was
	// seen (no codec from the SDP, no direction).
	OutcomeUnknownCall
	// OutcomeNoCallID: a report that names no call; dropped.
	OutcomeNoCallID
	// OutcomeNoFigures: a hep.rtcp record without media figures (an SR
	// without report blocks, SDES, or RTCP the receiver could not read
	// and counted), or a report without any figure.
	OutcomeNoFigures
	// OutcomeMalformed: a report in a SIP message that does not parse
	// (or is too large); dropped.
	OutcomeMalformed
	// OutcomeOutOfRange: a figure no sender can mean (negative, a loss
	// ratio above 1, a MOS above 5, jitter in minutes); dropped.
	OutcomeOutOfRange
	// OutcomeStreamLimit: the stream already had MaxReportsPerStream
	// reports; not considered.
	OutcomeStreamLimit
	// NumOutcomes is the number of Outcomes, for arrays indexed by them.
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{"none", "accepted", "unknown_call", "no_call_id", "no_figures",
	"malformed", "out_of_range", "stream_limit"}

func (o Outcome) String() string {
	if o < NumOutcomes {
		return outcomeNames[o]
	}
	return outcomeNames[0]
}

// Outcomes lists the names of the outcomes of a report (every Outcome but
// OutcomeNone).
func Outcomes() []string { return outcomeNames[1:] }

// MaxReportsPerStream bounds the reports a stream considers: an RTCP report
// every 5 s for 13 hours. Further reports are counted (OutcomeStreamLimit).
const MaxReportsPerStream = 10_000

// Config bounds the state.
type Config struct {
	// Linger keeps a call's streams open after its end for the reports
	// that come after it.
	Linger time.Duration
	// IdleTimeout ends a stream without a report for that long.
	IdleTimeout time.Duration
	// CallTimeout forgets a call (its SDP) without a message or report
	// for that long.
	CallTimeout time.Duration
	MaxCalls    int
	MaxStreams  int
}

// Settings is a connector's media block (sipkpi's sip.media.* metrics,
// sipcall's media on the root span): whether it is on, and its Config.
type Settings struct {
	Enabled bool `mapstructure:"enabled"`
	// Linger keeps a call's streams open after the call ended (BYE's final
	// response, CANCEL, a failed INVITE, the CDR): RTPEngine sends its last
	// reports after the BYE.
	Linger time.Duration `mapstructure:"linger"`
	// IdleTimeout ends a stream that had no report for that long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// CallTimeout forgets a call's SDP after that long without a message
	// or report (a call whose end was not seen).
	CallTimeout time.Duration `mapstructure:"call_timeout"`
	// MaxStreams bounds the streams followed; the least recently reported
	// one ends early to make room.
	MaxStreams int `mapstructure:"max_streams"`
	// MaxCalls bounds the calls whose SDP (media endpoints, codec) is kept.
	MaxCalls int `mapstructure:"max_calls"`
}

// DefaultSettings is the media block's default: on.
func DefaultSettings() Settings {
	return Settings{Enabled: true, Linger: 30 * time.Second, IdleTimeout: time.Minute, CallTimeout: 4 * time.Hour,
		MaxStreams: 50_000, MaxCalls: 50_000}
}

// Validate checks the media block; one that is off is not checked.
func (s *Settings) Validate() error {
	if !s.Enabled {
		return nil
	}
	var errs []error
	if s.Linger <= 0 || s.IdleTimeout <= 0 || s.CallTimeout <= 0 {
		errs = append(errs, errors.New("media.linger, media.idle_timeout and media.call_timeout must be positive"))
	}
	if s.MaxStreams < 1 || s.MaxCalls < 1 {
		errs = append(errs, errors.New("media.max_streams and media.max_calls must be at least 1"))
	}
	return errors.Join(errs...)
}

// Aggregator is the aggregator's Config of the block.
func (s *Settings) Aggregator() Config {
	return Config{Linger: s.Linger, IdleTimeout: s.IdleTimeout, CallTimeout: s.CallTimeout,
		MaxCalls: s.MaxCalls, MaxStreams: s.MaxStreams}
}

// Report is one report's figures on one stream, as OnReport sees them.
type Report[T any] struct {
	CallID        string
	CorrelationID string // as for Stream
	At            time.Time
	Source        mediaq.Source
	SSRC          uint32
	HasSSRC       bool
	// Direction is the stream's as the call's SDP seen so far places it.
	Direction Direction
	LossRatio float64 // 0..1
	Jitter    float64 // s, at the call's codec clock
	RTT       float64 // s
	MOS       float64 // the report's, else the E-model's of its figures
	Has       mediaq.Figure
	// MOSEstimated: the MOS is the E-model's, the report gave none.
	MOSEstimated bool
	// NewStream: the report opened its stream; Tag is the stream's tag,
	// which OnReport may set.
	NewStream bool
	Tag       *T
}

// Stream is the figures of one stream at its end.
type Stream[T any] struct {
	CallID string
	// CorrelationID is the call's sip.correlation_id as its SIP records
	// had it, "" when none was seen.
	CorrelationID string
	SSRC          uint32
	HasSSRC       bool
	Direction     Direction
	// Codec is the bounded codec label (CodecLabel): the call's SDP, else
	// what the reports named, else CodecUnknown.
	Codec string
	// Sources are the kinds of report the figures came from.
	Sources []mediaq.Source
	Reports int // reports considered

	LossRatio float64 // 0..1
	Jitter    float64 // s
	RTT       float64 // s
	MOS       float64 // 1..5
	// Has says which of the figures are set (mediaq.FigLossRatio,
	// FigJitter, FigRTT, FigMOS).
	Has mediaq.Figure
	// MOSEstimated: the MOS is the E-model's, the reports gave none.
	MOSEstimated bool
	Class        mediaq.Class // mediaq.ClassUnknown without a MOS
	// Last is the time of the stream's last report (the record's time).
	Last time.Time
	// Tag is what the caller gave with the stream's first report.
	Tag T
}

type side uint8

const (
	sideUnknown side = iota
	sideCaller
	sideCallee
)

func (s side) other() side {
	switch s {
	case sideCaller:
		return sideCallee
	case sideCallee:
		return sideCaller
	}
	return sideUnknown
}

// maxSDPs bounds the SDP endpoints a call remembers per side: the party's
// own and an anchoring RTPEngine's, and a re-INVITE's change of each.
const maxSDPs = 4

// endpoint is where an SDP's sender receives audio.
type endpoint struct {
	addr           netip.Addr
	rtpPort, rtcpP uint16
}

// call is what the SIP of a call tells about its media.
type call struct {
	callerTag string
	corr      string
	sdps      [2][maxSDPs]endpoint // by side - 1
	nSDP      [2]uint8
	codec     mediaq.Codec
	hasCodec  bool
	codecSide side // the side whose SDP gave the codec: an answer's wins
	answered  bool // a 2xx to an INVITE came: a later failure is a re-INVITE's
	responded bool // any response to its INVITE came (a 100, a 180): someone works on it
	ended     bool
	endedAt   time.Time
}

// stream is the running figures of one stream.
type stream[T any] struct {
	callIDLen int // the key starts with the Call-ID
	ssrc      uint32
	hasSSRC   bool
	// reporter is the reporter's side when known from SIP; else src and
	// dst (the first RTCP report's addresses, or RFC 6035's LocalAddr as
	// src) place it at the end.
	reporter side
	src, dst netip.AddrPort
	toward   bool // the figures are of media towards the reporter
	reports  int
	sources  uint8 // bit per mediaq.Source

	lossFracSum float64
	lossFracN   int
	lossCum     float64
	hasLossCum  bool
	jitterSum   float64 // s, as reported by sources with their own clock
	jitter8kSum float64 // s, RTCP ia_jitter the receiver read at 8000 Hz
	jitterN     int
	rttSum      float64
	rttN        int
	mosSum      float64
	mosN        int
	codec       mediaq.Codec // a report's, when it named one
	last        time.Time
	tag         T
}

// Aggregator gathers reports into streams. It is not safe for concurrent
// use.
type Aggregator[T any] struct {
	cfg     Config
	calls   *lru.Map[call]
	streams *lru.Map[stream[T]]
	onEnd   func(*Stream[T])
	// Evicted and Entries, when set, see the tables ("calls", "streams")
	// lose entries (reason lru.ReasonCapacity or lru.ReasonExpired) and
	// change in size.
	Evicted func(table, reason string)
	Entries func(table string, delta int64)
	// OnReport, when set, sees each report a stream takes (the sipcall
	// connector's span events); the Report is reused after it returns.
	OnReport func(*Report[T])

	keyBuf []byte
	out    Stream[T]
	rep    Report[T]
}

// New returns an Aggregator calling onEnd with each stream at its end (the
// Stream is reused after onEnd returns).
func New[T any](cfg Config, onEnd func(*Stream[T])) *Aggregator[T] {
	a := &Aggregator[T]{cfg: cfg, onEnd: onEnd,
		Evicted: func(string, string) {}, Entries: func(string, int64) {}}
	a.calls = lru.New(cfg.MaxCalls, func(_ string, _ *call, reason string) {
		a.Evicted("calls", reason)
		a.Entries("calls", -1)
	})
	a.streams = lru.New(cfg.MaxStreams, func(key string, s *stream[T], reason string) {
		a.end(key, s)
		a.Evicted("streams", reason)
		a.Entries("streams", -1)
	})
	return a
}

// Len returns the calls and streams held.
func (a *Aggregator[T]) Len() (calls, streams int) { return a.calls.Len(), a.streams.Len() }

// Consume takes one record at its time at (now is the processing time the
// timeouts run on); tag is called for a stream's first report, and its
// value is given back at the stream's end.
func (a *Aggregator[T]) Consume(lr plog.LogRecord, at, now time.Time, tag func() T) Outcome {
	switch name := lr.EventName(); {
	case name == record.EventSIPMessage:
		return a.message(lr, at, now, tag)
	case name == record.EventCDR:
		if c, ok := a.calls.Get(record.Str(lr.Attributes(), record.AttrSIPCallID), now); ok {
			c.end(now)
		}
		return OutcomeNone
	case name == eventRTCP:
		return a.rtcp(lr, at, now, tag)
	}
	return OutcomeNone
}

const eventRTCP = record.EventHEPPrefix + "rtcp"

func (c *call) end(now time.Time) {
	if !c.ended {
		c.ended, c.endedAt = true, now
	}
}

// message reads the SDP, the reports and the end of a call from one SIP
// message; only methods that can carry them are looked into.
func (a *Aggregator[T]) message(lr plog.LogRecord, at, now time.Time, tag func() T) Outcome {
	attrs := lr.Attributes()
	method := record.Str(attrs, record.AttrSIPRequestMethod) // the CSeq method on a response
	code, isResponse := record.Int(attrs, record.AttrSIPResponseStatusCode)
	switch method {
	case "INVITE", "ACK", "UPDATE", "PRACK":
	case "BYE", "PUBLISH":
		return a.report(lr, attrs, method, code, isResponse, at, now, tag)
	case "CANCEL":
		if !isResponse {
			if c, ok := a.calls.Get(record.Str(attrs, record.AttrSIPCallID), now); ok {
				c.end(now)
			}
		}
		return OutcomeNone
	default:
		return OutcomeNone
	}
	callID := record.Str(attrs, record.AttrSIPCallID)
	if callID == "" {
		return OutcomeNone
	}
	fromTag := record.Str(attrs, record.AttrSIPFromTag)
	initial := !isResponse && method == "INVITE" && record.Str(attrs, record.AttrSIPToTag) == ""
	if isResponse && method == "INVITE" && code < 200 {
		if c, ok := a.calls.Peek(callID); ok {
			c.responded = true
		}
	}
	if isResponse && method == "INVITE" && code >= 300 {
		if c, ok := a.calls.Get(callID, now); ok && !c.answered {
			c.end(now) // the call failed (a re-INVITE's failure leaves it up)
		}
		return OutcomeNone
	}
	body := sipmsg.Body(bodyOf(lr))
	ep, codec, hasSDP := sdpOf(body)
	answer := isResponse && method == "INVITE" && code >= 200
	if !hasSDP && !initial && !answer {
		return OutcomeNone // a 100, a 180, an ACK: nothing the call needs
	}
	c, ok := a.calls.Get(callID, now)
	if !ok {
		if !hasSDP && !initial {
			return OutcomeNone
		}
		c = a.calls.Add(strings.Clone(callID), now)
		a.Entries("calls", 1)
	}
	if corr := record.Str(attrs, record.AttrSIPCorrelationID); corr != "" && corr != c.corr {
		c.corr = strings.Clone(corr)
	}
	if (c.callerTag == "" || initial) && fromTag != c.callerTag {
		c.callerTag = strings.Clone(fromTag)
	}
	if answer {
		c.answered = true
	}
	if !hasSDP {
		return OutcomeNone
	}
	s := c.senderSide(fromTag, isResponse)
	if s == sideUnknown {
		return OutcomeNone
	}
	c.addSDP(s, ep)
	// the answer's first codec is the one in use; an offer's first stands
	// in until the answer comes
	if codec.Name != "" && (!c.hasCodec || c.codecSide == sideCaller && s == sideCallee || c.codecSide == s) {
		c.codec, c.hasCodec, c.codecSide = cloneCodec(codec), true, s
	}
	return OutcomeNone
}

// senderSide is the side that sent a message: a request's From party, a
// response's To party.
func (c *call) senderSide(fromTag string, isResponse bool) side {
	if c.callerTag == "" || fromTag == "" {
		return sideUnknown
	}
	if (fromTag == c.callerTag) != isResponse {
		return sideCaller
	}
	return sideCallee
}

func (c *call) addSDP(s side, ep endpoint) {
	i := s - 1
	for _, e := range c.sdps[i][:c.nSDP[i]] {
		if e == ep {
			return
		}
	}
	if int(c.nSDP[i]) < maxSDPs {
		c.sdps[i][c.nSDP[i]] = ep
		c.nSDP[i]++
		return
	}
	// the oldest goes: a call's latest SDP is the one in use
	copy(c.sdps[i][:], c.sdps[i][1:])
	c.sdps[i][maxSDPs-1] = ep
}

// sideOf places an address in the call: exactly (address and RTP or RTCP
// port), else by the address alone when only one side has it.
func (c *call) sideOf(ap netip.AddrPort) side {
	if !ap.IsValid() {
		return sideUnknown
	}
	addr, port := ap.Addr().Unmap(), ap.Port()
	var exact, byAddr [2]bool
	for i := range c.sdps {
		for _, e := range c.sdps[i][:c.nSDP[i]] {
			if e.addr == addr {
				byAddr[i] = true
				if e.rtpPort == port || e.rtcpP == port {
					exact[i] = true
				}
			}
		}
	}
	for _, m := range [...][2]bool{exact, byAddr} {
		switch {
		case m[0] && !m[1]:
			return sideCaller
		case m[1] && !m[0]:
			return sideCallee
		case m[0] && m[1]:
			return sideUnknown
		}
	}
	return sideUnknown
}

// sdpOf reads the audio endpoint and codec of a message body.
func sdpOf(body string) (endpoint, mediaq.Codec, bool) {
	if body == "" || !strings.Contains(body, "m=audio") {
		return endpoint{}, mediaq.Codec{}, false
	}
	rtp, rtcp, ok := mediaq.SDPAudioEndpoint(body)
	if !ok {
		return endpoint{}, mediaq.Codec{}, false
	}
	codec, _ := mediaq.SDPAudioCodec(body)
	return endpoint{addr: rtp.Addr(), rtpPort: rtp.Port(), rtcpP: rtcp}, codec, true
}

func cloneCodec(c mediaq.Codec) mediaq.Codec {
	c.Name = strings.Clone(c.Name)
	return c
}

// report reads a BYE, its responses and a PUBLISH: the report one carries
// (mediaq.FromSIP) and, for a BYE's final response, the call's end.
func (a *Aggregator[T]) report(lr plog.LogRecord, attrs pcommon.Map, method string, code int64, isResponse bool,
	at, now time.Time, tag func() T) Outcome {
	callID := record.Str(attrs, record.AttrSIPCallID)
	if method == "BYE" && isResponse && code >= 200 {
		if c, ok := a.calls.Get(callID, now); ok {
			c.end(now)
		}
	}
	if isResponse && (method == "PUBLISH" || code < 200 || code >= 300) {
		return OutcomeNone
	}
	msg := bodyOf(lr)
	if method == "BYE" && !mayHaveRTPStat(msg) {
		return OutcomeNone // most BYEs: no header lookups
	}
	var codec mediaq.Codec
	if method == "BYE" {
		if c, ok := a.calls.Peek(callID); ok && c.hasCodec {
			codec = c.codec
		}
	}
	rep, ok, err := mediaq.FromSIP(msg, codec)
	switch {
	case !ok:
		return OutcomeNone
	case err != nil:
		switch mediaq.ReasonOf(err) {
		case mediaq.ReasonOutOfRange:
			return OutcomeOutOfRange
		case mediaq.ReasonEmpty:
			return OutcomeNoFigures
		}
		return OutcomeMalformed
	}
	if method == "PUBLISH" {
		callID = rep.CallID // the report names its call; the PUBLISH is a dialog of its own
	}
	if callID == "" {
		return OutcomeNoCallID
	}
	c, known := a.calls.Get(callID, now)
	// the reporter: a BYE's sender (its 200's, the callee of the BYE);
	// an RFC 6035 report's LocalAddr
	var (
		reporter side
		src      netip.AddrPort
	)
	if method == "BYE" {
		if known {
			reporter = c.senderSide(record.Str(attrs, record.AttrSIPFromTag), isResponse)
		}
	} else {
		src = rep.LocalAddr
		if known && !src.IsValid() && rep.RemoteAddr.IsValid() {
			reporter = c.sideOf(rep.RemoteAddr).other()
		}
	}
	out := OutcomeAccepted
	if !known {
		out = OutcomeUnknownCall
	}
	for i := range rep.Streams {
		st := &rep.Streams[i]
		r := figures{source: rep.Source, cumulative: rep.Source == mediaq.SourceRTPStat || rep.Kind == "VQSessionReport"}
		if st.Has(mediaq.FigSSRC) {
			r.ssrc, r.hasSSRC = st.SSRC, true
		}
		r.loss, r.hasLoss = st.LossRatio, st.Has(mediaq.FigLossRatio)
		r.jitter, r.hasJitter = st.Jitter, st.Has(mediaq.FigJitter)
		r.rtt, r.hasRTT = st.RTT, st.Has(mediaq.FigRTT)
		r.mos, r.hasMOS = st.MOS, st.Given&mediaq.FigMOS != 0
		if !st.CodecAssumed {
			r.codec = st.Codec
		}
		r.toward = st.Direction != mediaq.DirRemote
		if o := a.add(callID, r, reporter, src, netip.AddrPort{}, at, now, tag); o != OutcomeAccepted {
			out = o
		}
	}
	return out
}

// mayHaveRTPStat is a quick look for an X-RTP-Stat or P-RTP-Stat header
// before mediaq.FromSIP's header lookups: "rtp-stat" in any case.
func mayHaveRTPStat(msg string) bool {
	for off := 0; ; {
		i := strings.IndexByte(msg[off:], '-')
		if i < 0 {
			return false
		}
		i += off
		if i >= 3 && i+5 <= len(msg) && strings.EqualFold(msg[i-3:i+5], "rtp-stat") {
			return true
		}
		off = i + 1
	}
}

// figures is one stream's figures in one report.
type figures struct {
	source                             mediaq.Source
	cumulative                         bool // the loss ratio is since the stream's start
	ssrc                               uint32
	hasSSRC                            bool
	loss, jitter, rtt, mos             float64
	hasLoss, hasJitter, hasRTT, hasMOS bool
	jitterAt8k                         bool // RTCP ia_jitter read at 8000 Hz by the receiver
	codec                              mediaq.Codec
	toward                             bool
}

// check refuses what no sender can mean.
func (f *figures) check() bool {
	ok := func(has bool, v, lo, hi float64) bool { return !has || v >= lo && v <= hi }
	return ok(f.hasLoss, f.loss, 0, 1) && ok(f.hasJitter, f.jitter, 0, mediaq.MaxJitter) &&
		ok(f.hasRTT, f.rtt, 0, mediaq.MaxDelay) && ok(f.hasMOS, f.mos, 1, 5)
}

// rtcp reads a hep.rtcp record's media.* attributes: the first stream of
// its report, as heprecord gives it.
func (a *Aggregator[T]) rtcp(lr plog.LogRecord, at, now time.Time, tag func() T) Outcome {
	attrs := lr.Attributes()
	srcName := record.Str(attrs, record.AttrMediaSource)
	if srcName == "" {
		return OutcomeNoFigures
	}
	callID := record.Str(attrs, record.AttrHEPCorrelationID)
	if callID == "" {
		return OutcomeNoCallID
	}
	var f figures
	switch srcName {
	case mediaq.SourceRTCP.String():
		f.source = mediaq.SourceRTCP
	case mediaq.SourceRTCPXR.String():
		f.source, f.cumulative = mediaq.SourceRTCPXR, true // RFC 3611 4.7.1: since reception began
	case mediaq.SourceHEPMOS.String():
		f.source = mediaq.SourceHEPMOS
	default:
		return OutcomeNoFigures
	}
	var bad bool
	if v, ok := record.Int(attrs, record.AttrMediaSSRC); ok {
		f.ssrc, f.hasSSRC, bad = uint32(v), true, v < 0 || v > math.MaxUint32
	}
	f.loss, f.hasLoss = num(attrs, record.AttrMediaPacketLossRatio)
	f.jitter, f.hasJitter = num(attrs, record.AttrMediaJitter)
	f.jitterAt8k = f.source == mediaq.SourceRTCP
	f.rtt, f.hasRTT = num(attrs, record.AttrMediaRTT)
	if est, ok := attrs.Get(record.AttrMediaEstimated); !ok || est.Type() != pcommon.ValueTypeBool || !est.Bool() {
		// a MOS the receiver estimated is done again here, with the
		// call's codec and the stream's figures
		f.mos, f.hasMOS = num(attrs, record.AttrMediaMOS)
	}
	if bad || !f.check() {
		return OutcomeOutOfRange
	}
	if !f.hasLoss && !f.hasJitter && !f.hasRTT && !f.hasMOS {
		return OutcomeNoFigures
	}
	f.toward = true
	src := addrPort(attrs, record.AttrSourceAddress, record.AttrSourcePort)
	dst := addrPort(attrs, record.AttrDestinationAddress, record.AttrDestinationPort)
	out := a.add(callID, f, sideUnknown, src, dst, at, now, tag)
	if out == OutcomeAccepted {
		if _, known := a.calls.Get(callID, now); !known {
			out = OutcomeUnknownCall
		}
	}
	return out
}

// add puts one report's figures on its stream.
func (a *Aggregator[T]) add(callID string, f figures, reporter side, src, dst netip.AddrPort,
	at, now time.Time, tag func() T) Outcome {
	if !f.check() {
		return OutcomeOutOfRange
	}
	if !f.hasLoss && !f.hasJitter && !f.hasRTT && !f.hasMOS {
		return OutcomeNoFigures
	}
	b := append(a.keyBuf[:0], callID...)
	b = append(b, 0)
	if f.hasSSRC {
		b = append(b, 's')
		b = strconv.AppendUint(b, uint64(f.ssrc), 16)
	} else {
		// no SSRC: the reporter and direction tell the stream
		b = append(b, 'n', byte('0'+f.source), byte('0'+reporter), '0')
		if f.toward {
			b[len(b)-1] = '1'
		}
		b = append(b, src.String()...)
	}
	a.keyBuf = b
	st, ok := a.streams.Get(unsafe.String(unsafe.SliceData(b), len(b)), now)
	if !ok {
		st = a.streams.Add(string(b), now)
		a.Entries("streams", 1)
		*st = stream[T]{callIDLen: len(callID), ssrc: f.ssrc, hasSSRC: f.hasSSRC, reporter: reporter,
			src: src, dst: dst, toward: f.toward, tag: tag()}
	}
	if st.reports >= MaxReportsPerStream {
		return OutcomeStreamLimit
	}
	st.reports++
	st.sources |= 1 << f.source
	if at.After(st.last) {
		st.last = at
	}
	if st.reporter == sideUnknown && reporter != sideUnknown {
		st.reporter = reporter
	}
	if f.hasLoss {
		if f.cumulative {
			st.lossCum, st.hasLossCum = f.loss, true
		} else {
			st.lossFracSum += f.loss
			st.lossFracN++
		}
	}
	if f.hasJitter {
		if f.jitterAt8k {
			st.jitter8kSum += f.jitter
		} else {
			st.jitterSum += f.jitter
		}
		st.jitterN++
	}
	if f.hasRTT {
		st.rttSum += f.rtt
		st.rttN++
	}
	if f.hasMOS {
		st.mosSum += f.mos
		st.mosN++
	}
	if f.codec.Name != "" && st.codec.Name == "" {
		st.codec = cloneCodec(f.codec)
	}
	if a.OnReport != nil {
		a.report1(callID, &f, st, !ok, at)
	}
	return OutcomeAccepted
}

// unansweredTimeout forgets sooner the offer of a call that got no
// response at all, not even a 100: by RFC 3261 Timer B (64*T1, 32 s) its
// sender gave up. An INVITE flood (a scanner) would otherwise hold its SDPs
// for CallTimeout, and with them the memory limiter's refusals.
const unansweredTimeout = 40 * time.Second

// Expire ends the streams past their time (Linger after their call's end,
// IdleTimeout without a report) and forgets the calls past theirs.
func (a *Aggregator[T]) Expire(now time.Time) {
	a.streams.Sweep(func(key string, s *stream[T], touched time.Time) bool {
		if now.Sub(touched) > a.cfg.IdleTimeout {
			return true
		}
		c, ok := a.calls.Peek(key[:s.callIDLen])
		return ok && c.ended && now.Sub(c.endedAt) > a.cfg.Linger
	})
	unanswered := min(unansweredTimeout, a.cfg.CallTimeout)
	a.calls.Sweep(func(_ string, c *call, touched time.Time) bool {
		return c.ended && now.Sub(c.endedAt) > a.cfg.Linger || now.Sub(touched) > a.cfg.CallTimeout ||
			!c.responded && !c.answered && now.Sub(touched) > unanswered
	})
}

// EndAll ends every stream now (at shutdown: a stream cut short still
// counts) and forgets every call.
func (a *Aggregator[T]) EndAll() {
	a.streams.Sweep(func(string, *stream[T], time.Time) bool { return true })
	a.calls.Sweep(func(string, *call, time.Time) bool { return true })
}

// end gives a stream's figures to onEnd.
func (a *Aggregator[T]) end(key string, s *stream[T]) {
	callID := key[:s.callIDLen]
	o := &a.out
	*o = Stream[T]{CallID: callID, SSRC: s.ssrc, HasSSRC: s.hasSSRC, Reports: s.reports, Last: s.last, Tag: s.tag,
		Sources: o.Sources[:0]}
	for src := mediaq.SourceRTCP; src <= mediaq.SourceHEPMOS; src++ {
		if s.sources&(1<<src) != 0 {
			o.Sources = append(o.Sources, src)
		}
	}
	c, known := a.calls.Peek(callID)
	codec := s.codecIn(c, known)
	o.Codec = CodecLabel(codec.Name)
	if known {
		o.CorrelationID = c.corr
	}
	o.Direction = s.direction(c, known)

	est := mediaq.Stream{Codec: codec}
	if codec.Name == "" {
		est.Codec = mediaq.DefaultCodec
	}
	switch {
	case s.hasLossCum:
		o.LossRatio = s.lossCum
	case s.lossFracN > 0:
		o.LossRatio = s.lossFracSum / float64(s.lossFracN)
	}
	if s.hasLossCum || s.lossFracN > 0 {
		o.Has |= mediaq.FigLossRatio
		est.LossRatio, est.Given = o.LossRatio, est.Given|mediaq.FigLossRatio
	}
	if s.jitterN > 0 {
		// RTCP jitter is in RTP timestamp units, which the receiver read
		// at 8000 Hz not knowing the codec
		o.Jitter = (s.jitterSum + s.jitter8kSum*8000/rtcpClock(est.Codec)) / float64(s.jitterN)
		o.Has |= mediaq.FigJitter
		est.Jitter, est.Given = o.Jitter, est.Given|mediaq.FigJitter
	}
	if s.rttN > 0 {
		o.RTT = s.rttSum / float64(s.rttN)
		o.Has |= mediaq.FigRTT
		est.RTT, est.Given = o.RTT, est.Given|mediaq.FigRTT
	}
	if s.mosN > 0 {
		o.MOS = s.mosSum / float64(s.mosN)
		o.Has |= mediaq.FigMOS
	} else if est.Estimate(); est.Has(mediaq.FigMOS) {
		o.MOS, o.MOSEstimated = est.MOS, true
		o.Has |= mediaq.FigMOS
	}
	o.Class = mediaq.ClassUnknown
	if o.Has&mediaq.FigMOS != 0 {
		o.Class = mediaq.ClassOf(o.MOS)
	}
	a.onEnd(o)
}

// codecIn is a stream's codec: its call's SDP's, else what its reports
// named; "" when neither.
func (s *stream[T]) codecIn(c *call, known bool) mediaq.Codec {
	switch {
	case known && c.hasCodec:
		return c.codec
	case s.codec.Name != "":
		return s.codec
	}
	return mediaq.Codec{}
}

// direction places a stream's media in its call.
func (s *stream[T]) direction(c *call, known bool) Direction {
	reporter := s.reporter
	if known && reporter == sideUnknown {
		reporter = c.sideOf(s.src)
		if reporter == sideUnknown {
			reporter = c.sideOf(s.dst).other()
		} else if d := c.sideOf(s.dst); d == reporter {
			reporter = sideUnknown // source and destination on one side: cannot tell
		}
	}
	to := reporter // where the media went
	if !s.toward {
		to = reporter.other()
	}
	switch to {
	case sideCallee:
		return DirCallerToCallee
	case sideCaller:
		return DirCalleeToCaller
	}
	return DirUnknown
}

// rtcpClock is the codec's RTP clock: RTCP jitter is in RTP timestamp
// units, which the receiver read at 8000 Hz not knowing the codec.
func rtcpClock(codec mediaq.Codec) float64 {
	if codec.ClockRate == 0 {
		return 8000
	}
	return float64(codec.ClockRate)
}

// report1 gives one report's figures to OnReport, with its MOS, or the
// E-model's of its figures with the stream's codec.
func (a *Aggregator[T]) report1(callID string, f *figures, s *stream[T], newStream bool, at time.Time) {
	c, known := a.calls.Peek(callID)
	r := &a.rep
	*r = Report[T]{CallID: callID, At: at, Source: f.source, SSRC: f.ssrc, HasSSRC: f.hasSSRC,
		Direction: s.direction(c, known), NewStream: newStream, Tag: &s.tag}
	if known {
		r.CorrelationID = c.corr
	}
	codec := s.codecIn(c, known)
	if codec.Name == "" {
		codec = mediaq.DefaultCodec
	}
	est := mediaq.Stream{Codec: codec}
	if f.hasLoss {
		r.LossRatio, r.Has = f.loss, r.Has|mediaq.FigLossRatio
		est.LossRatio, est.Given = f.loss, est.Given|mediaq.FigLossRatio
	}
	if f.hasJitter {
		r.Jitter = f.jitter
		if f.jitterAt8k {
			r.Jitter = r.Jitter * 8000 / rtcpClock(codec)
		}
		r.Has |= mediaq.FigJitter
		est.Jitter, est.Given = r.Jitter, est.Given|mediaq.FigJitter
	}
	if f.hasRTT {
		r.RTT, r.Has = f.rtt, r.Has|mediaq.FigRTT
		est.RTT, est.Given = f.rtt, est.Given|mediaq.FigRTT
	}
	if f.hasMOS {
		r.MOS, r.Has = f.mos, r.Has|mediaq.FigMOS
	} else if est.Estimate(); est.Has(mediaq.FigMOS) {
		r.MOS, r.MOSEstimated, r.Has = est.MOS, true, r.Has|mediaq.FigMOS
	}
	a.OnReport(r)
	r.CallID = "" // the record's: the reused Report keeps no message alive
}

// num reads a number attribute; one that is there but is no number (NaN,
// a string) reads as NaN, which check refuses.
func num(m pcommon.Map, key string) (float64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		return v.Double(), true
	case pcommon.ValueTypeInt:
		return float64(v.Int()), true
	}
	return math.NaN(), true
}

func addrPort(m pcommon.Map, addrKey, portKey string) netip.AddrPort {
	addr, err := netip.ParseAddr(record.Str(m, addrKey))
	port, ok := record.Int(m, portKey)
	if err != nil || !ok || port < 0 || port > math.MaxUint16 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(port))
}

// bodyOf is a record's body as a string: a sip.message body is the raw
// message, a string (or bytes, from a source that kept them so).
func bodyOf(lr plog.LogRecord) string {
	switch b := lr.Body(); b.Type() {
	case pcommon.ValueTypeStr:
		return b.Str()
	case pcommon.ValueTypeBytes:
		raw := b.Bytes().AsRaw()
		return unsafe.String(unsafe.SliceData(raw), len(raw)) // read only, not kept
	}
	return ""
}
