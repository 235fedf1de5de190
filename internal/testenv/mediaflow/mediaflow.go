// Package mediaflow builds the HEP packets of a call with media-quality
// reports, for the tests of the media metrics: the SIP of a call whose
// media RTPEngine anchors (the SDP of the real capture in
// internal/testdata/media/rtpengine-rtcp-hep.hex: caller A on
// 127.0.0.1:22400, RTPEngine's ports 22310 towards B and 22328 towards A,
// callee B on 22410), the RTCP rtpengine sent for that call (the capture),
// the same reports as A would send them about B's stream, an RFC 6035
// PUBLISH (the RFC's example session report, placed on the call's
// loopback endpoints) and BYEs carrying the vendors' X-RTP-Stat headers
// (internal/testdata/media/rtp-stat.txt). Every address is on loopback.
//
// Packets go to a real hep receiver over a socket (Packet.AppendV3), or
// become records in process (Logs) exactly as the receiver makes them.
package mediaflow

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

// The capture's call and media endpoints.
const (
	CaptureCallID = "media-sample-1@127.0.0.1"
	MediaAddr     = "127.0.0.1"
	PortA         = 22400 // caller A's RTP (RTCP +1)
	PortEngineB   = 22310 // RTPEngine's towards B, in the offer B gets
	PortEngineA   = 22328 // RTPEngine's towards A, in the answer A gets
	PortB         = 22410 // callee B's RTP
	// SSRCA is A's stream, which B reports on in the capture; SSRCB is B's.
	SSRCA = 0x1a2b3c4d
	SSRCB = 0x5e6f7081
)

// The SIP addresses of caller, proxy and callee.
const (
	SIPA = "127.0.0.11"
	SIPP = "127.0.0.10"
	SIPB = "127.0.0.12"
)

// Call is one call through a proxy that anchors its media in RTPEngine.
type Call struct {
	T      testing.TB
	CallID string
	// Codec is the SDP's first format: payload type and rtpmap
	// ("18 G729/8000"); empty: "0 PCMU/8000".
	Codec string
	// Direct: the SDP is passed through (no RTPEngine): A and B see each
	// other's endpoints.
	Direct  bool
	FromTag string
	ToTag   string
	// CorrelationID, when set, goes on the SIP records (Logs) as the
	// sip_correlation processor writes it.
	CorrelationID string
}

// New returns a call of callID.
func New(t testing.TB, callID string) *Call {
	return &Call{T: t, CallID: callID, FromTag: "fa-" + callID, ToTag: "tb-" + callID}
}

// CaptureStart is the time of the capture's first RTCP packet; the SIP of a
// call is placed before it.
func CaptureStart(t testing.TB) time.Time { return capture(t)[0].Time() }

func capture(t testing.TB) []hep.Packet {
	t.Helper()
	var pkts []hep.Packet
	for _, b := range fixture.MediaHex("rtpengine-rtcp-hep.hex") {
		var p hep.Packet
		if err := p.Decode(b); err != nil {
			t.Fatalf("mediaflow: capture: %v", err)
		}
		pkts = append(pkts, p)
	}
	return pkts
}

// SDP is the body a party offers or answers with: its media on port.
func (c *Call) SDP(port int) string {
	codec := c.Codec
	if codec == "" {
		codec = "0 PCMU/8000"
	}
	pt, _, _ := strings.Cut(codec, " ")
	return "v=0\r\no=- 1 1 IN IP4 " + MediaAddr + "\r\ns=-\r\nc=IN IP4 " + MediaAddr + "\r\nt=0 0\r\n" +
		fmt.Sprintf("m=audio %d RTP/AVP %s 101\r\n", port, pt) +
		"a=rtpmap:" + codec + "\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
}

