package mediaq

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// VQContentType is the media type of RFC 6035 bodies.
const VQContentType = "application/vq-rtcpxr"

// ParseVQReport parses an RFC 6035 application/vq-rtcpxr body (the
// body of a SIP PUBLISH with Event: vq-rtcpxr): VQSessionReport,
// VQIntervalReport or VQAlertReport, with the session's identities
// (CallID, LocalID, RemoteID, LocalAddr/RemoteAddr SSRCs) and up to two
// streams: LocalMetrics (the reporter's reception, DirReceived) and
// RemoteMetrics (the far end's, DirRemote). Units: PacketLoss NLR/JDR
// percent, Delay RTD/ESD/IAJ/SOWD milliseconds, JitterBuffer JBN
// milliseconds, QualityEst MOSLQ/MOSCQ 1..5 and RCQ 0..120. Lines may be
// indented and end in CRLF or LF; unknown lines and parameters are
// skipped. codec is the stream's when the report names none (zero:
// DefaultCodec).
func ParseVQReport(body string, codec Codec) (Report, error) {
	r := Report{Source: SourceVQReport}
	if len(body) > MaxVQSize {
		return r, errorf(SourceVQReport, ReasonTooLarge, "", "%d bytes (limit %d)", len(body), MaxVQSize)
	}
	var (
		lines     int
		section   *vqMetrics
		local     vqMetrics
		remote    vqMetrics
		localSSRC uint32
		remSSRC   uint32
		hasLocal  bool
		hasRemote bool
	)
	rest := body
	for rest != "" {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if lines++; lines > MaxVQLines {
			return r, errorf(SourceVQReport, ReasonTooLarge, "", "more than %d lines", MaxVQLines)
		}
		name, value, colon := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		value = strings.TrimSpace(value)
		if r.Kind == "" {
			switch name {
			case "VQSessionReport", "VQIntervalReport", "VQAlertReport":
				r.Kind = name
				continue
			}
			return r, errorf(SourceVQReport, ReasonMalformed, "", "starts with %.40q, not a VQ report type", line)
		}
		if !colon {
			continue
		}
		switch name {
		case "CallID":
			r.CallID = clip(value)
		case "LocalID":
			r.LocalID = clip(value)
		case "RemoteID":
			r.RemoteID = clip(value)
		case "LocalAddr", "RemoteAddr":
			ssrc, ok, err := vqSSRC(value)
			if err != nil {
				return r, err
			}
			if name == "LocalAddr" {
				r.LocalAddr = vqAddr(value)
			} else {
				r.RemoteAddr = vqAddr(value)
			}
			if ok && name == "LocalAddr" {
				localSSRC, hasLocal = ssrc, true
			} else if ok {
				remSSRC, hasRemote = ssrc, true
			}
		case "LocalMetrics":
			section = &local
			local.seen = true
		case "RemoteMetrics":
			section = &remote
			remote.seen = true
		default:
			if section == nil {
				continue
			}
			if err := section.group(name, value); err != nil {
				return r, err
			}
		}
	}
	if r.Kind == "" {
		return r, errorf(SourceVQReport, ReasonEmpty, "", "no report")
	}
	for _, m := range [...]struct {
		m                  *vqMetrics
		dir                Direction
		ssrc, reporter     uint32
		hasSSRC, hasReport bool
	}{
		{&local, DirReceived, remSSRC, localSSRC, hasRemote, hasLocal},
		{&remote, DirRemote, localSSRC, remSSRC, hasLocal, hasRemote},
	} {
		m.m.duration()
		if !m.m.seen || m.m.st.Given == 0 {
			continue
		}
		st := m.m.st
		st.Direction = m.dir
		if m.hasSSRC {
			st.SSRC = m.ssrc
			st.give(FigSSRC)
		}
		if m.hasReport {
			st.ReporterSSRC = m.reporter
			st.give(FigReporterSSRC)
		}
		if m.m.hasDesc {
			st.Codec = completeCodec(st.Codec)
		}
		if st.Codec.Name == "" {
			opt := Options{Codec: codec}
			st.Codec, st.CodecAssumed = opt.codec()
		}
		if !st.Has(FigOneWayDelay) && m.m.esd > 0 {
			st.setEndSystemDelay(st.RTT, m.m.esd)
		}
		st.Estimate()
		r.Streams = append(r.Streams, st)
	}
	if len(r.Streams) == 0 {
		return r, errorf(SourceVQReport, ReasonEmpty, "", "%s without metrics", r.Kind)
	}
	return r, nil
}

