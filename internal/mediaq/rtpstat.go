package mediaq

import (
	"strconv"
	"strings"

	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
)

// The end-of-call statistics headers of a BYE or its 200.
const (
	HeaderXRTPStat = "X-RTP-Stat" // AudioCodes, Polycom/Poly, AVM, baresip, Siemens-style
	HeaderPRTPStat = "P-RTP-Stat" // Cisco CUBE / CUCM
)

// ParseRTPStat parses the value of an X-RTP-Stat or P-RTP-Stat header
// (header names the one it came from) into a Report of one stream, the
// reporter's reception. The published formats differ in separators and
// in a few meanings, all read here:
//
//   - AudioCodes X-RTP-Stat: "PS=207;OS=49680;;PR=314;OR=50240;PL=0;JI=600;LA=40;"
//     (JI jitter ms, LA latency ms);
//   - Poly (ATA 400) X-RTP-Stat: comma-separated, "...,JI=1,DU=1230,PL=0,EN=G711U,DE=G711U,MOS=4.0"
//     (LA decode latency or jitter buffer ms, DU duration s, EN/DE codecs);
//   - AVM X-RTP-Stat (heplify-server's sample, baresip): "PL=22,33" and
//     "JI=23,111" are received,sent pairs, "DL=34,25,70" delay avg,min,max ms,
//     CS call setup ms, CD duration s;
//   - Cisco P-RTP-Stat: "PS=3775,OS=649300,PR=3775,OR=604000,PL=0,JI=0,LA=4,DU=98"
//     (LA round-trip delay ms).
//
// So: PS/PR packets sent/received, PL packets lost (the first of a
// pair), JI jitter in ms (baresip writes timestamp units: read as ms
// too), LA the round-trip time in P-RTP-Stat and the one-way delay in
// X-RTP-Stat, DL's average the round-trip time (as heplify-server takes
// it), DU/CD the duration, DE the received stream's codec, MOS a MOS.
// The loss ratio is computed from PL and PR; without MOS the E-model
// gives one. Keys are case-sensitive; unknown keys and "-" values are
// skipped.
func ParseRTPStat(header, value string, codec Codec) (Report, error) {
	r := Report{Source: SourceRTPStat, Kind: HeaderXRTPStat}
	isCisco := strings.EqualFold(header, HeaderPRTPStat)
	if isCisco {
		r.Kind = HeaderPRTPStat
	}
	if len(value) > MaxHeaderSize {
		return r, errorf(SourceRTPStat, ReasonTooLarge, "", "%d bytes (limit %d)", len(value), MaxHeaderSize)
	}
	st := Stream{Direction: DirReceived}
	var (
		fields   int
		decoder  string
		received float64
		lost     float64
		hasRecv  bool
		hasLost  bool
	)
	for k, v := range rtpStatFields(value) {
		if fields++; fields > MaxRTPStatFields {
			return r, errorf(SourceRTPStat, ReasonTooLarge, "", "more than %d fields", MaxRTPStatFields)
		}
		first, _, _ := strings.Cut(v, ",")
		if first == "-" || first == "" {
			continue
		}
		var err error
		switch k {
		case "PS":
			var n float64
			if n, err = rangedNumber(SourceRTPStat, "", k, first, 0, 1<<53); err == nil {
				st.PacketsSent = uint64(n)
				st.give(FigPacketsSent)
			}
		case "PR":
			if received, err = rangedNumber(SourceRTPStat, "", k, first, 0, 1<<53); err == nil {
				st.PacketsReceived, hasRecv = uint64(received), true
				st.give(FigPacketsReceived)
			}
		case "PL":
			if lost, err = rangedNumber(SourceRTPStat, "", k, first, -(1 << 31), 1<<53); err == nil {
				st.PacketsLost, hasLost = int64(lost), true
				st.give(FigPacketsLost)
			}
		case "JI":
			var ms float64
			if ms, err = rangedNumber(SourceRTPStat, "", k, first, 0, MaxJitter*1000); err == nil {
				st.set(FigJitter, ms/1000)
			}
		case "LA":
			var ms float64
			// Cisco's range is signed: a negative delay is "not measured"
			if ms, err = rangedNumber(SourceRTPStat, "", k, first, -(1 << 31), MaxDelay*1000); err == nil && ms >= 0 {
				if isCisco {
					st.set(FigRTT, ms/1000)
				} else {
					st.set(FigOneWayDelay, ms/1000)
				}
			}
		case "DL":
			var ms float64
			if ms, err = rangedNumber(SourceRTPStat, "", k, first, 0, MaxDelay*1000); err == nil {
				st.set(FigRTT, ms/1000)
			}
		case "DU", "CD":
			var s float64
			if s, err = rangedNumber(SourceRTPStat, "", k, first, 0, 1e9); err == nil {
				st.set(FigDuration, s)
			}
		case "MOS":
			var mos float64
			if mos, err = rangedNumber(SourceRTPStat, "", k, first, 0, 5); err == nil && mos != 0 {
				if mos < 1 {
					err = errorf(SourceRTPStat, ReasonOutOfRange, k, "%g (1..5)", mos)
				} else {
					st.set(FigMOS, mos)
				}
			}
		case "DE":
			decoder = clip(first)
		}
		if err != nil {
			return r, err
		}
	}
	if st.Given == 0 {
		return r, errorf(SourceRTPStat, ReasonEmpty, "", "no known field")
	}
	if hasRecv && hasLost && lost >= 0 && received+lost > 0 {
		st.LossRatio = lost / (received + lost)
		st.Computed |= FigLossRatio
	}
	st.Codec, st.CodecAssumed = rtpStatCodec(decoder, codec)
	st.Estimate()
	r.Streams = append(r.Streams, st)
	return r, nil
}

