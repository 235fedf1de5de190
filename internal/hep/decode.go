package hep

import (
	"crypto/subtle"
	"encoding/binary"
	"net/netip"
	"time"
)

// Decode parses one HEP packet of any version into p, which is reset first.
// HEP v1 and v2 are recognised by their first byte; they exist only as UDP
// datagrams. The packet must be exactly one HEP packet: trailing bytes are a
// length mismatch.
func (p *Packet) Decode(b []byte) error {
	p.Reset()
	if len(b) < 4 {
		return errAt(ErrShort, len(b))
	}
	if b[0] == 'H' && b[1] == 'E' && b[2] == 'P' && b[3] == '3' {
		return p.decode3(b)
	}
	if b[0] == 1 || b[0] == 2 {
		return p.decode12(b)
	}
	return errAt(ErrBadMagic, 0)
}

func (p *Packet) decode3(b []byte) error {
	if len(b) < HeaderLen {
		return errAt(ErrShort, len(b))
	}
	total := int(binary.BigEndian.Uint16(b[4:6]))
	if total != len(b) {
		return errAt(ErrLengthMismatch, 4)
	}
	p.Version = 3
	for off := HeaderLen; off < total; {
		vendor, typ, data, next, err := nextChunk(b, off)
		if err != nil {
			return err
		}
		if typ == ChunkAuthKey {
			p.addAuthKey(data)
		} else if vendor != VendorGeneric || !p.setChunk(typ, data) {
			if vendor == VendorGeneric {
				if want, fixed := fixedSize(typ); fixed && len(data) != want {
					return errChunk(ErrChunkSize, off, vendor, typ)
				}
			}
			p.Extra = append(p.Extra, Chunk{Vendor: vendor, Type: typ, Data: data})
		}
		off = next
	}
	if p.Has(HasTimeUsec) && p.TimeUsec >= 1_000_000 {
		return errAt(ErrMicroseconds, 0)
	}
	return nil
}

// nextChunk reads the chunk at off. The data slice is capped so that
// appending to it can never scribble over the next chunk.
func nextChunk(b []byte, off int) (vendor, typ uint16, data []byte, next int, err error) {
	if len(b)-off < ChunkHeaderLen {
		return 0, 0, nil, 0, errAt(ErrChunkOverrun, off)
	}
	vendor = binary.BigEndian.Uint16(b[off:])
	typ = binary.BigEndian.Uint16(b[off+2:])
	clen := int(binary.BigEndian.Uint16(b[off+4:]))
	if clen < ChunkHeaderLen {
		return 0, 0, nil, 0, errChunk(ErrChunkZeroLen, off, vendor, typ)
	}
	if clen > len(b)-off {
		return 0, 0, nil, 0, errChunk(ErrChunkOverrun, off, vendor, typ)
	}
	return vendor, typ, b[off+ChunkHeaderLen : off+clen : off+clen], off + clen, nil
}

// ParseChunks appends the chunks of b, a bare sequence of chunks without a
// packet header, to dst. No chunk is interpreted.
func ParseChunks(dst []Chunk, b []byte) ([]Chunk, error) {
	for off := 0; off < len(b); {
		vendor, typ, data, next, err := nextChunk(b, off)
		if err != nil {
			return dst, err
		}
		dst = append(dst, Chunk{Vendor: vendor, Type: typ, Data: data})
		off = next
	}
	return dst, nil
}

// fixedSize returns the payload size of a generic chunk type with a fixed
// width.
func fixedSize(typ uint16) (int, bool) {
	switch typ {
	case ChunkIPFamily, ChunkIPProtocol, ChunkProtoType, ChunkTCPFlags, ChunkIPTOS:
		return 1, true
	case ChunkSrcPort, ChunkDstPort, ChunkKeepAlive, ChunkVLAN, ChunkEtherType, ChunkMOS, ChunkRFactor, ChunkTagType:
		return 2, true
	case ChunkIPv4Src, ChunkIPv4Dst, ChunkTimeSec, ChunkTimeUsec, ChunkCaptureID, ChunkJitter:
		return 4, true
	case ChunkIPv6Src, ChunkIPv6Dst:
		return 16, true
	}
	return 0, false
}