// vqSSRC reads the SSRC of "IP=10.0.0.1 PORT=5000 SSRC=0x1a3b5c7d" (hex,
// with or without 0x).
func vqSSRC(value string) (uint32, bool, error) {
	for k, v := range vqParams(value) {
		if k != "SSRC" {
			continue
		}
		v = strings.TrimPrefix(strings.TrimPrefix(v, "0x"), "0X")
		n, err := strconv.ParseUint(v, 16, 32)
		if err != nil {
			return 0, false, errorf(SourceVQReport, ReasonMalformed, "SSRC", "%.20q is not a 32-bit hex number", v)
		}
		return uint32(n), true, nil
	}
	return 0, false, nil
}

// vqAddr reads the endpoint of "IP=10.0.0.1 PORT=5000 SSRC=...": invalid
// when either is missing or unreadable (the endpoint only places the
// report, it is no figure to refuse it for).
func vqAddr(value string) netip.AddrPort {
	var (
		addr netip.Addr
		port uint64
		err  error = errNoPort
	)
	for k, v := range vqParams(value) {
		switch k {
		case "IP":
			addr, _ = netip.ParseAddr(v)
		case "PORT":
			port, err = strconv.ParseUint(v, 10, 16)
		}
	}
	if !addr.IsValid() || err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(port))
}

var errNoPort = errors.New("no PORT")

// vqParams yields the KEY=value pairs of a metrics line, separated by
// white space; a value may be quoted (FMTP="annexb=no").
func vqParams(value string) func(yield func(k, v string) bool) {
	return func(yield func(k, v string) bool) {
		s := value
		for s != "" {
			s = strings.TrimLeft(s, " \t")
			if s == "" {
				return
			}
			eq := strings.IndexByte(s, '=')
			sp := strings.IndexAny(s, " \t")
			if eq < 0 || sp >= 0 && sp < eq { // a bare word
				if sp < 0 {
					return
				}
				s = s[sp:]
				continue
			}
			k := s[:eq]
			s = s[eq+1:]
			var v string
			if strings.HasPrefix(s, `"`) {
				end := strings.IndexByte(s[1:], '"')
				if end < 0 {
					v, s = s[1:], ""
				} else {
					v, s = s[1:end+1], s[end+2:]
				}
			} else if sp := strings.IndexAny(s, " \t"); sp >= 0 {
				v, s = s[:sp], s[sp:]
			} else {
				v, s = s, ""
			}
			if !yield(k, v) {
				return
			}
		}
	}
}

// vqMetrics gathers one LocalMetrics or RemoteMetrics section.
type vqMetrics struct {
	seen        bool
	hasDesc     bool
	st          Stream
	esd         float64 // s
	start, stop time.Time
}

// vqField is a numeric parameter: where it goes, its unit and range.
type vqField struct {
	fig    Figure
	scale  float64 // multiplier to SI units
	lo, hi float64 // allowed, in the report's unit
	zero   bool    // 0 means "not reported"
}

