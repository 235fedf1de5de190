package heprecord

import (
	"bytes"
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
)

// EventName returns the event name for a HEP protocol type.
func EventName(protoType uint8) string {
	switch protoType {
	case hep.TypeSIP:
		return record.EventSIPMessage
	case hep.TypeRTCP:
		return record.EventHEPPrefix + "rtcp"
	case hep.TypeLog:
		return record.EventHEPPrefix + "log"
	case hep.TypeDNS:
		return record.EventHEPPrefix + "dns"
	case hep.TypeQoS34, hep.TypeQoS35:
		return record.EventHEPPrefix + "qos"
	}
	return record.EventHEPPrefix + strconv.Itoa(int(protoType))
}

// TransportName maps an IP protocol number to network.transport.
func TransportName(proto uint8) (string, bool) {
	switch proto {
	case hep.ProtoUDP:
		return "udp", true
	case hep.ProtoTCP:
		return "tcp", true
	case hep.ProtoSCTP:
		return "sctp", true
	}
	return "", false
}

func transportProto(name string) (uint8, bool) {
	switch name {
	case "udp":
		return hep.ProtoUDP, true
	case "tcp", "tls":
		return hep.ProtoTCP, true
	case "sctp":
		return hep.ProtoSCTP, true
	}
	return 0, false
}

// FromHEP fills lr, an empty log record, from p. payload is the packet's
// payload (p.Payload, or p.Compressed inflated by the caller, in which case
// compressed is true). received is when the packet arrived.
//
// A hep.rtcp record and a packet with a MOS chunk (0x20) get the media.*
// figures (internal/mediaq). The error is why they could not be read: a
// *mediaq.Error whose Reason a receiver counts (mediaq.ReasonOf). The
// record is complete either way; only its media.* attributes are missing.
func FromHEP(p *hep.Packet, payload []byte, compressed bool, received time.Time, lr plog.LogRecord) error {
	return FromHEPInterned(p, payload, compressed, received, lr, nil)
}

// FromHEPInterned is FromHEP taking the strings of addresses and node names
// from in (see Interner), for a reader that converts many packets.
func FromHEPInterned(p *hep.Packet, payload []byte, compressed bool, received time.Time, lr plog.LogRecord, in *Interner) error {
	_, err := fromHEP(p, payload, compressed, received, lr, in)
	return err
}