// rtpStatCodec is the codec DE names (a name, "PCMU/8000", or a static
// payload type number), else the caller's, else DefaultCodec.
func rtpStatCodec(decoder string, codec Codec) (Codec, bool) {
	if decoder != "" {
		if pt, err := strconv.ParseUint(decoder, 10, 7); err == nil {
			if c := completeCodec(Codec{PayloadType: int16(pt)}); c.Name != "" {
				return c, false
			}
		} else {
			name, clock, _ := strings.Cut(decoder, "/")
			rate, _ := strconv.ParseUint(clock, 10, 32)
			return completeCodec(Codec{Name: name, ClockRate: uint32(rate), PayloadType: -1}), false
		}
	}
	opt := Options{Codec: codec}
	return opt.codec()
}

// rtpStatFields yields the KEY=value pairs of a statistics header. Pairs
// are separated by ';' or ','; a piece without '=' continues the value
// before it ("PL=22,33", "IP=a:1,b:2").
func rtpStatFields(value string) func(yield func(k, v string) bool) {
	return func(yield func(k, v string) bool) {
		s := value
		for s != "" {
			// the pair starts here and runs to the next separator that
			// is followed by KEY= (or by ';' anywhere)
			end := len(s)
			for i := 0; i < len(s); i++ {
				if s[i] == ';' || s[i] == ',' && startsPair(s[i+1:]) {
					end = i
					break
				}
			}
			pair := strings.TrimSpace(s[:end])
			if end < len(s) {
				s = s[end+1:]
			} else {
				s = ""
			}
			k, v, ok := strings.Cut(pair, "=")
			if !ok {
				continue // ";;", or a word without value
			}
			if !yield(strings.TrimSpace(k), strings.TrimSpace(v)) {
				return
			}
		}
	}
}

// startsPair reports whether s starts with "KEY=" (letters, digits, '-').
func startsPair(s string) bool {
	s = strings.TrimLeft(s, " ")
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '=':
			return i > 0
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9' && i > 0, c == '-' && i > 0:
		default:
			return false
		}
	}
	return false
}

// FromSIP finds the media-quality report a SIP message carries: an RFC
// 6035 body (Content-Type application/vq-rtcpxr, in a PUBLISH), else an
// X-RTP-Stat or P-RTP-Stat header (a BYE or its 200). The Report's CallID
// is the report's own, else the message's Call-ID. ok is false when the
// message carries none; err is set when it carries one that does not
// parse. codec is the call's when known (SDPAudioCodec of its INVITE).
func FromSIP(msg string, codec Codec) (r Report, ok bool, err error) {
	if ct := sipmsg.FirstHeader(msg, "Content-Type"); ct != "" {
		mt, _, _ := strings.Cut(ct, ";")
		if strings.EqualFold(strings.TrimSpace(mt), VQContentType) {
			r, err = ParseVQReport(sipmsg.Body(msg), codec)
			if r.CallID == "" {
				r.CallID = clip(sipmsg.FirstHeader(msg, "Call-ID"))
			}
			return r, true, err
		}
	}
	for _, h := range [...]string{HeaderXRTPStat, HeaderPRTPStat} {
		if v := sipmsg.FirstHeader(msg, h); v != "" {
			r, err = ParseRTPStat(h, v, codec)
			r.CallID = clip(sipmsg.FirstHeader(msg, "Call-ID"))
			return r, true, err
		}
	}
	return Report{}, false, nil
}

// MOSFromHEP reads HEP3 chunk 0x20 (uint16 "MOS"), which the HEP
// specification gives no scale: 100..500 is MOS x 100 (4.36 sent as 436,
// the scale of horaclifix's MOS that heplify-server divides by 100), 1..5
// a plain MOS. ok is false for 0 (no score); anything else is out_of_range.
func MOSFromHEP(v uint16) (mos float64, ok bool, err error) {
	switch {
	case v == 0:
		return 0, false, nil
	case v <= 5:
		return float64(v), true, nil
	case v >= 100 && v <= 500:
		return float64(v) / 100, true, nil
	}
	return 0, false, errorf(SourceHEPMOS, ReasonOutOfRange, "mos", "%d (100..500: MOS x 100, or 1..5)", v)
}
