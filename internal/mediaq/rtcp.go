package mediaq

import (
	"math"
	"time"
)

// Options is what the caller knows beyond the report.
type Options struct {
	// Arrival is when the report arrived where the SR it answers was sent
	// from: the HEP capture time of the packet. Zero: no round-trip time.
	Arrival time.Time
	// Codec is the stream's codec when known (SDPCodecs); zero: the
	// report's, else DefaultCodec. Its clock rate turns RTCP jitter
	// (timestamp units) into seconds.
	Codec Codec
}

// codec returns the codec a stream is taken to have and whether it was
// assumed; the clock rate is filled in from the name when missing.
func (o *Options) codec() (Codec, bool) {
	c := o.Codec
	if c.Name == "" && c.ClockRate == 0 {
		return DefaultCodec, true
	}
	if c.ClockRate == 0 {
		c.ClockRate = defaultClockRate(c.Name)
	}
	return c, false
}

// defaultClockRate is the RTP clock of a codec named without one: 48000
// for Opus (RFC 7587), 8000 for the narrowband codecs and G.722 (whose RTP
// clock is 8000 by RFC 3551's mistake) and anything unknown.
func defaultClockRate(name string) uint32 {
	if CodecFamily(name) == "OPUS" {
		return 48000
	}
	return 8000
}

