package mediaq

import (
	"net/netip"
	"strconv"
	"strings"
)

// staticCodecs are RFC 3551's static audio payload types (Table 4).
var staticCodecs = map[int16]Codec{
	0:  {Name: "PCMU", ClockRate: 8000, PayloadType: 0},
	3:  {Name: "GSM", ClockRate: 8000, PayloadType: 3},
	4:  {Name: "G723", ClockRate: 8000, PayloadType: 4},
	5:  {Name: "DVI4", ClockRate: 8000, PayloadType: 5},
	6:  {Name: "DVI4", ClockRate: 16000, PayloadType: 6},
	7:  {Name: "LPC", ClockRate: 8000, PayloadType: 7},
	8:  {Name: "PCMA", ClockRate: 8000, PayloadType: 8},
	9:  {Name: "G722", ClockRate: 8000, PayloadType: 9},
	10: {Name: "L16", ClockRate: 44100, PayloadType: 10},
	11: {Name: "L16", ClockRate: 44100, PayloadType: 11},
	12: {Name: "QCELP", ClockRate: 8000, PayloadType: 12},
	13: {Name: "CN", ClockRate: 8000, PayloadType: 13},
	14: {Name: "MPA", ClockRate: 90000, PayloadType: 14},
	15: {Name: "G728", ClockRate: 8000, PayloadType: 15},
	16: {Name: "DVI4", ClockRate: 11025, PayloadType: 16},
	17: {Name: "DVI4", ClockRate: 22050, PayloadType: 17},
	18: {Name: "G729", ClockRate: 8000, PayloadType: 18},
}

// completeCodec fills what a report left out of a codec: name and clock
// from a static payload type, a clock from the name.
func completeCodec(c Codec) Codec {
	if c.Name == "" {
		if s, ok := staticCodecs[c.PayloadType]; ok && c.PayloadType >= 0 {
			return s
		}
	}
	if c.ClockRate == 0 && c.Name != "" {
		c.ClockRate = defaultClockRate(c.Name)
	}
	return c
}

// MaxSDPPayloads bounds the payload types SDPCodecs returns.
const MaxSDPPayloads = 32

// SDPCodecs returns the payload formats of the first audio m= line of an
// SDP body, in the offer's order of preference: names and clock rates
// from its a=rtpmap lines, else RFC 3551's static table (a dynamic type
// without rtpmap has an empty name). Formats past MaxSDPPayloads are left
// out; ok is false when the body has no audio m= line.
func SDPCodecs(sdp string) (codecs []Codec, ok bool) { return sdpCodecs(sdp, nil) }

// sdpCodecs is SDPCodecs appending to codecs (a caller's buffer).
func sdpCodecs(sdp string, codecs []Codec) ([]Codec, bool) {
	inAudio, ok := false, false
	for rest := sdp; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "m="):
			if inAudio {
				return codecs, true // the next media section
			}
			f := strings.Fields(line[2:])
			if len(f) < 3 || f[0] != "audio" {
				continue
			}
			inAudio, ok = true, true
			for _, p := range f[3:] {
				pt, err := strconv.ParseUint(p, 10, 7)
				if err != nil || len(codecs) == MaxSDPPayloads {
					continue
				}
				c := Codec{PayloadType: int16(pt)}
				if s, known := staticCodecs[c.PayloadType]; known {
					c = s
				}
				codecs = append(codecs, c)
			}
		case inAudio && strings.HasPrefix(line, "a=rtpmap:"):
			// a=rtpmap:<pt> <name>/<clock>[/<channels>]
			ptText, enc, found := strings.Cut(line[len("a=rtpmap:"):], " ")
			pt, err := strconv.ParseUint(ptText, 10, 7)
			if !found || err != nil {
				continue
			}
			name, clockText, _ := strings.Cut(strings.TrimSpace(enc), "/")
			clockText, _, _ = strings.Cut(clockText, "/")
			clock, _ := strconv.ParseUint(clockText, 10, 32)
			for i := range codecs {
				if codecs[i].PayloadType == int16(pt) {
					codecs[i].Name = clip(name)
					codecs[i].ClockRate = uint32(clock)
				}
			}
		}
	}
	return codecs, ok
}

// SDPAudioCodec returns the first audio format of an SDP body that
// carries speech: comfort noise (CN) and DTMF (telephone-event) are
// passed over.
func SDPAudioCodec(sdp string) (Codec, bool) {
	var buf [MaxSDPPayloads]Codec // on the stack: every offer and answer of a call comes here
	codecs, _ := sdpCodecs(sdp, buf[:0])
	for _, c := range codecs {
		switch strings.ToLower(c.Name) {
		case "cn", "telephone-event", "":
			continue
		}
		return c, true
	}
	return Codec{}, false
}

// SDPAudioEndpoint returns where the sender of an SDP body receives its
// first audio stream: the m= line's port and the connection address
// (media-level c=, else session-level), and the RTCP port (RFC 3605
// a=rtcp, else the RTP port + 1, RFC 3550). ok is false without an audio
// m= line with a port and an address (port 0 is a rejected stream).
func SDPAudioEndpoint(sdp string) (rtp netip.AddrPort, rtcpPort uint16, ok bool) {
	var (
		session, media netip.Addr
		port, rtcp     uint64
		inAudio, seen  bool
		inMedia        bool // past the session section
	)
	for rest := sdp; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "m="):
			if inAudio {
				rest = "" // the next media section
				continue
			}
			inMedia = true
			// m=audio <port>[/<count>] <proto> <fmt> ... (no allocation:
			// every INVITE and answer of a call comes here)
			media, rest, _ := strings.Cut(line[2:], " ")
			portText, proto, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
			if media != "audio" || strings.TrimSpace(proto) == "" || seen {
				continue
			}
			portText, _, _ = strings.Cut(portText, "/")
			n, err := strconv.ParseUint(portText, 10, 16)
			if err != nil {
				continue
			}
			inAudio, seen, port = true, true, n
		case strings.HasPrefix(line, "c="):
			// c=IN IP4 192.0.2.1[/ttl]
			netType, rest, _ := strings.Cut(line[2:], " ")
			_, host, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
			host, _, _ = strings.Cut(strings.TrimSpace(host), "/")
			if netType != "IN" {
				continue
			}
			a, err := netip.ParseAddr(host)
			if err != nil {
				continue
			}
			if inAudio {
				media = a.Unmap()
			} else if !inMedia {
				session = a.Unmap()
			}
		case inAudio && strings.HasPrefix(line, "a=rtcp:"):
			// a=rtcp:53020 [IN IP4 192.0.2.1]
			p, _, _ := strings.Cut(line[len("a=rtcp:"):], " ")
			if n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16); err == nil {
				rtcp = n
			}
		}
	}
	addr := media
	if !addr.IsValid() {
		addr = session
	}
	if !seen || port == 0 || !addr.IsValid() {
		return netip.AddrPort{}, 0, false
	}
	if rtcp == 0 && port < 65535 {
		rtcp = port + 1
	}
	return netip.AddrPortFrom(addr, uint16(port)), uint16(rtcp), true
}