// fromHEP is FromHEPInterned; planned is the attribute count it sized the
// record's attribute array for (attrCount), which a test holds against
// what it then put.
func fromHEP(p *hep.Packet, payload []byte, compressed bool, received time.Time, lr plog.LogRecord, in *Interner) (planned int, err error) {
	protoType := hep.TypeSIP
	if p.Has(hep.HasProtoType) {
		protoType = p.ProtoType
	}
	// The body is a string when it is text, so it reads well everywhere;
	// binary payloads stay bytes. Either way it is byte-exact.
	var body string
	text := utf8.Valid(payload)
	if text {
		body = string(payload)
	}
	var sip *sipmsg.Summary
	if protoType == hep.TypeSIP && body != "" {
		if s, err := sipmsg.Parse(body); err == nil {
			sip = &s
		}
	}
	media := protoType == hep.TypeRTCP || p.Has(hep.HasMOS)
	planned = attrCount(p, compressed, sip, media)
	attrs := lr.Attributes()
	attrs.EnsureCapacity(planned)

	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(received))
	if p.Has(hep.HasTimeSec) {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(p.Time()))
	} else {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(received))
		attrs.PutBool(record.AttrHEPNoTimestamp, true)
	}
	lr.SetEventName(EventName(protoType))
	if text {
		lr.Body().SetStr(body)
	} else {
		lr.Body().SetEmptyBytes().FromRaw(payload)
	}

	if p.Has(hep.HasProtocol) {
		if name, ok := TransportName(p.Protocol); ok {
			attrs.PutStr(record.AttrNetworkTransport, name)
		} else {
			attrs.PutInt(record.AttrHEPIPProtocol, int64(p.Protocol))
		}
	}
	if p.Has(hep.HasSrcIP) {
		attrs.PutStr(record.AttrSourceAddress, in.Addr(p.SrcIP))
	}
	if p.Has(hep.HasDstIP) {
		attrs.PutStr(record.AttrDestinationAddress, in.Addr(p.DstIP))
	}
	family := familyOf(p)
	if p.Has(hep.HasFamily) && p.Family != family {
		attrs.PutInt(record.AttrHEPIPFamily, int64(p.Family))
	}
	if p.Has(hep.HasSrcIP) || p.Has(hep.HasDstIP) {
		if family == hep.FamilyIPv6 {
			attrs.PutStr(record.AttrNetworkType, "ipv6")
		} else {
			attrs.PutStr(record.AttrNetworkType, "ipv4")
		}
	}
	putInt(attrs, p.Has(hep.HasSrcPort), record.AttrSourcePort, int64(p.SrcPort))
	putInt(attrs, p.Has(hep.HasDstPort), record.AttrDestinationPort, int64(p.DstPort))

	attrs.PutInt(record.AttrHEPVersion, int64(p.Version))
	putInt(attrs, p.Has(hep.HasProtoType), record.AttrHEPProtocolType, int64(p.ProtoType))
	putInt(attrs, p.Has(hep.HasCaptureID), record.AttrHEPCaptureID, int64(p.CaptureID))
	putInt(attrs, p.Has(hep.HasKeepAlive), record.AttrHEPKeepAlive, int64(p.KeepAlive))
	putInt(attrs, p.Has(hep.HasVLAN), record.AttrHEPVLAN, int64(p.VLAN))
	putInt(attrs, p.Has(hep.HasEtherType), record.AttrHEPEtherType, int64(p.EtherType))
	putInt(attrs, p.Has(hep.HasTCPFlags), record.AttrHEPTCPFlags, int64(p.TCPFlags))
	putInt(attrs, p.Has(hep.HasIPTOS), record.AttrHEPIPTOS, int64(p.IPTOS))
	putInt(attrs, p.Has(hep.HasMOS), record.AttrHEPMOS, int64(p.MOS))
	putInt(attrs, p.Has(hep.HasRFactor), record.AttrHEPRFactor, int64(p.RFactor))
	putInt(attrs, p.Has(hep.HasJitter), record.AttrHEPJitter, int64(p.Jitter))
	putInt(attrs, p.Has(hep.HasTagType), record.AttrHEPTagType, int64(p.TagType))
	putStr(attrs, record.AttrHEPCorrelationID, p.CorrelationID)
	if p.NodeName != nil && utf8.Valid(p.NodeName) {
		attrs.PutStr(record.AttrHEPNodeName, in.Bytes(p.NodeName))
	} else {
		putStr(attrs, record.AttrHEPNodeName, p.NodeName)
	}
	putStr(attrs, record.AttrHEPGeoLocation, p.GeoLocation)
	putStr(attrs, record.AttrHEPTransactionType, p.TransactionType)
	putStr(attrs, record.AttrHEPPayloadJSONKeys, p.PayloadJSONKeys)
	putStr(attrs, record.AttrHEPTagsValues, p.TagsValues)
	putMAC(attrs, record.AttrHEPSrcMAC, p.SrcMAC)
	putMAC(attrs, record.AttrHEPDstMAC, p.DstMAC)
	if compressed {
		attrs.PutBool(record.AttrHEPPayloadCompressed, true)
	}
	extra := p.Extra
	if !compressed && p.Compressed != nil {
		// the body is the plain payload, so the compressed one travels as is
		extra = append(extra[:len(extra):len(extra)], hep.Chunk{Type: hep.ChunkCompressed, Data: p.Compressed})
	}
	if len(extra) > 0 {
		attrs.PutEmptyBytes(record.AttrHEPExtraChunks).FromRaw(hep.AppendChunks(nil, extra))
	}

	if sip != nil {
		PutSIPSummary(attrs, sip)
	}
	if media {
		arrival := received
		if p.Has(hep.HasTimeSec) {
			arrival = p.Time()
		}
		return planned, putMedia(attrs, p, protoType == hep.TypeRTCP, payload, arrival)
	}
	return planned, nil
}