// setChunk stores a generic chunk in its field. It returns false when the
// chunk has no field, has the wrong size, or repeats a chunk already seen;
// the caller then keeps it as extra or reports the size error.
func (p *Packet) setChunk(typ uint16, d []byte) bool {
	if want, fixed := fixedSize(typ); fixed && len(d) != want {
		return false
	}
	switch typ {
	case ChunkIPFamily:
		return p.set8(HasFamily, &p.Family, d)
	case ChunkIPProtocol:
		return p.set8(HasProtocol, &p.Protocol, d)
	case ChunkIPv4Src, ChunkIPv6Src:
		if p.Has(HasSrcIP) {
			return false
		}
		p.SrcIP = addrFrom(d)
		p.Fields |= HasSrcIP
	case ChunkIPv4Dst, ChunkIPv6Dst:
		if p.Has(HasDstIP) {
			return false
		}
		p.DstIP = addrFrom(d)
		p.Fields |= HasDstIP
	case ChunkSrcPort:
		return p.set16(HasSrcPort, &p.SrcPort, d)
	case ChunkDstPort:
		return p.set16(HasDstPort, &p.DstPort, d)
	case ChunkTimeSec:
		return p.set32(HasTimeSec, &p.TimeSec, d)
	case ChunkTimeUsec:
		return p.set32(HasTimeUsec, &p.TimeUsec, d)
	case ChunkProtoType:
		return p.set8(HasProtoType, &p.ProtoType, d)
	case ChunkCaptureID:
		return p.set32(HasCaptureID, &p.CaptureID, d)
	case ChunkKeepAlive:
		return p.set16(HasKeepAlive, &p.KeepAlive, d)
	case ChunkVLAN:
		return p.set16(HasVLAN, &p.VLAN, d)
	case ChunkEtherType:
		return p.set16(HasEtherType, &p.EtherType, d)
	case ChunkTCPFlags:
		return p.set8(HasTCPFlags, &p.TCPFlags, d)
	case ChunkIPTOS:
		return p.set8(HasIPTOS, &p.IPTOS, d)
	case ChunkMOS:
		return p.set16(HasMOS, &p.MOS, d)
	case ChunkRFactor:
		return p.set16(HasRFactor, &p.RFactor, d)
	case ChunkJitter:
		return p.set32(HasJitter, &p.Jitter, d)
	case ChunkTagType:
		return p.set16(HasTagType, &p.TagType, d)
	case ChunkPayload:
		return setBytes(&p.Payload, d)
	case ChunkCompressed:
		return setBytes(&p.Compressed, d)
	case ChunkCorrelationID:
		return setBytes(&p.CorrelationID, d)
	case ChunkNodeName:
		return setBytes(&p.NodeName, d)
	case ChunkSrcMAC:
		return setBytes(&p.SrcMAC, d)
	case ChunkDstMAC:
		return setBytes(&p.DstMAC, d)
	case ChunkGeoLocation:
		return setBytes(&p.GeoLocation, d)
	case ChunkTransactionTyp:
		return setBytes(&p.TransactionType, d)
	case ChunkPayloadJSONKeys:
		return setBytes(&p.PayloadJSONKeys, d)
	case ChunkTagsValues:
		return setBytes(&p.TagsValues, d)
	default:
		return false
	}
	return true
}

// addAuthKey takes one copy of chunk 0x0e, of any vendor: heplify-server
// reads a chunk by its type alone, so a vendor's 0x0e is a key there too.
// The first copy is AuthKey; the others are only counted, and compared with
// it (in constant time, like the check of the configured key), so that none
// is kept where an encoder could write it out again.
func (p *Packet) addAuthKey(d []byte) {
	if p.AuthKey == nil {
		p.AuthKey = d
		return
	}
	p.moreAuthKeys++
	if subtle.ConstantTimeCompare(p.AuthKey, d) != 1 {
		p.authKeysDiffer = true
	}
}

// AuthKeyCount returns how many copies of chunk 0x0e the packet carried.
func (p *Packet) AuthKeyCount() int {
	if p.AuthKey == nil {
		return 0
	}
	return 1 + int(p.moreAuthKeys)
}

