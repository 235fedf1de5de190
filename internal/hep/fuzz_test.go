package hep

import (
	"bytes"
	"testing"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

func addSeeds(f *testing.F) {
	spec := fixture.HEPSpecExample()
	f.Add(spec)
	full := fullPacket()
	raw, err := full.AppendV3(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
}

// FuzzDecode checks that no input panics or over-reads, and that whatever
// decodes re-encodes to a packet that decodes to the same fields.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if err := p.Decode(b); err != nil {
			if Reason(err) == "other" {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		out, err := p.AppendV3(nil)
		if err != nil {
			// v1/v2 payloads may not fit a v3 packet
			if p.Version == 3 || Reason(err) != "oversized" {
				t.Fatalf("re-encode: %v", err)
			}
			return
		}
		if p.Version == 3 {
			// every chunk is written again but the copies of the auth key
			// after the first, counted here from the bytes themselves
			keys, dropped := authKeysIn(t, b)
			if len(out) != len(b)-dropped {
				t.Fatalf("re-encoded %d bytes from %d, %d of them auth key copies", len(out), len(b), dropped)
			}
			if p.AuthKeyCount() != keys {
				t.Fatalf("AuthKeyCount %d, the packet has %d", p.AuthKeyCount(), keys)
			}
			if n, _ := authKeysIn(t, out); n != min(keys, 1) {
				t.Fatalf("re-encoded with %d auth keys from %d", n, keys)
			}
		}
		var q Packet
		if err := q.Decode(out); err != nil {
			t.Fatalf("decode of re-encoded packet: %v", err)
		}
		p.Version = 3
		if !packetsEqual(&p, &q) {
			t.Fatalf("round trip changed the packet:\n%+v\n%+v", p, q)
		}
	})
}

// authKeysIn counts the chunks 0x0e of a well-formed v3 packet, and the
// bytes of all of them but the first.
func authKeysIn(t *testing.T, b []byte) (keys, after int) {
	chunks, err := ParseChunks(nil, b[HeaderLen:])
	if err != nil {
		t.Fatalf("chunks of a decoded packet: %v", err)
	}
	for _, c := range chunks {
		if c.Type == ChunkAuthKey {
			if keys > 0 {
				after += ChunkHeaderLen + len(c.Data)
			}
			keys++
		}
	}
	return keys, after
}

// FuzzStream feeds arbitrary bytes to the stream framer in both modes.
func FuzzStream(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, resync := range []bool{false, true} {
			s := NewStreamReader(bytes.NewReader(b), 2048, resync, 4096)
			for i := 0; ; i++ {
				pkt, err := s.Next()
				if err != nil {
					break
				}
				if len(pkt) > 2048 || string(pkt[:4]) != Magic {
					t.Fatalf("bad frame of %d bytes", len(pkt))
				}
				if i > len(b) {
					t.Fatal("more frames than input bytes")
				}
			}
		}
	})
}

func packetsEqual(a, b *Packet) bool {
	if a.Version != b.Version || a.Fields != b.Fields || a.Family != b.Family || a.Protocol != b.Protocol ||
		a.SrcIP != b.SrcIP || a.DstIP != b.DstIP || a.SrcPort != b.SrcPort || a.DstPort != b.DstPort ||
		a.TimeSec != b.TimeSec || a.TimeUsec != b.TimeUsec || a.ProtoType != b.ProtoType ||
		a.CaptureID != b.CaptureID || a.KeepAlive != b.KeepAlive || a.VLAN != b.VLAN ||
		a.EtherType != b.EtherType || a.TCPFlags != b.TCPFlags || a.IPTOS != b.IPTOS ||
		a.MOS != b.MOS || a.RFactor != b.RFactor || a.Jitter != b.Jitter || a.TagType != b.TagType {
		return false
	}
	ab, bb := a.byteChunks(), b.byteChunks()
	for i := range ab {
		if (ab[i].data == nil) != (bb[i].data == nil) || !bytes.Equal(ab[i].data, bb[i].data) {
			return false
		}
	}
	if len(a.Extra) != len(b.Extra) {
		return false
	}
	for i := range a.Extra {
		if a.Extra[i].Vendor != b.Extra[i].Vendor || a.Extra[i].Type != b.Extra[i].Type ||
			!bytes.Equal(a.Extra[i].Data, b.Extra[i].Data) {
			return false
		}
	}
	return true
}