// vqFields are the numeric parameters by group and key.
var vqFields = map[string]map[string]vqField{
	"PacketLoss": {
		"NLR": {FigLossRatio, 0.01, 0, 100, false},
		"JDR": {FigDiscardRatio, 0.01, 0, 100, false},
	},
	"Delay": {
		"RTD":  {FigRTT, 0.001, 0, MaxDelay * 1000, true},
		"IAJ":  {FigJitter, 0.001, 0, MaxJitter * 1000, false},
		"SOWD": {FigOneWayDelay, 0.001, 0, MaxDelay * 1000, true},
		"OWD":  {FigOneWayDelay, 0.001, 0, MaxDelay * 1000, true},
	},
	"JitterBuffer": {
		"JBN": {FigJitterBuffer, 0.001, 0, MaxDelay * 1000, true},
	},
	"QualityEst": {
		"MOSLQ": {FigMOSLQ, 1, 1, 5, true},
		"MOSCQ": {FigMOS, 1, 1, 5, true},
		"RCQ":   {FigRFactor, 1, 0, 120, false},
	},
}

func (m *vqMetrics) group(group, value string) error {
	switch group {
	case "SessionDesc":
		return m.sessionDesc(value)
	case "Timestamps":
		for k, v := range vqParams(value) {
			if k != "START" && k != "STOP" {
				continue
			}
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return errorf(SourceVQReport, ReasonMalformed, "Timestamps."+k, "%.40q is not an RFC 3339 time", v)
			}
			if k == "START" {
				m.start = t
			} else {
				m.stop = t
			}
		}
		return nil
	}
	fields, ok := vqFields[group]
	if !ok {
		return nil
	}
	for k, v := range vqParams(value) {
		if group == "Delay" && k == "ESD" {
			esd, err := rangedNumber(SourceVQReport, group, k, v, 0, MaxDelay*1000)
			if err != nil {
				return err
			}
			m.esd = esd / 1000
			continue
		}
		f, ok := fields[k]
		if !ok {
			continue
		}
		n, err := rangedNumber(SourceVQReport, group, k, v, f.lo, f.hi)
		if err != nil {
			return err
		}
		if n == 0 && f.zero {
			continue
		}
		m.st.set(f.fig, n*f.scale)
	}
	return nil
}

func (m *vqMetrics) sessionDesc(value string) error {
	m.hasDesc = true
	m.st.Codec.PayloadType = -1
	for k, v := range vqParams(value) {
		switch k {
		case "PT":
			pt, err := strconv.ParseUint(v, 10, 8)
			if err != nil || pt > 127 {
				return errorf(SourceVQReport, ReasonOutOfRange, "SessionDesc.PT", "%.20q (0..127)", v)
			}
			m.st.Codec.PayloadType = int16(pt)
		case "PD":
			m.st.Codec.Name = clip(v)
		case "SR":
			sr, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return errorf(SourceVQReport, ReasonMalformed, "SessionDesc.SR", "%.20q", v)
			}
			m.st.Codec.ClockRate = uint32(sr)
		case "PLC":
			plc, err := strconv.ParseUint(v, 10, 8)
			if err != nil || plc > 3 {
				return errorf(SourceVQReport, ReasonOutOfRange, "SessionDesc.PLC", "%.20q (0..3)", v)
			}
			m.st.PLC = PLC(plc)
		}
	}
	return nil
}

// duration sets the stream's duration from Timestamps START and STOP.
func (m *vqMetrics) duration() {
	if !m.start.IsZero() && !m.stop.IsZero() && !m.stop.Before(m.start) {
		m.st.set(FigDuration, m.stop.Sub(m.start).Seconds())
	}
}

// set stores a given figure by its Figure.
func (s *Stream) set(f Figure, v float64) {
	switch f {
	case FigLossRatio:
		s.LossRatio = v
	case FigDiscardRatio:
		s.DiscardRatio = v
	case FigJitter:
		s.Jitter = v
	case FigRTT:
		s.RTT = v
	case FigOneWayDelay:
		s.OneWayDelay = v
	case FigJitterBuffer:
		s.JitterBuffer = v
	case FigMOS:
		s.MOS = v
	case FigMOSLQ:
		s.MOSLQ = v
	case FigRFactor:
		s.RFactor = v
	case FigDuration:
		s.Duration = v
	default:
		return
	}
	s.give(f)
}
