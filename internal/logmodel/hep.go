package logmodel

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
)

// EventName returns the event name for a HEP protocol type.
func EventName(protoType uint8) string {
	switch protoType {
	case hep.TypeSIP:
		return EventSIPMessage
	case hep.TypeRTCP:
		return EventHEPPrefix + "rtcp"
	case hep.TypeLog:
		return EventHEPPrefix + "log"
	case hep.TypeDNS:
		return EventHEPPrefix + "dns"
	case hep.TypeQoS34, hep.TypeQoS35:
		return EventHEPPrefix + "qos"
	}
	return EventHEPPrefix + strconv.Itoa(int(protoType))
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
func FromHEP(p *hep.Packet, payload []byte, compressed bool, received time.Time, lr plog.LogRecord) {
	FromHEPInterned(p, payload, compressed, received, lr, nil)
}

// FromHEPInterned is FromHEP taking the strings of addresses and node names
// from in (see Interner), for a reader that converts many packets.
func FromHEPInterned(p *hep.Packet, payload []byte, compressed bool, received time.Time, lr plog.LogRecord, in *Interner) {
	attrs := lr.Attributes()
	attrs.EnsureCapacity(24)

	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(received))
	if p.Has(hep.HasTimeSec) {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(p.Time()))
	} else {
		lr.SetTimestamp(pcommon.NewTimestampFromTime(received))
		attrs.PutBool(AttrHEPNoTimestamp, true)
	}
	protoType := hep.TypeSIP
	if p.Has(hep.HasProtoType) {
		protoType = p.ProtoType
	}
	lr.SetEventName(EventName(protoType))

	// The body is a string when it is text, so it reads well everywhere;
	// binary payloads stay bytes. Either way it is byte-exact.
	var body string
	if utf8.Valid(payload) {
		body = string(payload)
		lr.Body().SetStr(body)
	} else {
		lr.Body().SetEmptyBytes().FromRaw(payload)
	}

	if p.Has(hep.HasProtocol) {
		if name, ok := TransportName(p.Protocol); ok {
			attrs.PutStr(AttrNetworkTransport, name)
		} else {
			attrs.PutInt(AttrHEPIPProtocol, int64(p.Protocol))
		}
	}
	if p.Has(hep.HasSrcIP) {
		attrs.PutStr(AttrSourceAddress, in.Addr(p.SrcIP))
	}
	if p.Has(hep.HasDstIP) {
		attrs.PutStr(AttrDestinationAddress, in.Addr(p.DstIP))
	}
	family := familyOf(p)
	if p.Has(hep.HasFamily) && p.Family != family {
		attrs.PutInt(AttrHEPIPFamily, int64(p.Family))
	}
	if p.Has(hep.HasSrcIP) || p.Has(hep.HasDstIP) {
		if family == hep.FamilyIPv6 {
			attrs.PutStr(AttrNetworkType, "ipv6")
		} else {
			attrs.PutStr(AttrNetworkType, "ipv4")
		}
	}
	putInt(attrs, p.Has(hep.HasSrcPort), AttrSourcePort, int64(p.SrcPort))
	putInt(attrs, p.Has(hep.HasDstPort), AttrDestinationPort, int64(p.DstPort))

	attrs.PutInt(AttrHEPVersion, int64(p.Version))
	putInt(attrs, p.Has(hep.HasProtoType), AttrHEPProtocolType, int64(p.ProtoType))
	putInt(attrs, p.Has(hep.HasCaptureID), AttrHEPCaptureID, int64(p.CaptureID))
	putInt(attrs, p.Has(hep.HasKeepAlive), AttrHEPKeepAlive, int64(p.KeepAlive))
	putInt(attrs, p.Has(hep.HasVLAN), AttrHEPVLAN, int64(p.VLAN))
	putInt(attrs, p.Has(hep.HasEtherType), AttrHEPEtherType, int64(p.EtherType))
	putInt(attrs, p.Has(hep.HasTCPFlags), AttrHEPTCPFlags, int64(p.TCPFlags))
	putInt(attrs, p.Has(hep.HasIPTOS), AttrHEPIPTOS, int64(p.IPTOS))
	putInt(attrs, p.Has(hep.HasMOS), AttrHEPMOS, int64(p.MOS))
	putInt(attrs, p.Has(hep.HasRFactor), AttrHEPRFactor, int64(p.RFactor))
	putInt(attrs, p.Has(hep.HasJitter), AttrHEPJitter, int64(p.Jitter))
	putInt(attrs, p.Has(hep.HasTagType), AttrHEPTagType, int64(p.TagType))
	putStr(attrs, AttrHEPCorrelationID, p.CorrelationID)
	if p.NodeName != nil && utf8.Valid(p.NodeName) {
		attrs.PutStr(AttrHEPNodeName, in.Bytes(p.NodeName))
	} else {
		putStr(attrs, AttrHEPNodeName, p.NodeName)
	}
	putStr(attrs, AttrHEPGeoLocation, p.GeoLocation)
	putStr(attrs, AttrHEPTransactionType, p.TransactionType)
	putStr(attrs, AttrHEPPayloadJSONKeys, p.PayloadJSONKeys)
	putStr(attrs, AttrHEPTagsValues, p.TagsValues)
	putMAC(attrs, AttrHEPSrcMAC, p.SrcMAC)
	putMAC(attrs, AttrHEPDstMAC, p.DstMAC)
	if compressed {
		attrs.PutBool(AttrHEPPayloadCompressed, true)
	}
	extra := p.Extra
	if !compressed && p.Compressed != nil {
		// the body is the plain payload, so the compressed one travels as is
		extra = append(extra[:len(extra):len(extra)], hep.Chunk{Type: hep.ChunkCompressed, Data: p.Compressed})
	}
	if len(extra) > 0 {
		attrs.PutEmptyBytes(AttrHEPExtraChunks).FromRaw(hep.AppendChunks(nil, extra))
	}

	if protoType == hep.TypeSIP && body != "" {
		if s, err := sipmsg.Parse(body); err == nil {
			PutSIPSummary(attrs, &s)
		}
	}
}