// NTP returns t's 64-bit NTP timestamp (RFC 3550 4), as an SR carries
// it: seconds since 1900 (modulo 2^32) in the high half, the fraction of
// a second in 1/2^32 s in the low half.
func NTP(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800 // 1900-01-01 to 1970-01-01, s
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// NTPShort returns the middle 32 bits of t's NTP timestamp (RFC 3550
// 4): seconds since 1900 modulo 2^16 in the high half, the fraction in
// 1/65536 s in the low half, as LSR and DLSR count.
func NTPShort(t time.Time) uint32 { return uint32(NTP(t) >> 16) }

// RoundTrip is RFC 3550 6.4.1's round-trip time A - LSR - DLSR in seconds,
// with A the arrival time of the report block, LSR and DLSR from the
// block; ok is false when the block carries no LSR (no SR received yet)
// or the result is negative or beyond MaxDelay. RFC 3550 takes A at the
// SR's sender. Taken at a capture point on the path (the HEP capture time
// of rtpengine or heplify), it lacks the leg from there back to the SR's
// sender, and holds the offset between the capture clock and the sender's
// (NTP-synchronised hosts: milliseconds).
func RoundTrip(arrival time.Time, lsr, dlsr uint32) (rtt float64, ok bool) {
	if lsr == 0 || arrival.IsZero() {
		return 0, false
	}
	d := int32(NTPShort(arrival) - lsr - dlsr)
	rtt = float64(d) / 65536
	return rtt, rtt >= 0 && rtt <= MaxDelay
}

// ParseRTCPJSON parses the JSON of a HEP type 5 payload into a new Report.
func ParseRTCPJSON(b []byte, opt Options) (Report, error) {
	var r Report
	err := r.ParseRTCPJSON(b, opt)
	return r, err
}

// ParseRTCPJSON parses the JSON that RTPEngine (daemon/rtcp.c, homer_*),
// heplify (protos/rtcp.go) and captagent (parser_rtcp.c) put in HEP type 5
// packets into r, reusing r's stream slice: one Stream per entry of
// "report_blocks" (SR/RR report blocks: fraction_lost /256, packets_lost,
// ia_jitter in timestamp units, lsr/dlsr for the round-trip time), one for
// an RTCP-XR VoIP metrics block ("report_blocks_xr" of heplify,
// "extended_report_information" of captagent's decoder, when of block type
// 7), and the sender information. Unknown keys are skipped; numbers may
// come quoted. Streams get an E-model MOS where they have loss but no
// score (Estimate).
func (r *Report) ParseRTCPJSON(b []byte, opt Options) error {
	streams := r.Streams[:0]
	*r = Report{Source: SourceRTCP, Streams: streams}
	if len(b) > MaxJSONSize {
		return errorf(SourceRTCP, ReasonTooLarge, "", "%d bytes (limit %d)", len(b), MaxJSONSize)
	}
	codec, assumed := opt.codec()
	s := jscan{b: b, src: SourceRTCP}
	var (
		reporter   float64
		hasRep     bool
		known      bool
		xrs        [2]xrRaw // heplify's and captagent's XR objects
		nxr        int
		senderSeen bool
	)
	err := s.object(0, func(key []byte, depth int) error {
		switch string(key) {
		case "ssrc":
			known = true
			v, ok, err := s.number()
			if err != nil {
				return err
			}
			if ok {
				if err := checkUint32(SourceRTCP, "ssrc", v); err != nil {
					return err
				}
				reporter, hasRep = v, true
			}
			return nil
		case "type":
			known = true
			v, ok, err := s.number()
			if err != nil || !ok {
				return err
			}
			r.Kind = rtcpKind(v)
			return nil
		case "sender_information":
			known, senderSeen = true, true
			return s.object(depth, func(key []byte, depth int) error {
				switch string(key) {
				case "packets", "octets":
					v, ok, err := s.number()
					if err != nil || !ok {
						return err
					}
					field, dst := "octets", &r.SenderOctets
					if key[0] == 'p' {
						field, dst = "packets", &r.SenderPackets
					}
					if err := checkUint32(SourceRTCP, field, v); err != nil {
						return err
					}
					*dst = uint64(v)
					return nil
				}
				return s.skip(depth)
			})
		case "report_blocks":
			known = true
			if s.peek() == 'n' { // heplify marshals an empty list as null
				return s.literal("null")
			}
			return s.array(depth, func(depth int) error {
				if len(r.Streams) >= MaxStreams {
					return errorf(SourceRTCP, ReasonTooLarge, "report_blocks", "more than %d", MaxStreams)
				}
				var rb reportBlock
				if err := rb.read(&s, depth); err != nil {
					return err
				}
				st, err := rb.stream(codec, opt.Arrival)
				if err != nil {
					return err
				}
				st.CodecAssumed = assumed
				r.Streams = append(r.Streams, st)
				return nil
			})
		case "sdes_ssrc", "sdes_information", "sdes_report_count", "sdes_chunk_ssrc":
			// an SDES-only packet is RTCP without figures, not an error
			known = true
			return s.skip(depth)
		case "report_blocks_xr", "extended_report_information":
			known = true
			if nxr == len(xrs) {
				return s.skip(depth)
			}
			nxr++
			return xrs[nxr-1].readJSON(&s, depth)
		}
		return s.skip(depth)
	})
	if err != nil {
		return err
	}
	if err := s.end(); err != nil {
		return err
	}
	if !known {
		return errorf(SourceRTCP, ReasonEmpty, "", "no RTCP field")
	}
	r.HasSender = senderSeen
	for i := range nxr {
		if xrs[i].blockType != xrVoIPMetrics {
			continue // heplify always writes the object, zero for non-XR packets
		}
		if len(r.Streams) >= MaxStreams {
			return errorf(SourceRTCP, ReasonTooLarge, "report_blocks_xr", "more than %d streams", MaxStreams)
		}
		st, err := xrs[i].stream(SourceRTCP)
		if err != nil {
			return err
		}
		st.Codec, st.CodecAssumed = codec, assumed
		st.Estimate()
		r.Streams = append(r.Streams, st)
	}
	if hasRep {
		for i := range r.Streams {
			r.Streams[i].ReporterSSRC = uint32(reporter)
			r.Streams[i].give(FigReporterSSRC)
		}
	}
	return nil
}

func rtcpKind(v float64) string {
	switch v {
	case 200:
		return "SR"
	case 201:
		return "RR"
	case 202:
		return "SDES"
	case 203:
		return "BYE"
	case 204:
		return "APP"
	case 207:
		return "XR"
	}
	return ""
}

func checkUint32(src Source, field string, v float64) error {
	if v < 0 || v > math.MaxUint32 || v != math.Trunc(v) {
		return errorf(src, ReasonOutOfRange, field, "%g is not a 32-bit unsigned integer", v)
	}
	return nil
}

// reportBlock is one RFC 3550 6.4.1 report block as the JSON gives it.
type reportBlock struct {
	ssrc, fraction, lost, jitter, lsr, dlsr float64
	has                                     uint8 // rb* bits
}

const (
	rbSSRC = 1 << iota
	rbFraction
	rbLost
	rbJitter
	rbLSR
	rbDLSR
)

func (rb *reportBlock) read(s *jscan, depth int) error {
	return s.object(depth, func(key []byte, depth int) error {
		var dst *float64
		var bit uint8
		switch string(key) {
		case "source_ssrc":
			dst, bit = &rb.ssrc, rbSSRC
		case "fraction_lost":
			dst, bit = &rb.fraction, rbFraction
		case "packets_lost", "packet_lost":
			dst, bit = &rb.lost, rbLost
		case "ia_jitter":
			dst, bit = &rb.jitter, rbJitter
		case "lsr":
			dst, bit = &rb.lsr, rbLSR
		case "dlsr":
			dst, bit = &rb.dlsr, rbDLSR
		default:
			return s.skip(depth)
		}
		v, ok, err := s.number()
		if ok {
			*dst = v
			rb.has |= bit
		}
		return err
	})
}

// stream converts a report block to SI units (Estimate included).
func (rb *reportBlock) stream(codec Codec, arrival time.Time) (Stream, error) {
	st := Stream{Direction: DirReceived, Codec: codec}
	for _, f := range [...]struct {
		name string
		bit  uint8
		v    float64
	}{{"source_ssrc", rbSSRC, rb.ssrc}, {"ia_jitter", rbJitter, rb.jitter}, {"lsr", rbLSR, rb.lsr}, {"dlsr", rbDLSR, rb.dlsr}} {
		if rb.has&f.bit != 0 {
			if err := checkUint32(SourceRTCP, f.name, f.v); err != nil {
				return st, err
			}
		}
	}
	if rb.has&rbSSRC != 0 {
		st.SSRC = uint32(rb.ssrc)
		st.give(FigSSRC)
	}
	if rb.has&rbFraction != 0 {
		if rb.fraction < 0 || rb.fraction > 255 || rb.fraction != math.Trunc(rb.fraction) {
			return st, errorf(SourceRTCP, ReasonOutOfRange, "fraction_lost", "%g (0..255: the loss fraction in 1/256)", rb.fraction)
		}
		st.LossRatio = rb.fraction / 256
		st.give(FigLossRatio)
	}
	if rb.has&rbLost != 0 {
		lost, ok := cumulativeLost(rb.lost)
		if !ok {
			return st, errorf(SourceRTCP, ReasonOutOfRange, "packets_lost", "%g (a 24-bit signed count)", rb.lost)
		}
		st.PacketsLost = lost
		st.give(FigPacketsLost)
	}
	if rb.has&rbJitter != 0 {
		j := rb.jitter / float64(codec.ClockRate)
		if j > MaxJitter {
			return st, errorf(SourceRTCP, ReasonOutOfRange, "ia_jitter", "%g timestamp units is %.0f s at %d Hz (limit %g s)", rb.jitter, j, codec.ClockRate, MaxJitter)
		}
		st.Jitter = j
		st.give(FigJitter)
	}
	if rb.has&rbLSR != 0 {
		if rtt, ok := RoundTrip(arrival, uint32(rb.lsr), uint32(rb.dlsr)); ok {
			st.RTT = rtt
			st.Computed |= FigRTT
		}
	}
	st.Estimate()
	return st, nil
}

// cumulativeLost reads RFC 3550's 24-bit signed cumulative loss as the
// senders print it: signed (captagent), as the unsigned 24-bit field
// (heplify), or as a 32-bit unsigned of the sign-extended value
// (RTPEngine's %u).
func cumulativeLost(v float64) (int64, bool) {
	if v != math.Trunc(v) {
		return 0, false
	}
	switch {
	case v >= -(1<<23) && v < 1<<23:
		return int64(v), true
	case v >= 1<<23 && v < 1<<24:
		return int64(v) - 1<<24, true
	case v >= math.MaxUint32+1-(1<<23) && v <= math.MaxUint32:
		return int64(v) - (math.MaxUint32 + 1), true
	}
	return 0, false
}
