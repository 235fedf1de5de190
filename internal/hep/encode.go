package hep

import (
	"encoding/binary"
)

// Size returns the encoded HEP v3 size of p, or ErrOversized when it would
// not fit the 16-bit length field.
func (p *Packet) Size() (int, error) {
	n := HeaderLen
	add := func(payload int) { n += ChunkHeaderLen + payload }
	for _, s := range p.intChunks() {
		if p.Fields&s.f != 0 {
			add(s.size)
		}
	}
	if p.Has(HasSrcIP) {
		add(addrLen(p))
	}
	if p.Has(HasDstIP) {
		add(addrLenDst(p))
	}
	for _, b := range p.byteChunks() {
		if b.data != nil {
			add(len(b.data))
		}
	}
	n += chunksLen(p.Extra)
	if n > MaxPacketLen {
		return n, errAt(ErrOversized, MaxPacketLen)
	}
	return n, nil
}

func addrLen(p *Packet) int {
	if p.SrcIP.Is4() {
		return 4
	}
	return 16
}

func addrLenDst(p *Packet) int {
	if p.DstIP.Is4() {
		return 4
	}
	return 16
}

type intChunk struct {
	f    Field
	typ  uint16
	size int
	val  uint32
}

type byteChunk struct {
	typ  uint16
	data []byte
}

// intChunks lists the integer chunks in wire order. The order follows the
// specification's example packet (family, protocol, addresses, ports, time,
// type, capture id) so that the example round-trips byte for byte; the
// addresses are emitted between protocol and ports by AppendV3.
func (p *Packet) intChunks() [17]intChunk {
	return [17]intChunk{
		{HasFamily, ChunkIPFamily, 1, uint32(p.Family)},
		{HasProtocol, ChunkIPProtocol, 1, uint32(p.Protocol)},
		{HasSrcPort, ChunkSrcPort, 2, uint32(p.SrcPort)},
		{HasDstPort, ChunkDstPort, 2, uint32(p.DstPort)},
		{HasTimeSec, ChunkTimeSec, 4, p.TimeSec},
		{HasTimeUsec, ChunkTimeUsec, 4, p.TimeUsec},
		{HasProtoType, ChunkProtoType, 1, uint32(p.ProtoType)},
		{HasCaptureID, ChunkCaptureID, 4, p.CaptureID},
		{HasKeepAlive, ChunkKeepAlive, 2, uint32(p.KeepAlive)},
		{HasVLAN, ChunkVLAN, 2, uint32(p.VLAN)},
		{HasEtherType, ChunkEtherType, 2, uint32(p.EtherType)},
		{HasTCPFlags, ChunkTCPFlags, 1, uint32(p.TCPFlags)},
		{HasIPTOS, ChunkIPTOS, 1, uint32(p.IPTOS)},
		{HasMOS, ChunkMOS, 2, uint32(p.MOS)},
		{HasRFactor, ChunkRFactor, 2, uint32(p.RFactor)},
		{HasJitter, ChunkJitter, 4, p.Jitter},
		{HasTagType, ChunkTagType, 2, uint32(p.TagType)},
	}
}

func (p *Packet) byteChunks() [11]byteChunk {
	return [11]byteChunk{
		{ChunkAuthKey, p.AuthKey},
		{ChunkPayload, p.Payload},
		{ChunkCompressed, p.Compressed},
		{ChunkCorrelationID, p.CorrelationID},
		{ChunkNodeName, p.NodeName},
		{ChunkSrcMAC, p.SrcMAC},
		{ChunkDstMAC, p.DstMAC},
		{ChunkGeoLocation, p.GeoLocation},
		{ChunkTransactionTyp, p.TransactionType},
		{ChunkPayloadJSONKeys, p.PayloadJSONKeys},
		{ChunkTagsValues, p.TagsValues},
	}
}

// AppendV3 appends p encoded as HEP v3 to dst. It allocates only when dst
// lacks capacity, so encoding into a reused buffer allocates nothing.
// Whatever version p was decoded from, the result is v3.
func (p *Packet) AppendV3(dst []byte) ([]byte, error) {
	size, err := p.Size()
	if err != nil {
		return dst, err
	}
	start := len(dst)
	dst = grow(dst, size)
	b := dst[start : start+size]
	copy(b, Magic)
	binary.BigEndian.PutUint16(b[4:], uint16(size))
	off := HeaderLen
	ints := p.intChunks()
	// family and protocol, then the addresses, then the other integers
	for i, c := range ints {
		if i == 2 {
			off = p.putAddrs(b, off)
		}
		if p.Fields&c.f == 0 {
			continue
		}
		off = putHeader(b, off, VendorGeneric, c.typ, c.size)
		switch c.size {
		case 1:
			b[off] = byte(c.val)
		case 2:
			binary.BigEndian.PutUint16(b[off:], uint16(c.val))
		case 4:
			binary.BigEndian.PutUint32(b[off:], c.val)
		}
		off += c.size
	}
	for _, c := range p.byteChunks() {
		if c.data != nil {
			off = putHeader(b, off, VendorGeneric, c.typ, len(c.data))
			off += copy(b[off:], c.data)
		}
	}
	putChunks(b[off:], p.Extra)
	return dst, nil
}

// AppendChunks appends chunks in wire format, without a packet header, to
// dst; ParseChunks reads them back. A chunk 0x0e among them is skipped.
func AppendChunks(dst []byte, chunks []Chunk) []byte {
	start := len(dst)
	dst = grow(dst, chunksLen(chunks))
	putChunks(dst[start:], chunks)
	return dst
}

// skipped reports whether an extra chunk is never written: an auth key
// (of any vendor, heplify-server ignores the vendor) is the secret of one
// hop and goes only in Packet.AuthKey, so that a key read from a record's
// hep.extra_chunks, say, can neither leak nor override the one set there.
func skipped(c Chunk) bool { return c.Type == ChunkAuthKey }

func chunksLen(chunks []Chunk) int {
	n := 0
	for _, c := range chunks {
		if !skipped(c) {
			n += ChunkHeaderLen + len(c.Data)
		}
	}
	return n
}

func putChunks(b []byte, chunks []Chunk) {
	off := 0
	for _, c := range chunks {
		if skipped(c) {
			continue
		}
		off = putHeader(b, off, c.Vendor, c.Type, len(c.Data))
		off += copy(b[off:], c.Data)
	}
}

func (p *Packet) putAddrs(b []byte, off int) int {
	put := func(a [16]byte, is4 bool, t4, t6 uint16) {
		if is4 {
			off = putHeader(b, off, VendorGeneric, t4, 4)
			off += copy(b[off:], a[12:])
			return
		}
		off = putHeader(b, off, VendorGeneric, t6, 16)
		off += copy(b[off:], a[:])
	}
	if p.Has(HasSrcIP) {
		put(p.SrcIP.As16(), p.SrcIP.Is4(), ChunkIPv4Src, ChunkIPv6Src)
	}
	if p.Has(HasDstIP) {
		put(p.DstIP.As16(), p.DstIP.Is4(), ChunkIPv4Dst, ChunkIPv6Dst)
	}
	return off
}

func putHeader(b []byte, off int, vendor, typ uint16, payload int) int {
	binary.BigEndian.PutUint16(b[off:], vendor)
	binary.BigEndian.PutUint16(b[off+2:], typ)
	binary.BigEndian.PutUint16(b[off+4:], uint16(ChunkHeaderLen+payload))
	return off + ChunkHeaderLen
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}