// attrCount is how many attributes fromHEP puts for p (for a media record,
// at most how many) and those the pipeline adds, so that the record's
// attribute array is allocated once at its size: at 40 B an attribute, a
// fixed 24 took a 1 KiB array for the 18-19 of a SIP message (768 B), an
// eighth of what the HEP path allocated per packet (profiled).
func attrCount(p *hep.Packet, compressed bool, sip *sipmsg.Summary, media bool) int {
	const oneEach = hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort | hep.HasDstPort |
		hep.HasProtoType | hep.HasCaptureID | hep.HasKeepAlive | hep.HasVLAN | hep.HasEtherType |
		hep.HasTCPFlags | hep.HasIPTOS | hep.HasMOS | hep.HasRFactor | hep.HasJitter | hep.HasTagType
	n := 1 + bits.OnesCount32(uint32(p.Fields&oneEach)) // and hep.version
	if !p.Has(hep.HasTimeSec) {
		n++ // hep.no_timestamp
	}
	if p.Has(hep.HasFamily) && p.Family != familyOf(p) {
		n++ // hep.ip_family
	}
	if p.Has(hep.HasSrcIP) || p.Has(hep.HasDstIP) {
		n++ // network.type
	}
	for _, b := range [...][]byte{p.CorrelationID, p.NodeName, p.GeoLocation, p.TransactionType,
		p.PayloadJSONKeys, p.TagsValues, p.SrcMAC, p.DstMAC} {
		if b != nil {
			n++
		}
	}
	if compressed {
		n++ // hep.payload_compressed
	}
	if len(p.Extra) > 0 || !compressed && p.Compressed != nil {
		n++ // hep.extra_chunks
	}
	if sip != nil {
		n += sipAttrCount(sip) + record.AddedDownstream
	}
	if media {
		n += maxMediaAttrs
	}
	return n
}

// maxMediaAttrs bounds what putMedia adds: one of each media.* name it
// writes.
const maxMediaAttrs = 12

// sipAttrCount is how many attributes PutSIPSummary puts for s.
func sipAttrCount(s *sipmsg.Summary) int {
	n := 2 // a request's method and URI
	if !s.IsRequest() {
		n = 1 // a response's status code
		if s.CSeqMethod != "" {
			n++ // and its CSeq method as sip.request.method
		}
	}
	if s.CSeqMethod != "" {
		n += 2
	}
	for _, v := range [...]string{s.CallID, s.FromTag, s.ToTag, s.ViaBranch, s.UserAgent} {
		if v != "" {
			n++
		}
	}
	return n
}

