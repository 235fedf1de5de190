// Package mediaq turns media-quality reports into typed figures in SI
// units: RTCP as the JSON that RTPEngine, heplify and captagent send in HEP
// type 5 packets (ParseRTCPJSON), the RTCP-XR VoIP metrics report block of
// RFC 3611 4.7 (ParseXRVoIPMetrics), RFC 6035 vq-rtcpxr bodies of SIP
// PUBLISH (ParseVQReport), the X-RTP-Stat and P-RTP-Stat end-of-call
// headers (ParseRTPStat, FromSIP) and the HEP MOS chunk 0x20 (MOSFromHEP).
//
// Every parser returns a Report of per-stream figures: loss as a ratio
// 0..1, jitter, delays and round-trip time in seconds, MOS 1..5, R-factor
// 0..100. Each Stream says which figures its report gave (Given) and which
// were derived (Computed): a round-trip time from LSR/DLSR and the arrival
// time, a loss ratio from packet counts, and R and MOS from the ITU-T G.107
// E-model when the report has loss figures but no score (EModel, Estimate).
// Codec and clock rate come from the report, else from the caller (an SDP
// offer through SDPCodecs), else G.711 at 8000 Hz.
//
// Bad input is an *Error with a Reason to count by (ReasonOf); the work per
// input is bounded (input size, array and line counts, string lengths).
package mediaq

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Source is the kind of report figures came from.
type Source uint8

// Sources.
const (
	SourceUnknown  Source = iota
	SourceRTCP            // RTCP SR/RR report blocks, as HEP type 5 JSON
	SourceRTCPXR          // RTCP-XR VoIP metrics block (RFC 3611 4.7), binary or in HEP JSON
	SourceVQReport        // RFC 6035 application/vq-rtcpxr body
	SourceRTPStat         // X-RTP-Stat / P-RTP-Stat header of a BYE or its 200
	SourceHEPMOS          // HEP chunk 0x20
)

var sourceNames = [...]string{"unknown", "rtcp", "rtcp_xr", "vq_rtcpxr", "rtp_stat", "hep_mos"}

// String is the source's name as the media.source attribute carries it.
func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return sourceNames[0]
}

// Direction says whose reception a stream's figures describe.
type Direction uint8

// Directions.
const (
	DirUnknown Direction = iota
	// DirReceived: the reporter received the stream (an RTCP report block,
	// RFC 6035 LocalMetrics, the receive figures of X-RTP-Stat).
	DirReceived
	// DirRemote: the remote party received it, as the reporter learnt from
	// the remote's reports (RFC 6035 RemoteMetrics).
	DirRemote
)

var dirNames = [...]string{"unknown", "received", "remote"}

func (d Direction) String() string {
	if int(d) < len(dirNames) {
		return dirNames[d]
	}
	return dirNames[0]
}

// Figure names one figure of a Stream; a Figure set says which are there.
type Figure uint32

// Figures.
const (
	FigSSRC            Figure = 1 << iota // Stream.SSRC
	FigReporterSSRC                       // Stream.ReporterSSRC
	FigLossRatio                          // Stream.LossRatio
	FigPacketsLost                        // Stream.PacketsLost
	FigPacketsReceived                    // Stream.PacketsReceived
	FigPacketsSent                        // Stream.PacketsSent
	FigDiscardRatio                       // Stream.DiscardRatio
	FigJitter                             // Stream.Jitter
	FigRTT                                // Stream.RTT
	FigOneWayDelay                        // Stream.OneWayDelay
	FigJitterBuffer                       // Stream.JitterBuffer
	FigMOS                                // Stream.MOS
	FigMOSLQ                              // Stream.MOSLQ
	FigRFactor                            // Stream.RFactor
	FigDuration                           // Stream.Duration
)

var figureNames = [...]string{"ssrc", "reporter_ssrc", "loss_ratio", "packets_lost", "packets_received",
	"packets_sent", "discard_ratio", "jitter", "rtt", "one_way_delay", "jitter_buffer", "mos", "mos_lq",
	"r_factor", "duration"}

// String lists the figures of a set: "loss_ratio,jitter".
func (f Figure) String() string {
	var b strings.Builder
	for i, name := range figureNames {
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(name)
		}
	}
	return b.String()
}

// Codec is an RTP payload format.
type Codec struct {
	Name        string // as the report or SDP spells it (PCMU, G729, opus ...)
	ClockRate   uint32 // RTP clock, Hz; 0 when unknown
	PayloadType int16  // -1 when unknown
}

// DefaultCodec is assumed where a report names no codec and the caller
// knows none: G.711 mu-law, 8000 Hz.
var DefaultCodec = Codec{Name: "PCMU", ClockRate: 8000, PayloadType: 0}

