package hep

import (
	"net/netip"
	"testing"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

func invitePacket(b *testing.B) (Packet, []byte) {
	payload := fixture.Invite()
	p := Packet{
		Family: FamilyIPv4, Protocol: ProtoUDP,
		SrcIP: netip.MustParseAddr("192.168.1.100"), DstIP: netip.MustParseAddr("10.0.0.1"),
		SrcPort: 5060, DstPort: 5060, TimeSec: 1772806981, TimeUsec: 42000,
		ProtoType: TypeSIP, CaptureID: 2001, Payload: payload,
		CorrelationID: []byte("a84b4c76e66710@pc33.atlanta.example.com"),
		Fields: HasFamily | HasProtocol | HasSrcIP | HasDstIP | HasSrcPort | HasDstPort |
			HasTimeSec | HasTimeUsec | HasProtoType | HasCaptureID,
	}
	raw, err := p.AppendV3(nil)
	if err != nil {
		b.Fatal(err)
	}
	return p, raw
}

func BenchmarkDecodeInvite(b *testing.B) {
	_, raw := invitePacket(b)
	var p Packet
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeInvite(b *testing.B) {
	p, raw := invitePacket(b)
	buf := make([]byte, 0, len(raw))
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = p.AppendV3(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineCopy copies the same packet into a reused buffer: the
// memory-bandwidth floor that decode and encode are reported against.
func BenchmarkBaselineCopy(b *testing.B) {
	_, raw := invitePacket(b)
	buf := make([]byte, len(raw))
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, raw)
	}
}