// sip is one message; a request when code is 0.
func (c *Call) sip(method string, code int, cseq int, hop string, toTag, headers, body string) string {
	var b strings.Builder
	if code == 0 {
		fmt.Fprintf(&b, "%s sip:bob@%s SIP/2.0\r\n", method, SIPB)
	} else {
		fmt.Fprintf(&b, "SIP/2.0 %d Reason\r\n", code)
	}
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s:5060;branch=z9hG4bK-%s-%s-%d-%s\r\n", SIPP, c.CallID, hop, cseq, method)
	to := "<sip:bob@" + SIPB + ">"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	fmt.Fprintf(&b, "From: <sip:alice@%s>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n", SIPA, c.FromTag, to, c.CallID, cseq, method)
	b.WriteString(headers)
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// calleeSIP is a message of the callee's side of the dialog (From and To
// swapped): a request when code is 0.
func (c *Call) calleeSIP(method string, code int, cseq int, headers string) string {
	var b strings.Builder
	if code == 0 {
		fmt.Fprintf(&b, "%s sip:alice@%s SIP/2.0\r\n", method, SIPA)
	} else {
		fmt.Fprintf(&b, "SIP/2.0 %d OK\r\n", code)
	}
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s:5060;branch=z9hG4bK-%s-b-%d-%s\r\n", SIPB, c.CallID, cseq, method)
	fmt.Fprintf(&b, "From: <sip:bob@%s>;tag=%s\r\nTo: <sip:alice@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n",
		SIPB, c.ToTag, SIPA, c.FromTag, c.CallID, cseq, method)
	b.WriteString(headers)
	fmt.Fprintf(&b, "Content-Length: 0\r\n\r\n")
	return b.String()
}

// Packet is a HEP packet of the call sent at at from src to dst (port
// 5060 for SIP).
func (c *Call) packet(at time.Time, src, dst string, msg string) hep.Packet {
	p := hep.Packet{Version: 3, Family: hep.FamilyIPv4, Protocol: hep.ProtoUDP,
		SrcIP: netip.MustParseAddr(src), DstIP: netip.MustParseAddr(dst), SrcPort: 5060, DstPort: 5060,
		ProtoType: hep.TypeSIP, CaptureID: 2001, Payload: []byte(msg), CorrelationID: []byte(c.CallID),
		Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort |
			hep.HasDstPort | hep.HasTimeSec | hep.HasTimeUsec | hep.HasProtoType | hep.HasCaptureID}
	p.SetTime(at)
	return p
}

// Setup is the call's INVITE and 200 on both hops and the ACKs, the last
// message at before CaptureStart: A offers 22400, B gets RTPEngine's
// 22310 (or 22400 when Direct), B answers 22410, A gets RTPEngine's 22328
// (or 22410).
func (c *Call) Setup(before time.Duration) []hep.Packet {
	at := CaptureStart(c.T).Add(-before)
	offerB, answerA := PortEngineB, PortEngineA
	if c.Direct {
		offerB, answerA = PortA, PortB
	}
	contact := "Contact: <sip:bob@" + SIPB + ":5060>\r\n"
	return []hep.Packet{
		c.packet(at.Add(-300*time.Millisecond), SIPA, SIPP, c.sip("INVITE", 0, 1, "a", "", "", c.SDP(PortA))),
		c.packet(at.Add(-299*time.Millisecond), SIPP, SIPB, c.sip("INVITE", 0, 1, "b", "", "", c.SDP(offerB))),
		c.packet(at.Add(-200*time.Millisecond), SIPB, SIPP, c.sip("INVITE", 180, 1, "b", c.ToTag, "", "")),
		c.packet(at.Add(-20*time.Millisecond), SIPB, SIPP, c.sip("INVITE", 200, 1, "b", c.ToTag, contact, c.SDP(PortB))),
		c.packet(at.Add(-19*time.Millisecond), SIPP, SIPA, c.sip("INVITE", 200, 1, "a", c.ToTag, contact, c.SDP(answerA))),
		c.packet(at.Add(-10*time.Millisecond), SIPA, SIPP, c.sip("ACK", 0, 1, "a", c.ToTag, "", "")),
		c.packet(at, SIPP, SIPB, c.sip("ACK", 0, 1, "b", c.ToTag, "", "")),
	}
}

// Bye ends the call after the capture's last report plus after: the
// caller's (or the callee's) BYE through the proxy and the 200s; header,
// when set, is an end-of-call statistics header line ("X-RTP-Stat: ...")
// on the BYE the sender sends, and reply one on its 200.
func (c *Call) Bye(after time.Duration, fromCaller bool, header, reply string) []hep.Packet {
	pkts := capture(c.T)
	at := pkts[len(pkts)-1].Time().Add(after)
	line := func(h string) string {
		if h == "" {
			return ""
		}
		return h + "\r\n"
	}
	if fromCaller {
		return []hep.Packet{
			c.packet(at, SIPA, SIPP, c.sip("BYE", 0, 2, "a", c.ToTag, line(header), "")),
			c.packet(at.Add(time.Millisecond), SIPP, SIPB, c.sip("BYE", 0, 2, "b", c.ToTag, line(header), "")),
			c.packet(at.Add(20*time.Millisecond), SIPB, SIPP, c.sip("BYE", 200, 2, "b", c.ToTag, line(reply), "")),
			c.packet(at.Add(21*time.Millisecond), SIPP, SIPA, c.sip("BYE", 200, 2, "a", c.ToTag, line(reply), "")),
		}
	}
	return []hep.Packet{
		c.packet(at, SIPB, SIPP, c.calleeSIP("BYE", 0, 1, line(header))),
		c.packet(at.Add(time.Millisecond), SIPP, SIPA, c.calleeSIP("BYE", 0, 1, line(header))),
		c.packet(at.Add(20*time.Millisecond), SIPA, SIPP, c.calleeSIP("BYE", 200, 1, line(reply))),
		c.packet(at.Add(21*time.Millisecond), SIPP, SIPB, c.calleeSIP("BYE", 200, 1, line(reply))),
	}
}

// RTCP is the capture's packets, as this call's (chunk 0x11): A's SR
// without report blocks, B's RR and SR about A's stream, twice, 16 s
// apart.
func (c *Call) RTCP() []hep.Packet {
	pkts := capture(c.T)
	for i := range pkts {
		pkts[i].CorrelationID = []byte(c.CallID)
	}
	return pkts
}

// RTCPFromA is B's reports of the capture as A sends them about B's
// stream: from A's RTCP port to RTPEngine's towards A, the SSRCs swapped,
// with fractionLost (1/256) and iaJitter (RTP timestamp units) for the
// capture's 13 and 37, so that the two directions differ.
func (c *Call) RTCPFromA(fractionLost, iaJitter int) []hep.Packet {
	var out []hep.Packet
	for _, p := range c.RTCP() {
		if p.SrcPort != PortB+1 {
			continue
		}
		body := string(p.Payload)
		body = strings.ReplaceAll(body, fmt.Sprint(SSRCA), "A-SSRC")
		body = strings.ReplaceAll(body, fmt.Sprint(SSRCB), fmt.Sprint(SSRCA))
		body = strings.ReplaceAll(body, "A-SSRC", fmt.Sprint(SSRCB))
		body = strings.Replace(body, `"fraction_lost":13`, fmt.Sprintf(`"fraction_lost":%d`, fractionLost), 1)
		body = strings.Replace(body, `"ia_jitter":37`, fmt.Sprintf(`"ia_jitter":%d`, iaJitter), 1)
		p.Payload = []byte(body)
		p.SrcPort, p.DstPort = PortA+1, PortEngineA+1
		out = append(out, p)
	}
	return out
}

// VQReport is RFC 6035's example session report (section 5.1,
// internal/testdata/media/vq/rfc6035-session.txt) of this call, sent by
// the caller: its CallID this call's, LocalAddr A's endpoint, RemoteAddr
// RTPEngine's towards A, the SSRCs A's and B's. Its figures are the RFC's:
// LocalMetrics (what A received) NLR 5 %, IAJ 2 ms, RTD 200 ms, MOS-CQ
// 4.0; RemoteMetrics (what the far end received) the same but MOS-CQ 4.3.
func (c *Call) VQReport() string {
	body := string(fixture.Media("vq/rfc6035-session.txt"))
	for _, r := range [][2]string{
		{"CallID: 6dg37f1890463", "CallID: " + c.CallID},
		{"IP=10.10.1.100 PORT=5000 SSRC=1a3b5c7d", fmt.Sprintf("IP=%s PORT=%d SSRC=%x", MediaAddr, PortA, SSRCA)},
		{"IP=11.1.1.150 PORT=5002 SSRC=0x2468abcd", fmt.Sprintf("IP=%s PORT=%d SSRC=0x%x", MediaAddr, PortEngineA, SSRCB)},
	} {
		if !strings.Contains(body, r[0]) {
			c.T.Fatalf("mediaflow: the RFC 6035 sample has no %q", r[0])
		}
		body = strings.Replace(body, r[0], r[1], 1)
	}
	return body
}

// Publish is the caller's PUBLISH of body (RFC 6035 section 4: Event
// vq-rtcpxr, its own dialog) to the proxy, after the capture's last
// report plus after.
func (c *Call) Publish(after time.Duration, body string) hep.Packet {
	pkts := capture(c.T)
	at := pkts[len(pkts)-1].Time().Add(after)
	msg := fmt.Sprintf("PUBLISH sip:collector@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:5060;branch=z9hG4bK-pub-%s\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:alice@%s>;tag=pub-%s\r\nTo: <sip:collector@%s>\r\nCall-ID: pub-%s\r\n"+
		"CSeq: 1 PUBLISH\r\nEvent: vq-rtcpxr\r\nContent-Type: application/vq-rtcpxr\r\nContent-Length: %d\r\n\r\n%s",
		SIPP, SIPA, c.CallID, SIPA, c.CallID, SIPP, c.CallID, len(body), body)
	p := c.packet(at, SIPA, SIPP, msg)
	p.CorrelationID = []byte("pub-" + c.CallID)
	return p
}

// RTPStat returns the vendors' published end-of-call headers
// (internal/testdata/media/rtp-stat.txt) whose line starts with prefix,
// e.g. "X-RTP-Stat: PS=1234,".
func RTPStat(t testing.TB, prefix string) string {
	for _, l := range fixture.MediaLines("rtp-stat.txt") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("mediaflow: no rtp-stat.txt line starts with %q", prefix)
	return ""
}

// Logs turns packets into the records the hep receiver makes of them
// (encoded as HEP3 and decoded again), under one resource whose node is
// node; SIP records get the call's correlation id when it has one.
func (c *Call) Logs(node string, pkts ...hep.Packet) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(record.AttrServiceName, record.DefaultServiceName)
	rl.Resource().Attributes().PutStr(record.AttrServiceInstanceID, node)
	c.Append(rl.ScopeLogs().AppendEmpty().LogRecords(), pkts...)
	return ld
}

// Append appends the records of packets to lrs.
func (c *Call) Append(lrs plog.LogRecordSlice, pkts ...hep.Packet) {
	c.T.Helper()
	for _, p := range pkts {
		wire := Wire(c.T, p)
		var got hep.Packet
		if err := got.Decode(wire); err != nil {
			c.T.Fatalf("mediaflow: decode: %v", err)
		}
		lr := lrs.AppendEmpty()
		// an unreadable media report is an error the receiver counts; the
		// record goes on without media.* attributes, as here
		_ = heprecord.FromHEP(&got, got.Payload, false, got.Time(), lr)
		if c.CorrelationID != "" && lr.EventName() == record.EventSIPMessage && !bytes.HasPrefix(got.CorrelationID, []byte("pub-")) {
			lr.Attributes().PutStr(record.AttrSIPCorrelationID, c.CorrelationID)
		}
	}
}

// Wire encodes a packet as HEP3.
func Wire(t testing.TB, p hep.Packet) []byte {
	t.Helper()
	wire, err := p.AppendV3(nil)
	if err != nil {
		t.Fatalf("mediaflow: encode: %v", err)
	}
	return wire
}