// putMedia adds the media.* figures of an RTCP payload (when rtcp) and of
// the MOS chunk. arrival is the capture time, which the round-trip time
// from LSR/DLSR needs.
func putMedia(attrs pcommon.Map, p *hep.Packet, rtcp bool, payload []byte, arrival time.Time) error {
	var (
		chunkMOS float64
		hasMOS   bool
		chunkErr error
	)
	if p.Has(hep.HasMOS) {
		chunkMOS, hasMOS, chunkErr = mediaq.MOSFromHEP(p.MOS)
	}
	var (
		buf [2]mediaq.Stream
		rep = mediaq.Report{Streams: buf[:0]}
		err error
	)
	if rtcp {
		err = rep.ParseRTCPJSON(payload, mediaq.Options{Arrival: arrival})
	}
	if err == nil && len(rep.Streams) > 0 {
		st := &rep.Streams[0]
		attrs.PutStr(record.AttrMediaSource, rep.Source.String())
		attrs.PutInt(record.AttrMediaStreams, int64(len(rep.Streams)))
		if st.Has(mediaq.FigSSRC) {
			attrs.PutInt(record.AttrMediaSSRC, int64(st.SSRC))
		}
		if st.Has(mediaq.FigReporterSSRC) {
			attrs.PutInt(record.AttrMediaReporterSSRC, int64(st.ReporterSSRC))
		}
		if st.Has(mediaq.FigLossRatio) {
			attrs.PutDouble(record.AttrMediaPacketLossRatio, st.LossRatio)
		}
		if st.Has(mediaq.FigPacketsLost) {
			attrs.PutInt(record.AttrMediaPacketsLost, st.PacketsLost)
		}
		if st.Has(mediaq.FigJitter) {
			attrs.PutDouble(record.AttrMediaJitter, st.Jitter)
		}
		if st.Has(mediaq.FigRTT) {
			attrs.PutDouble(record.AttrMediaRTT, st.RTT)
		}
		// a MOS the sender gave (chunk 0x20) beats the E-model's
		estimated := st.Computed&mediaq.FigMOS != 0
		if st.Has(mediaq.FigRFactor) && !(hasMOS && st.Computed&mediaq.FigRFactor != 0) {
			attrs.PutDouble(record.AttrMediaRFactor, st.RFactor)
		}
		if !hasMOS && st.Has(mediaq.FigMOS) {
			attrs.PutDouble(record.AttrMediaMOS, st.MOS)
			attrs.PutStr(record.AttrMediaQualityClass, st.Class().String())
			if estimated {
				attrs.PutBool(record.AttrMediaEstimated, true)
			}
		}
	} else if hasMOS {
		attrs.PutStr(record.AttrMediaSource, mediaq.SourceHEPMOS.String())
	}
	if hasMOS {
		attrs.PutDouble(record.AttrMediaMOS, chunkMOS)
		attrs.PutStr(record.AttrMediaQualityClass, mediaq.ClassOf(chunkMOS).String())
	}
	if err != nil {
		return err
	}
	return chunkErr
}

// PutSIPSummary adds the SIP attributes of a parsed message. A response
// gets its CSeq method as sip.request.method, as the OpenSIPS opentelemetry
// module does, so that a method selects requests and their responses.
func PutSIPSummary(attrs pcommon.Map, s *sipmsg.Summary) {
	if s.IsRequest() {
		attrs.PutStr(record.AttrSIPRequestMethod, s.Method)
		attrs.PutStr(record.AttrSIPRequestURI, s.RequestURI)
	} else {
		attrs.PutInt(record.AttrSIPResponseStatusCode, int64(s.StatusCode))
		if s.CSeqMethod != "" {
			attrs.PutStr(record.AttrSIPRequestMethod, s.CSeqMethod)
		}
	}
	if s.CallID != "" {
		attrs.PutStr(record.AttrSIPCallID, s.CallID)
	}
	if s.CSeqMethod != "" {
		attrs.PutStr(record.AttrSIPCSeqMethod, s.CSeqMethod)
		attrs.PutInt(record.AttrSIPCSeqNumber, int64(s.CSeqNumber))
	}
	if s.FromTag != "" {
		attrs.PutStr(record.AttrSIPFromTag, s.FromTag)
	}
	if s.ToTag != "" {
		attrs.PutStr(record.AttrSIPToTag, s.ToTag)
	}
	if s.ViaBranch != "" {
		attrs.PutStr(record.AttrSIPViaBranch, s.ViaBranch)
	}
	if s.UserAgent != "" {
		attrs.PutStr(record.AttrUserAgentOriginal, s.UserAgent)
	}
}

func familyOf(p *hep.Packet) uint8 {
	if p.Has(hep.HasSrcIP) && p.SrcIP.Is6() || p.Has(hep.HasDstIP) && p.DstIP.Is6() {
		return hep.FamilyIPv6
	}
	return hep.FamilyIPv4
}

func putInt(attrs pcommon.Map, has bool, key string, v int64) {
	if has {
		attrs.PutInt(key, v)
	}
}

func putStr(attrs pcommon.Map, key string, v []byte) {
	if v == nil {
		return
	}
	if utf8.Valid(v) {
		attrs.PutStr(key, string(v))
	} else {
		attrs.PutEmptyBytes(key).FromRaw(v)
	}
}