// PutSIPSummary adds the sip.* attributes of a parsed message.
func PutSIPSummary(attrs pcommon.Map, s *sipmsg.Summary) {
	if s.IsRequest() {
		attrs.PutStr(AttrSIPMethod, s.Method)
		attrs.PutStr(AttrSIPRequestURI, s.RequestURI)
	} else {
		attrs.PutInt(AttrSIPStatusCode, int64(s.StatusCode))
	}
	if s.CallID != "" {
		attrs.PutStr(AttrSIPCallID, s.CallID)
	}
	if s.CSeqMethod != "" {
		attrs.PutStr(AttrSIPCSeqMethod, s.CSeqMethod)
		attrs.PutInt(AttrSIPCSeqNumber, int64(s.CSeqNumber))
	}
	if s.FromTag != "" {
		attrs.PutStr(AttrSIPFromTag, s.FromTag)
	}
	if s.ToTag != "" {
		attrs.PutStr(AttrSIPToTag, s.ToTag)
	}
	if s.ViaBranch != "" {
		attrs.PutStr(AttrSIPViaBranch, s.ViaBranch)
	}
	if s.UserAgent != "" {
		attrs.PutStr(AttrSIPUserAgent, s.UserAgent)
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
func ToHEP(lr plog.LogRecord, p *hep.Packet, scratch *bytes.Buffer) error {
	p.Reset()
	p.Version = 3
	scratch.Reset()
	attrs := lr.Attributes()

	if v, ok := attrs.Get(AttrHEPNoTimestamp); !ok || !v.Bool() {
		ts := lr.Timestamp()
		if ts == 0 {
			ts = lr.ObservedTimestamp()
		}
		if ts != 0 {
			p.SetTime(ts.AsTime())
		}
	}

	p.ProtoType = hep.TypeLog
	if lr.EventName() == EventSIPMessage {
		p.ProtoType = hep.TypeSIP
	}
	if v, ok := intAttr(attrs, AttrHEPProtocolType); ok {
		p.ProtoType = uint8(v)
	}
	p.Fields |= hep.HasProtoType

	if v, ok := attrs.Get(AttrNetworkTransport); ok {
		if proto, ok := transportProto(v.Str()); ok {
			p.Protocol = proto
			p.Fields |= hep.HasProtocol
		}
	}
	if v, ok := intAttr(attrs, AttrHEPIPProtocol); ok {
		p.Protocol = uint8(v)
		p.Fields |= hep.HasProtocol
	}
	if err := addrAttr(attrs, AttrSourceAddress, &p.SrcIP); err != nil {
		return err
	} else if p.SrcIP.IsValid() {
		p.Fields |= hep.HasSrcIP
	}
	if err := addrAttr(attrs, AttrDestinationAddress, &p.DstIP); err != nil {
		return err
	} else if p.DstIP.IsValid() {
		p.Fields |= hep.HasDstIP
	}
	if p.Has(hep.HasSrcIP) || p.Has(hep.HasDstIP) {
		p.Family = familyOf(p)
		p.Fields |= hep.HasFamily
	}
	if v, ok := intAttr(attrs, AttrHEPIPFamily); ok {
		p.Family = uint8(v)
		p.Fields |= hep.HasFamily
	}
	set16 := func(key string, f hep.Field, dst *uint16) {
		if v, ok := intAttr(attrs, key); ok {
			*dst = uint16(v)
			p.Fields |= f
		}
	}
	set8 := func(key string, f hep.Field, dst *uint8) {
		if v, ok := intAttr(attrs, key); ok {
			*dst = uint8(v)
			p.Fields |= f
		}
	}
	set32 := func(key string, f hep.Field, dst *uint32) {
		if v, ok := intAttr(attrs, key); ok {
			*dst = uint32(v)
			p.Fields |= f
		}
	}
	set16(AttrSourcePort, hep.HasSrcPort, &p.SrcPort)
	set16(AttrDestinationPort, hep.HasDstPort, &p.DstPort)
	set32(AttrHEPCaptureID, hep.HasCaptureID, &p.CaptureID)
	set16(AttrHEPKeepAlive, hep.HasKeepAlive, &p.KeepAlive)
	set16(AttrHEPVLAN, hep.HasVLAN, &p.VLAN)
	set16(AttrHEPEtherType, hep.HasEtherType, &p.EtherType)
	set8(AttrHEPTCPFlags, hep.HasTCPFlags, &p.TCPFlags)
	set8(AttrHEPIPTOS, hep.HasIPTOS, &p.IPTOS)
	set16(AttrHEPMOS, hep.HasMOS, &p.MOS)
	set16(AttrHEPRFactor, hep.HasRFactor, &p.RFactor)
	set32(AttrHEPJitter, hep.HasJitter, &p.Jitter)
	set16(AttrHEPTagType, hep.HasTagType, &p.TagType)

	p.CorrelationID = bytesAttr(attrs, AttrHEPCorrelationID)
	p.NodeName = bytesAttr(attrs, AttrHEPNodeName)
	p.GeoLocation = bytesAttr(attrs, AttrHEPGeoLocation)
	p.TransactionType = bytesAttr(attrs, AttrHEPTransactionType)
	p.PayloadJSONKeys = bytesAttr(attrs, AttrHEPPayloadJSONKeys)
	p.TagsValues = bytesAttr(attrs, AttrHEPTagsValues)
	var err error
	if p.SrcMAC, err = macAttr(attrs, AttrHEPSrcMAC); err != nil {
		return err
	}
	if p.DstMAC, err = macAttr(attrs, AttrHEPDstMAC); err != nil {
		return err
	}
	if extra := bytesAttr(attrs, AttrHEPExtraChunks); extra != nil {
		if p.Extra, err = hep.ParseChunks(p.Extra, extra); err != nil {
			return fmt.Errorf("logmodel: attribute %s: %w", AttrHEPExtraChunks, err)
		}
	}

	if _, fromHEP := attrs.Get(AttrHEPVersion); !fromHEP && p.CorrelationID == nil {
		// Homer files a record under a call only by chunk 0x11 = Call-ID.
		p.CorrelationID = bytesAttr(attrs, AttrSIPCallID)
	}

	payload := bodyBytes(lr.Body())
	if v, ok := attrs.Get(AttrHEPPayloadCompressed); ok && v.Bool() {
		if err := hep.Deflate(scratch, payload); err != nil {
			return err
		}
		p.Compressed = scratch.Bytes()
	} else {
		p.Payload = payload
	}
	return nil
}

func intAttr(attrs pcommon.Map, key string) (int64, bool) {
	v, ok := attrs.Get(key)
	if !ok {
		return 0, false
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), true
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func addrAttr(attrs pcommon.Map, key string, dst *netip.Addr) error {
	v, ok := attrs.Get(key)
	if !ok || v.Str() == "" {
		return nil
	}
	a, err := netip.ParseAddr(v.Str())
	if err != nil {
		return fmt.Errorf("logmodel: attribute %s: %w", key, err)
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
		return nil, fmt.Errorf("logmodel: attribute %s: %w", key, err)
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
