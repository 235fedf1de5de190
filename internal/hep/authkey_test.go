package hep

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// authKeyChunks returns the data of every chunk 0x0e of a v3 packet, of
// any vendor, read from its bytes without the decoder.
func authKeyChunks(t *testing.T, raw []byte) []string {
	t.Helper()
	require.GreaterOrEqual(t, len(raw), HeaderLen)
	chunks, err := ParseChunks(nil, raw[HeaderLen:])
	require.NoError(t, err)
	var keys []string
	for _, c := range chunks {
		if c.Type == ChunkAuthKey {
			keys = append(keys, string(c.Data))
		}
	}
	return keys
}

// authKeyPackets are HEP3 packets carrying chunk 0x0e more than once, at
// the start, in the middle, at the end, from a vendor: the shapes a
// sender (or a relay adding its own copy) may produce.
func authKeyPackets() []struct {
	name  string
	raw   []byte
	first string
	keys  int
	same  bool // every copy equal to the first
} {
	key := func(k string) []byte { return chunk(0, ChunkAuthKey, []byte(k)) }
	ptype := chunk(0, ChunkProtoType, []byte{TypeSIP})
	payload := chunk(0, ChunkPayload, []byte("OPTIONS sip:x SIP/2.0\r\n\r\n"))
	capt := chunk(0, ChunkCaptureID, []byte{0, 0, 7, 209})
	return []struct {
		name  string
		raw   []byte
		first string
		keys  int
		same  bool
	}{
		{"two, first and last", v3(key("s3cret"), ptype, capt, payload, key("s3cret")), "s3cret", 2, true},
		{"two, adjacent in the middle", v3(ptype, key("s3cret"), key("s3cret"), capt, payload), "s3cret", 2, true},
		{"three, start middle end", v3(key("s3cret"), ptype, key("s3cret"), capt, payload, key("s3cret")), "s3cret", 3, true},
		{"second differs", v3(ptype, key("s3cret"), capt, payload, key("other")), "s3cret", 2, false},
		{"first differs", v3(key("other"), ptype, capt, key("s3cret"), payload), "other", 2, false},
		{"second one from a vendor", v3(key("s3cret"), ptype, capt, payload, chunk(VendorKamailio, ChunkAuthKey, []byte("s3cret"))), "s3cret", 2, true},
		{"vendor copy differs", v3(chunk(VendorKamailio, ChunkAuthKey, []byte("x")), key("s3cret"), ptype, payload), "x", 2, false},
		{"empty second copy", v3(key("s3cret"), ptype, payload, key("")), "s3cret", 2, false},
	}
}

// TestAuthKeyCopiesAreNotKept: however many copies of chunk 0x0e a packet
// carries, and wherever, the first is AuthKey and no copy is kept as an
// extra chunk, so none can be re-encoded (heplify-server reads the type of
// a chunk whatever its vendor, and the last copy wins there).
func TestAuthKeyCopiesAreNotKept(t *testing.T) {
	for _, tt := range authKeyPackets() {
		t.Run(tt.name, func(t *testing.T) {
			require.Len(t, authKeyChunks(t, tt.raw), tt.keys, "the input carries the copies")
			var p Packet
			require.NoError(t, p.Decode(tt.raw))
			assert.Equal(t, tt.first, string(p.AuthKey))
			for _, c := range p.Extra {
				assert.NotEqual(t, ChunkAuthKey, c.Type, "chunk 0x0e kept as an extra (vendor %d): %q", c.Vendor, c.Data)
			}
			assert.Equal(t, "OPTIONS sip:x SIP/2.0\r\n\r\n", string(p.Payload))

			out, err := p.AppendV3(nil)
			require.NoError(t, err)
			assert.Equal(t, []string{tt.first}, authKeyChunks(t, out), "re-encoded: AuthKey only")
			p.AuthKey = nil
			out, err = p.AppendV3(nil)
			require.NoError(t, err)
			assert.Empty(t, authKeyChunks(t, out), "re-encoded without AuthKey: no 0x0e at all")
		})
	}
}

// TestAuthKeyIs: a packet proves the key only when every copy of chunk
// 0x0e equals it.
func TestAuthKeyIs(t *testing.T) {
	for _, tt := range authKeyPackets() {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			require.NoError(t, p.Decode(tt.raw))
			assert.Equal(t, tt.keys, p.AuthKeyCount())
			assert.Equal(t, tt.same && tt.first == "s3cret", p.AuthKeyIs([]byte("s3cret")))
			assert.False(t, p.AuthKeyIs([]byte("s3cre")))
			assert.False(t, p.AuthKeyIs([]byte("s3crets")))
		})
	}
	t.Run("one key", func(t *testing.T) {
		var p Packet
		require.NoError(t, p.Decode(v3(chunk(0, ChunkAuthKey, []byte("s3cret")), chunk(0, ChunkPayload, []byte("p")))))
		assert.Equal(t, 1, p.AuthKeyCount())
		assert.True(t, p.AuthKeyIs([]byte("s3cret")))
		assert.False(t, p.AuthKeyIs([]byte("other")))
	})
	t.Run("no key", func(t *testing.T) {
		var p Packet
		require.NoError(t, p.Decode(v3(chunk(0, ChunkPayload, []byte("p")))))
		assert.Zero(t, p.AuthKeyCount())
		assert.False(t, p.AuthKeyIs([]byte("s3cret")))
		assert.False(t, p.AuthKeyIs([]byte{}))
	})
	t.Run("reset clears the copies", func(t *testing.T) {
		var p Packet
		require.NoError(t, p.Decode(authKeyPackets()[3].raw))
		require.NoError(t, p.Decode(v3(chunk(0, ChunkAuthKey, []byte("s3cret")))))
		assert.Equal(t, 1, p.AuthKeyCount())
		assert.True(t, p.AuthKeyIs([]byte("s3cret")))
	})
}

// TestEncodersNeverWriteExtraAuthKey: chunk 0x0e among the extra chunks
// (from a record's hep.extra_chunks attribute, say) is never written,
// generic or vendor; only Packet.AuthKey is.
func TestEncodersNeverWriteExtraAuthKey(t *testing.T) {
	extra := []Chunk{
		{Type: ChunkAuthKey, Data: []byte("leaked")},
		{Vendor: VendorKamailio, Type: 0x0001, Data: []byte("kept")},
		{Vendor: VendorKamailio, Type: ChunkAuthKey, Data: []byte("leaked-too")},
	}
	p := Packet{Payload: []byte("p"), Extra: extra}
	out, err := p.AppendV3(nil)
	require.NoError(t, err)
	size, err := p.Size()
	require.NoError(t, err)
	assert.Len(t, out, size)
	assert.Empty(t, authKeyChunks(t, out))
	var d Packet
	require.NoError(t, d.Decode(out))
	assert.Equal(t, []Chunk{{Vendor: VendorKamailio, Type: 0x0001, Data: []byte("kept")}}, d.Extra)

	p.AuthKey = []byte("hop-key")
	out, err = p.AppendV3(nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"hop-key"}, authKeyChunks(t, out))

	raw := AppendChunks(nil, extra)
	chunks, err := ParseChunks(nil, raw)
	require.NoError(t, err)
	assert.Equal(t, []Chunk{{Vendor: VendorKamailio, Type: 0x0001, Data: []byte("kept")}}, chunks)
}