// Stream is the figures of one RTP stream in one report. Only the figures
// in Given|Computed are set; the rest are zero.
type Stream struct {
	Direction    Direction
	SSRC         uint32 // the stream's source
	ReporterSSRC uint32 // who reported on it
	// Codec of the stream: from the report, else the caller's, else
	// DefaultCodec (CodecAssumed).
	Codec        Codec
	CodecAssumed bool
	PLC          PLC // the receiver's loss concealment, when reported

	LossRatio       float64 // lost / expected, 0..1
	PacketsLost     int64   // cumulative; negative when duplicates outnumber losses (RFC 3550 6.4.1)
	PacketsReceived uint64
	PacketsSent     uint64
	DiscardRatio    float64 // discarded by the jitter buffer / expected, 0..1
	Jitter          float64 // inter-arrival jitter, s
	RTT             float64 // round-trip time, s
	OneWayDelay     float64 // mouth-to-ear delay estimate, s
	JitterBuffer    float64 // nominal jitter buffer delay, s
	// MOS is the conversational score: MOS-CQ, a sender's unqualified
	// MOS, or the E-model's estimate.
	MOS      float64
	MOSLQ    float64 // listening-quality MOS, when given
	RFactor  float64 // E-model R, 0..100 (RFC 3611 allows up to 120 for wideband)
	Duration float64 // s, when the report gives it

	Given    Figure // figures the report carried (converted to SI units)
	Computed Figure // figures derived here
}

// Has reports whether every figure of f is set.
func (s *Stream) Has(f Figure) bool { return (s.Given|s.Computed)&f == f }

func (s *Stream) give(f Figure) { s.Given |= f }

// Class is the stream's quality class from its MOS, or ClassUnknown.
func (s *Stream) Class() Class {
	if !s.Has(FigMOS) {
		return ClassUnknown
	}
	return ClassOf(s.MOS)
}

// Report is one parsed report.
type Report struct {
	Source Source
	// Kind is the report's own type where it has one: the RFC 6035 report
	// type (VQSessionReport, VQIntervalReport, VQAlertReport), the RTCP
	// packet type (SR, RR, XR) or the header name (X-RTP-Stat, P-RTP-Stat).
	Kind string
	// CallID is the SIP Call-ID the report names (RFC 6035 CallID, the
	// message of an X-RTP-Stat header); RTCP has none: HEP chunk 0x11
	// carries it.
	CallID   string
	LocalID  string // RFC 6035 LocalID
	RemoteID string // RFC 6035 RemoteID
	// LocalAddr and RemoteAddr are RFC 6035's LocalAddr and RemoteAddr
	// (IP= PORT=): the reporter's and its peer's media endpoints, by which
	// a report is placed in its call's SDP; invalid when not given.
	LocalAddr, RemoteAddr netip.AddrPort
	// The reporter's own sending, from an RTCP sender report.
	SenderPackets uint64
	SenderOctets  uint64
	HasSender     bool
	Streams       []Stream
}

// Reason is why a report was refused, as callers count it.
type Reason string

// Reasons.
const (
	ReasonMalformed  Reason = "malformed"    // not the format at all, or broken syntax
	ReasonTooLarge   Reason = "too_large"    // past a size, count or length limit
	ReasonOutOfRange Reason = "out_of_range" // a value no sender can mean (fraction_lost 300, MOS 9, jitter in hours)
	ReasonEmpty      Reason = "empty"        // well-formed, but without any figure
)

// Error is a refused report.
type Error struct {
	Source Source
	Reason Reason
	Field  string // the offending field, when one is to blame
	Detail string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("mediaq: ")
	b.WriteString(e.Source.String())
	b.WriteString(": ")
	b.WriteString(string(e.Reason))
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// ReasonOf returns the Reason of an *Error in err's chain, "" for nil and
// ReasonMalformed for any other error.
func ReasonOf(err error) Reason {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonMalformed
}

func errorf(src Source, reason Reason, field, format string, args ...any) *Error {
	return &Error{Source: src, Reason: reason, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// Limits on the work one input may cause.
const (
	// MaxJSONSize bounds an RTCP JSON payload: one RTCP compound packet
	// fits a UDP datagram, and its JSON is a few times that.
	MaxJSONSize = 64 << 10
	// MaxStreams bounds the streams of one report: RTCP's report count
	// is 5 bits (31 blocks per packet).
	MaxStreams = 32
	// MaxVQSize bounds an RFC 6035 body; MaxVQLines its lines.
	MaxVQSize  = 16 << 10
	MaxVQLines = 256
	// MaxHeaderSize bounds an X-RTP-Stat value; MaxRTPStatFields its
	// key=value pairs.
	MaxHeaderSize    = 4 << 10
	MaxRTPStatFields = 64
	// MaxIDLength bounds the identifiers a Report keeps (Call-ID,
	// LocalID, codec names): longer ones are cut, never refused.
	MaxIDLength = 256
	// MaxJitter and MaxDelay are the largest jitter and delay (one-way or
	// round trip) taken as meant: beyond, the value is out_of_range.
	MaxJitter = 30.0 // s
	MaxDelay  = 60.0 // s
)

// rangedNumber reads a decimal number of a text report and checks it
// against lo..hi; the field is group.key (or key) in the error.
func rangedNumber(src Source, group, key, v string, lo, hi float64) (float64, error) {
	field := func() string {
		if group == "" {
			return key
		}
		return group + "." + key
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, errorf(src, ReasonMalformed, field(), "%.20q is not a number", v)
	}
	if !(n >= lo && n <= hi) {
		return 0, errorf(src, ReasonOutOfRange, field(), "%g (%g..%g)", n, lo, hi)
	}
	return n, nil
}

func clip(s string) string {
	if len(s) > MaxIDLength {
		return s[:MaxIDLength]
	}
	return s
}
