// Package hep decodes HEP v1, v2 and v3 (the Homer Encapsulation Protocol,
// also called EEP) and encodes HEP v3.
//
// Decoding is zero-copy: byte-slice fields of a decoded Packet point into the
// input buffer, so a caller that keeps a Packet beyond the buffer's life must
// copy what it needs. Decoding never allocates, never panics and never reads
// past the input, whatever the input holds.
package hep

import (
	"net/netip"
)

// Magic is the first four bytes of every HEP v3 packet.
const Magic = "HEP3"

// HeaderLen is the size of the HEP v3 header: magic plus total length.
const HeaderLen = 6

// ChunkHeaderLen is the size of a chunk header: vendor id, type, length.
const ChunkHeaderLen = 6

// MaxPacketLen is the largest HEP v3 packet the 16-bit length field allows.
const MaxPacketLen = 0xffff

// Generic chunk types (vendor id 0), HEP3 specification REV 37.
const (
	ChunkIPFamily        uint16 = 0x0001 // uint8: 2 IPv4, 10 IPv6
	ChunkIPProtocol      uint16 = 0x0002 // uint8: 6 TCP, 17 UDP, 132 SCTP
	ChunkIPv4Src         uint16 = 0x0003
	ChunkIPv4Dst         uint16 = 0x0004
	ChunkIPv6Src         uint16 = 0x0005
	ChunkIPv6Dst         uint16 = 0x0006
	ChunkSrcPort         uint16 = 0x0007 // uint16
	ChunkDstPort         uint16 = 0x0008 // uint16
	ChunkTimeSec         uint16 = 0x0009 // uint32
	ChunkTimeUsec        uint16 = 0x000a // uint32, < 1e6
	ChunkProtoType       uint16 = 0x000b // uint8
	ChunkCaptureID       uint16 = 0x000c // uint32
	ChunkKeepAlive       uint16 = 0x000d // uint16 seconds
	ChunkAuthKey         uint16 = 0x000e // octets
	ChunkPayload         uint16 = 0x000f // octets
	ChunkCompressed      uint16 = 0x0010 // octets, gzip or zlib
	ChunkCorrelationID   uint16 = 0x0011 // octets
	ChunkVLAN            uint16 = 0x0012 // uint16
	ChunkNodeName        uint16 = 0x0013 // octets
	ChunkSrcMAC          uint16 = 0x0014 // octets
	ChunkDstMAC          uint16 = 0x0015 // octets
	ChunkEtherType       uint16 = 0x0016 // uint16
	ChunkTCPFlags        uint16 = 0x0017 // uint8
	ChunkIPTOS           uint16 = 0x0018 // uint8
	ChunkMOS             uint16 = 0x0020 // uint16
	ChunkRFactor         uint16 = 0x0021 // uint16
	ChunkGeoLocation     uint16 = 0x0022 // octets
	ChunkJitter          uint16 = 0x0023 // uint32
	ChunkTransactionTyp  uint16 = 0x0024 // octets
	ChunkPayloadJSONKeys uint16 = 0x0025 // octets
	ChunkTagsValues      uint16 = 0x0026 // octets
	ChunkTagType         uint16 = 0x0027 // uint16
)

// IP families as carried in chunk 0x01 and in the v1/v2 header.
const (
	FamilyIPv4 uint8 = 2
	FamilyIPv6 uint8 = 10
)

// IP protocol numbers as carried in chunk 0x02.
const (
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoSCTP uint8 = 132
)

// Protocol types (chunk 0x0b) that have a meaning in this project.
const (
	TypeSIP   uint8 = 1
	TypeRTCP  uint8 = 5
	TypeQoS34 uint8 = 34
	TypeQoS35 uint8 = 35
	TypeDNS   uint8 = 53
	TypeLog   uint8 = 100
)

// Vendor ids of the chunk header.
const (
	VendorGeneric    uint16 = 0
	VendorFreeSWITCH uint16 = 1
	VendorKamailio   uint16 = 2
	VendorOpenSIPS   uint16 = 3
	VendorAsterisk   uint16 = 4
	VendorHomer      uint16 = 5
)

// Chunk is a chunk the Packet has no field for: a vendor chunk or a generic
// type this codec does not interpret. It is kept so that decode then encode
// loses nothing, the auth key excepted: a chunk 0x0e is never kept as a
// Chunk, and the encoders skip one found among them.
type Chunk struct {
	Vendor uint16
	Type   uint16
	Data   []byte
}

// Field bits record which optional chunks a packet carried, so that encoding
// a decoded packet reproduces exactly the chunks it had.
type Field uint32

// Presence bits of Packet.Fields.
const (
	HasFamily Field = 1 << iota
	HasProtocol
	HasSrcIP
	HasDstIP
	HasSrcPort
	HasDstPort
	HasTimeSec
	HasTimeUsec
	HasProtoType
	HasCaptureID
	HasKeepAlive
	HasVLAN
	HasEtherType
	HasTCPFlags
	HasIPTOS
	HasMOS
	HasRFactor
	HasJitter
	HasTagType
)

// Packet is one decoded HEP packet. Integer fields are meaningful only when
// their bit is set in Fields; byte-slice fields are nil when absent.
type Packet struct {
	Version uint8 // 1, 2 or 3
	Fields  Field

	Family    uint8
	Protocol  uint8
	SrcIP     netip.Addr
	DstIP     netip.Addr
	SrcPort   uint16
	DstPort   uint16
	TimeSec   uint32
	TimeUsec  uint32
	ProtoType uint8
	CaptureID uint32
	KeepAlive uint16
	VLAN      uint16
	EtherType uint16
	TCPFlags  uint8
	IPTOS     uint8
	MOS       uint16
	RFactor   uint16
	Jitter    uint32
	TagType   uint16

	// AuthKey is the first chunk 0x0e (of any vendor). Later copies are
	// counted (AuthKeyCount, AuthKeyIs) but not kept: an auth key is never
	// among the Extra chunks, and no encoder writes one from there.
	AuthKey         []byte
	Payload         []byte
	Compressed      []byte // chunk 0x10, still compressed; see Packet.DecompressedPayload
	CorrelationID   []byte
	NodeName        []byte
	SrcMAC          []byte
	DstMAC          []byte
	GeoLocation     []byte
	TransactionType []byte
	PayloadJSONKeys []byte
	TagsValues      []byte

	// Extra holds vendor chunks and generic chunks without a field, in
	// arrival order.
	Extra []Chunk

	// copies of chunk 0x0e after the first, and whether any differs from it
	moreAuthKeys   uint16
	authKeysDiffer bool
}

// Has reports whether every field in f was present.
func (p *Packet) Has(f Field) bool { return p.Fields&f == f }

// Reset clears the packet for reuse, keeping Extra's backing array.
func (p *Packet) Reset() {
	extra := p.Extra[:0]
	*p = Packet{}
	p.Extra = extra
}
