package rtpua

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/siphon-otel/siphon-otel/internal/mediaq"
)

// Codec is an audio payload format an endpoint can send: its payload
// type, RTP clock and the payload bytes of one packet of PTime.
type Codec struct {
	Name        string
	PayloadType uint8
	ClockRate   uint32
	FrameBytes  int    // payload of one 20 ms packet
	Silence     byte   // the byte that fills a frame of silence
	FMTP        string // an a=fmtp value, when the format has one
}

// The codecs an endpoint knows: the static narrowband ones whose frames
// are a fixed size (RFC 3551), all with an 8000 Hz RTP clock.
var (
	PCMU = Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000, FrameBytes: 160, Silence: 0xff}
	PCMA = Codec{Name: "PCMA", PayloadType: 8, ClockRate: 8000, FrameBytes: 160, Silence: 0xd5}
	// G729 frames are 10 bytes per 10 ms; annexb=no: no comfort noise, so
	// every packet is a full frame.
	G729 = Codec{Name: "G729", PayloadType: 18, ClockRate: 8000, FrameBytes: 20, FMTP: "annexb=no"}
)

var known = []Codec{PCMU, PCMA, G729}

// PTime is the packetisation interval: 20 ms, 50 packets a second.
const PTime = 20

// samples is the RTP timestamp advance of one packet.
func (c Codec) samples() uint32 { return c.ClockRate * PTime / 1000 }

// Remote is where an SDP says to send media and what it accepts.
type Remote struct {
	RTP, RTCP netip.AddrPort
	// Codecs are the formats of its audio m= line that this package can
	// send, in its order of preference, with its payload type numbers.
	Codecs []Codec
}

// maxSDP bounds the SDP bodies ParseSDP reads.
const maxSDP = 16 << 10

// ParseSDP reads the first audio stream of an SDP body: the connection
// address (media level over session level), the m= port, the RTCP port
// (a=rtcp, RFC 3605, else the RTP port + 1) and the codecs it offers
// that this package knows (by name and clock rate, with the SDP's
// payload type). A body without a usable audio stream is an error.
func ParseSDP(body []byte) (Remote, error) {
	if len(body) > maxSDP {
		return Remote{}, fmt.Errorf("rtpua: SDP of %d bytes (limit %d)", len(body), maxSDP)
	}
	var (
		session, media string // c= addresses
		port, rtcpPort int
		rtcpAddr       string
		inAudio, seen  bool
	)
	for rest := string(body); rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "m="):
			if seen {
				rest = "" // the first audio stream only
				continue
			}
			f := strings.Fields(line[2:])
			inAudio = len(f) >= 3 && f[0] == "audio"
			if inAudio {
				seen = true
				p, err := strconv.ParseUint(f[1], 10, 16)
				if err != nil || p == 0 {
					return Remote{}, fmt.Errorf("rtpua: SDP m= line %q: no port", line)
				}
				port = int(p)
			}
		case strings.HasPrefix(line, "c="):
			addr, err := connAddr(line[2:])
			if err != nil {
				return Remote{}, err
			}
			if seen && inAudio {
				media = addr
			} else if !seen {
				session = addr
			}
		case inAudio && strings.HasPrefix(line, "a=rtcp:"):
			// a=rtcp:<port> [IN IP4 <address>]
			f := strings.Fields(line[len("a=rtcp:"):])
			p, err := strconv.ParseUint(f[0], 10, 16)
			if err != nil || p == 0 {
				return Remote{}, fmt.Errorf("rtpua: SDP %q: no port", line)
			}
			rtcpPort = int(p)
			if len(f) == 4 {
				rtcpAddr = f[3]
			}
		}
	}
	if !seen {
		return Remote{}, errors.New("rtpua: SDP without an audio stream")
	}
	host := media
	if host == "" {
		host = session
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return Remote{}, fmt.Errorf("rtpua: SDP connection address %q: %w", host, err)
	}
	r := Remote{RTP: netip.AddrPortFrom(addr, uint16(port))}
	rtcp := addr
	if rtcpAddr != "" {
		if rtcp, err = netip.ParseAddr(rtcpAddr); err != nil {
			return Remote{}, fmt.Errorf("rtpua: SDP a=rtcp address %q: %w", rtcpAddr, err)
		}
	}
	if rtcpPort == 0 {
		rtcpPort = port + 1
	}
	r.RTCP = netip.AddrPortFrom(rtcp, uint16(rtcpPort))
	offered, _ := mediaq.SDPCodecs(string(body))
	for _, o := range offered {
		for _, k := range known {
			if strings.EqualFold(o.Name, k.Name) && o.ClockRate == k.ClockRate && o.PayloadType >= 0 {
				k.PayloadType = uint8(o.PayloadType)
				r.Codecs = append(r.Codecs, k)
			}
		}
	}
	if len(r.Codecs) == 0 {
		return Remote{}, fmt.Errorf("rtpua: SDP offers no codec of %v", known)
	}
	return r, nil
}

// connAddr reads "IN IP4 <address>" (or IP6).
func connAddr(v string) (string, error) {
	f := strings.Fields(v)
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return "", fmt.Errorf("rtpua: SDP c=%s: not IN IP4/IP6 <address>", v)
	}
	addr, _, _ := strings.Cut(f[2], "/") // a multicast TTL
	return addr, nil
}

// SDP is the body an endpoint listening on rtp offers or answers with:
// one audio stream of the codecs given, in order, with RTCP on the next
// port (said with a=rtcp too).
func SDP(rtp netip.AddrPort, sessionID uint64, codecs ...Codec) []byte {
	if len(codecs) == 0 {
		codecs = []Codec{PCMU}
	}
	ipv := "IP4"
	if rtp.Addr().Is6() {
		ipv = "IP6"
	}
	host := rtp.Addr().String()
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=siphon %d %d IN %s %s\r\ns=siphon\r\nc=IN %s %s\r\nt=0 0\r\nm=audio %d RTP/AVP",
		sessionID, sessionID, ipv, host, ipv, host, rtp.Port())
	for _, c := range codecs {
		fmt.Fprintf(&b, " %d", c.PayloadType)
	}
	b.WriteString("\r\n")
	for _, c := range codecs {
		fmt.Fprintf(&b, "a=rtpmap:%d %s/%d\r\n", c.PayloadType, c.Name, c.ClockRate)
		if c.FMTP != "" {
			fmt.Fprintf(&b, "a=fmtp:%d %s\r\n", c.PayloadType, c.FMTP)
		}
	}
	fmt.Fprintf(&b, "a=rtcp:%d\r\na=ptime:%d\r\na=sendrecv\r\n", rtp.Port()+1, PTime)
	return []byte(b.String())
}