// putMAC writes a MAC as text when it has a MAC's length, else as bytes.
func putMAC(attrs pcommon.Map, key string, v []byte) {
	switch len(v) {
	case 6, 8, 20:
		attrs.PutStr(key, net.HardwareAddr(v).String())
	default:
		if v != nil {
			attrs.PutEmptyBytes(key).FromRaw(v)
		}
	}
}

// ToHEP rebuilds into p (reset first) the HEP packet a log record was made
// from by FromHEP. Byte fields of p point into the record or into
// scratch, which is reused across calls; p is valid until the record or
// scratch changes. Records that did not come from HEP (a CDR, say) get
// what they have: addresses, ports, time, Call-ID as correlation id.
//
// A payload that came compressed (chunk 0x10, hep.payload_compressed) goes
// out compressed again when keepCompressed is set, which makes the round
// trip lossless; otherwise it goes plain in chunk 0x0f, the only payload
// chunk heplify-server (Homer's capture node) reads.
func ToHEP(lr plog.LogRecord, p *hep.Packet, scratch *bytes.Buffer, keepCompressed bool) error {
	p.Reset()
	p.Version = 3
	scratch.Reset()
	attrs := lr.Attributes()

	if v, ok := attrs.Get(record.AttrHEPNoTimestamp); !ok || !v.Bool() {
		ts := lr.Timestamp()
		if ts == 0 {
			ts = lr.ObservedTimestamp()
		}
		if ts != 0 {
			p.SetTime(ts.AsTime())
		}
	}

	p.ProtoType = hep.TypeLog
	if lr.EventName() == record.EventSIPMessage {
		p.ProtoType = hep.TypeSIP
	}
	if v, ok := record.Int(attrs, record.AttrHEPProtocolType); ok {
		p.ProtoType = uint8(v)
	}
	p.Fields |= hep.HasProtoType

	if v, ok := attrs.Get(record.AttrNetworkTransport); ok {
		if proto, ok := transportProto(v.Str()); ok {
			p.Protocol = proto
			p.Fields |= hep.HasProtocol
		}
	}
	if v, ok := record.Int(attrs, record.AttrHEPIPProtocol); ok {
		p.Protocol = uint8(v)
		p.Fields |= hep.HasProtocol
	}
	if err := addrAttr(attrs, record.AttrSourceAddress, &p.SrcIP); err != nil {
		return err
	} else if p.SrcIP.IsValid() {
		p.Fields |= hep.HasSrcIP
	}
	if err := addrAttr(attrs, record.AttrDestinationAddress, &p.DstIP); err != nil {
		return err
	} else if p.DstIP.IsValid() {
		p.Fields |= hep.HasDstIP
	}
	if p.Has(hep.HasSrcIP) || p.Has(hep.HasDstIP) {
		p.Family = familyOf(p)
		p.Fields |= hep.HasFamily
	}
	if v, ok := record.Int(attrs, record.AttrHEPIPFamily); ok {
		p.Family = uint8(v)
		p.Fields |= hep.HasFamily
	}
	set16 := func(key string, f hep.Field, dst *uint16) {
		if v, ok := record.Int(attrs, key); ok {
			*dst = uint16(v)
			p.Fields |= f
		}
	}
	set8 := func(key string, f hep.Field, dst *uint8) {
		if v, ok := record.Int(attrs, key); ok {
			*dst = uint8(v)
			p.Fields |= f
		}
	}
	set32 := func(key string, f hep.Field, dst *uint32) {
		if v, ok := record.Int(attrs, key); ok {
			*dst = uint32(v)
			p.Fields |= f
		}
	}
	set16(record.AttrSourcePort, hep.HasSrcPort, &p.SrcPort)
	set16(record.AttrDestinationPort, hep.HasDstPort, &p.DstPort)
	set32(record.AttrHEPCaptureID, hep.HasCaptureID, &p.CaptureID)
	set16(record.AttrHEPKeepAlive, hep.HasKeepAlive, &p.KeepAlive)
	set16(record.AttrHEPVLAN, hep.HasVLAN, &p.VLAN)
	set16(record.AttrHEPEtherType, hep.HasEtherType, &p.EtherType)
	set8(record.AttrHEPTCPFlags, hep.HasTCPFlags, &p.TCPFlags)
	set8(record.AttrHEPIPTOS, hep.HasIPTOS, &p.IPTOS)
	set16(record.AttrHEPMOS, hep.HasMOS, &p.MOS)
	set16(record.AttrHEPRFactor, hep.HasRFactor, &p.RFactor)
	set32(record.AttrHEPJitter, hep.HasJitter, &p.Jitter)
	set16(record.AttrHEPTagType, hep.HasTagType, &p.TagType)

	p.CorrelationID = bytesAttr(attrs, record.AttrHEPCorrelationID)
	p.NodeName = bytesAttr(attrs, record.AttrHEPNodeName)
	p.GeoLocation = bytesAttr(attrs, record.AttrHEPGeoLocation)
	p.TransactionType = bytesAttr(attrs, record.AttrHEPTransactionType)
	p.PayloadJSONKeys = bytesAttr(attrs, record.AttrHEPPayloadJSONKeys)
	p.TagsValues = bytesAttr(attrs, record.AttrHEPTagsValues)
	var err error
	if p.SrcMAC, err = macAttr(attrs, record.AttrHEPSrcMAC); err != nil {
		return err
	}
	if p.DstMAC, err = macAttr(attrs, record.AttrHEPDstMAC); err != nil {
		return err
	}
	if extra := bytesAttr(attrs, record.AttrHEPExtraChunks); extra != nil {
		if p.Extra, err = hep.ParseChunks(p.Extra, extra); err != nil {
			return fmt.Errorf("heprecord: attribute %s: %w", record.AttrHEPExtraChunks, err)
		}
	}

	if _, fromHEP := attrs.Get(record.AttrHEPVersion); !fromHEP && p.CorrelationID == nil {
		// Homer files a record under a call only by chunk 0x11 = Call-ID.
		p.CorrelationID = bytesAttr(attrs, record.AttrSIPCallID)
	}

	payload := bodyBytes(lr.Body())
	if v, ok := attrs.Get(record.AttrHEPPayloadCompressed); ok && v.Bool() && keepCompressed {
		if err := hep.Deflate(scratch, payload); err != nil {
			return err
		}
		p.Compressed = scratch.Bytes()
	} else {
		p.Payload = payload
	}
	return nil
}