// AuthKeyIs reports whether the packet carried chunk 0x0e and every copy
// of it equals key, compared in constant time. Every copy, not the first:
// readers disagree on which copy counts (heplify-server keeps the last),
// so a packet whose copies differ proves nothing.
func (p *Packet) AuthKeyIs(key []byte) bool {
	return p.AuthKey != nil && !p.authKeysDiffer && subtle.ConstantTimeCompare(p.AuthKey, key) == 1
}

func (p *Packet) set8(f Field, dst *uint8, d []byte) bool {
	if p.Fields&f != 0 {
		return false
	}
	*dst = d[0]
	p.Fields |= f
	return true
}

func (p *Packet) set16(f Field, dst *uint16, d []byte) bool {
	if p.Fields&f != 0 {
		return false
	}
	*dst = binary.BigEndian.Uint16(d)
	p.Fields |= f
	return true
}

func (p *Packet) set32(f Field, dst *uint32, d []byte) bool {
	if p.Fields&f != 0 {
		return false
	}
	*dst = binary.BigEndian.Uint32(d)
	p.Fields |= f
	return true
}

func setBytes(dst *[]byte, d []byte) bool {
	if *dst != nil {
		return false
	}
	*dst = d
	return true
}

func addrFrom(d []byte) netip.Addr {
	if len(d) == 4 {
		return netip.AddrFrom4([4]byte(d))
	}
	return netip.AddrFrom16([16]byte(d))
}

// decode12 parses HEP v1 and v2. Their header is
//
//	uint8 version, uint8 header length, uint8 family, uint8 protocol,
//	uint16 src port, uint16 dst port (network order), src addr, dst addr
//
// and v2 follows it with a struct of uint32 seconds, uint32 microseconds and
// uint16 capture id (plus 2 bytes of padding) in the sender's byte order,
// which is little-endian for every sender in practice (x86, ARM).
func (p *Packet) decode12(b []byte) error {
	const fixed = 8
	if len(b) < fixed {
		return errAt(ErrShort, len(b))
	}
	version, hlen, family := b[0], int(b[1]), b[2]
	var alen int
	switch family {
	case FamilyIPv4:
		alen = 4
	case FamilyIPv6:
		alen = 16
	default:
		return errAt(ErrBadHeader, 2)
	}
	if hlen != fixed+2*alen {
		return errAt(ErrBadHeader, 1)
	}
	if len(b) < hlen {
		return errAt(ErrShort, len(b))
	}
	p.Version = version
	p.Family = family
	p.Protocol = b[3]
	p.SrcPort = binary.BigEndian.Uint16(b[4:])
	p.DstPort = binary.BigEndian.Uint16(b[6:])
	p.SrcIP = addrFrom(b[fixed : fixed+alen])
	p.DstIP = addrFrom(b[fixed+alen : hlen])
	p.Fields = HasFamily | HasProtocol | HasSrcIP | HasDstIP | HasSrcPort | HasDstPort
	off := hlen
	if version == 2 {
		const timeHdr = 12
		if len(b) < off+timeHdr {
			return errAt(ErrShort, len(b))
		}
		p.TimeSec = binary.LittleEndian.Uint32(b[off:])
		p.TimeUsec = binary.LittleEndian.Uint32(b[off+4:])
		p.CaptureID = uint32(binary.LittleEndian.Uint16(b[off+8:]))
		p.Fields |= HasTimeSec | HasTimeUsec | HasCaptureID
		if p.TimeUsec >= 1_000_000 {
			return errAt(ErrMicroseconds, off+4)
		}
		off += timeHdr
	}
	// v1/v2 carry SIP only.
	p.ProtoType = TypeSIP
	p.Fields |= HasProtoType
	p.Payload = b[off:len(b):len(b)]
	return nil
}

// Time returns the capture time, or the zero Time when the packet carried
// no seconds.
func (p *Packet) Time() time.Time {
	if !p.Has(HasTimeSec) {
		return time.Time{}
	}
	return time.Unix(int64(p.TimeSec), int64(p.TimeUsec)*1000)
}

// SetTime sets the seconds and microseconds chunks from t.
func (p *Packet) SetTime(t time.Time) {
	p.TimeSec = uint32(t.Unix())
	p.TimeUsec = uint32(t.Nanosecond() / 1000)
	p.Fields |= HasTimeSec | HasTimeUsec
}