func addrAttr(attrs pcommon.Map, key string, dst *netip.Addr) error {
	v, ok := attrs.Get(key)
	if !ok || v.Str() == "" {
		return nil
	}
	a, err := netip.ParseAddr(v.Str())
	if err != nil {
		return fmt.Errorf("heprecord: attribute %s: %w", key, err)
	}
	*dst = a.WithZone("")
	return nil
}

// bytesAttr returns a string or bytes attribute without copying; the
// result is only read.
func bytesAttr(attrs pcommon.Map, key string) []byte {
	v, ok := attrs.Get(key)
	if !ok {
		return nil
	}
	return bodyBytes(v)
}

func macAttr(attrs pcommon.Map, key string) ([]byte, error) {
	v, ok := attrs.Get(key)
	if !ok {
		return nil, nil
	}
	if v.Type() == pcommon.ValueTypeBytes {
		return v.Bytes().AsRaw(), nil
	}
	mac, err := net.ParseMAC(v.Str())
	if err != nil {
		return nil, fmt.Errorf("heprecord: attribute %s: %w", key, err)
	}
	return mac, nil
}

func bodyBytes(v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeBytes:
		return v.Bytes().AsRaw()
	case pcommon.ValueTypeStr:
		s := v.Str()
		if s == "" {
			return []byte{}
		}
		// read-only view: the encoder copies it into the packet
		return unsafe.Slice(unsafe.StringData(s), len(s))
	case pcommon.ValueTypeEmpty:
		return nil
	}
	return []byte(v.AsString())
}
