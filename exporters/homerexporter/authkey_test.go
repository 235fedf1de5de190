package homerexporter

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/exporters/homerexporter/internal/metadata"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/hepsink"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver"
)

// rawChunk is one chunk in wire format, written by hand: the codec's own
// encoders refuse to write an auth key among the extra chunks.
func rawChunk(vendor, typ uint16, data string) []byte {
	b := binary.BigEndian.AppendUint16(nil, vendor)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(hep.ChunkHeaderLen+len(data)))
	return append(b, data...)
}

// withAuthKeys returns the packet sipPacket(i) with a chunk 0x0e (key,
// vendor) inserted before the chunk of each index in at (an index past
// the last chunk appends).
func withAuthKeys(t *testing.T, i int, at []int, keys []string, vendors []uint16) []byte {
	t.Helper()
	p := sipPacket(i)
	plain, err := p.AppendV3(nil)
	require.NoError(t, err)
	chunks, err := hep.ParseChunks(nil, plain[hep.HeaderLen:])
	require.NoError(t, err)
	out := []byte(hep.Magic + "\x00\x00")
	for n := 0; n <= len(chunks); n++ {
		for k, pos := range at {
			if pos == n || n == len(chunks) && pos > n {
				out = append(out, rawChunk(vendors[k], hep.ChunkAuthKey, keys[k])...)
			}
		}
		if n < len(chunks) {
			c := chunks[n]
			out = append(out, rawChunk(c.Vendor, c.Type, string(c.Data))...)
		}
	}
	binary.BigEndian.PutUint16(out[4:], uint16(len(out)))
	return out
}

// authKeysOf returns the data of every chunk 0x0e in raw chunks, read
// without the decoder.
func authKeysOf(t *testing.T, chunks []byte) []string {
	t.Helper()
	parsed, err := hep.ParseChunks(nil, chunks)
	require.NoError(t, err)
	var keys []string
	for _, c := range parsed {
		if c.Type == hep.ChunkAuthKey {
			keys = append(keys, string(c.Data))
		}
	}
	return keys
}

// tee hands every batch to a sink and to the exporter.
type tee struct {
	consumertest.LogsSink
	next consumer.Logs
}

func (t *tee) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if err := t.LogsSink.ConsumeLogs(ctx, ld); err != nil {
		return err
	}
	return t.next.ConsumeLogs(ctx, ld)
}

// TestAuthKeyCopiesNeverForwarded sends HEP packets carrying the auth key
// (chunk 0x0e) two and three times, at the start, in the middle and at the
// end, one copy from a vendor, into the hep receiver (with and without
// auth_key), which feeds this exporter (with and without its own
// auth_key), which sends to a capture node. No copy of the inbound key
// leaves: not in the records' hep.extra_chunks (which every exporter
// writes out), not in the bytes this exporter encodes (read without the
// decoder), not at the capture node, where the only chunk 0x0e is the
// exporter's own key, when it has one.
func TestAuthKeyCopiesNeverForwarded(t *testing.T) {
	const inbound = "s3cret"
	g := uint16(hep.VendorGeneric)
	shapes := []struct {
		name    string
		at      []int
		keys    []string
		vendors []uint16
	}{
		{"two, first and last", []int{0, 99}, []string{inbound, inbound}, []uint16{g, g}},
		{"two, adjacent in the middle", []int{4, 4}, []string{inbound, inbound}, []uint16{g, g}},
		{"three, start middle end", []int{0, 5, 99}, []string{inbound, inbound, inbound}, []uint16{g, g, g}},
		{"two, the second a vendor's", []int{1, 7}, []string{inbound, inbound}, []uint16{g, hep.VendorKamailio}},
		{"three, the middle a vendor's", []int{0, 3, 99}, []string{inbound, inbound, inbound}, []uint16{g, hep.VendorFreeSWITCH, g}},
	}
	for _, tc := range []struct {
		receiverKey, exporterKey string
	}{{"", ""}, {inbound, ""}, {"", "homer-key"}, {inbound, "homer-key"}} {
		t.Run(fmt.Sprintf("receiver auth_key=%q exporter auth_key=%q", tc.receiverKey, tc.exporterKey), func(t *testing.T) {
			srv := hepsink.NewUDP(t, "127.0.0.1:0")
			h := newHomer(t, func(c *Config) { c.Endpoint, c.AuthKey = srv.Addr(), configopaque.String(tc.exporterKey) })
			records := &tee{next: h.exp}
			in := hepReceiver(t, records, func(c *hepreceiver.Config) { c.AuthKey = configopaque.String(tc.receiverKey) })

			sent := map[uint16]string{}
			for i, s := range shapes {
				raw := withAuthKeys(t, i, s.at, s.keys, s.vendors)
				require.Len(t, authKeysOf(t, raw[hep.HeaderLen:]), len(s.keys), "%s: the copies are on the wire", s.name)
				_, err := in.Write(raw)
				require.NoError(t, err)
				sent[sipPacket(i).DstPort] = s.name
			}

			got := srv.WaitFor(len(shapes), waitFor)
			var wantKeys []string
			if tc.exporterKey != "" {
				wantKeys = []string{tc.exporterKey}
			}
			for _, p := range got {
				name := sent[p.DstPort]
				assert.NotEmpty(t, name, "a packet of ours")
				assert.Equal(t, len(wantKeys), p.AuthKeyCount(), "%s: chunks 0x0e at the capture node", name)
				if len(wantKeys) > 0 {
					assert.Equal(t, tc.exporterKey, string(p.AuthKey), name)
				}
				for _, c := range p.Extra {
					assert.NotEqual(t, hep.ChunkAuthKey, c.Type, "%s: chunk 0x0e forwarded as an extra", name)
				}
				i := int(p.DstPort - 5060)
				assert.Equal(t, string(sipPacket(i).Payload), string(p.Payload), name)
			}

			// what the other exporters write (hep.extra_chunks) and the
			// bytes this exporter encodes, chunk by chunk
			enc, err := newExporter(exportertest.NewNopSettings(metadata.Type), &Config{AuthKey: configopaque.String(tc.exporterKey)})
			require.NoError(t, err)
			require.Eventually(t, func() bool { return records.LogRecordCount() == len(shapes) }, waitFor, time.Millisecond)
			for _, ld := range records.AllLogs() {
				for _, r := range record.All(ld) {
					if extra, ok := r.Log.Attributes().Get(record.AttrHEPExtraChunks); ok {
						assert.Empty(t, authKeysOf(t, extra.Bytes().AsRaw()), "hep.extra_chunks")
					}
					raw, err := enc.encode(nil, r.Log, r.Resource)
					require.NoError(t, err)
					assert.Equal(t, wantKeys, authKeysOf(t, raw[hep.HeaderLen:]), "encoded packet")
				}
			}
		})
	}
}

// TestAuthKeyInExtraChunksNotSent: a record that reached the exporter with
// a chunk 0x0e in hep.extra_chunks (from an older collector over OTLP,
// say) goes out without it, so it can neither leak nor, with heplify-server
// reading the last copy, override the exporter's own key.
func TestAuthKeyInExtraChunksNotSent(t *testing.T) {
	for _, exporterKey := range []string{"", "homer-key"} {
		t.Run(fmt.Sprintf("auth_key=%q", exporterKey), func(t *testing.T) {
			ld, _ := sipLogs(0, 1)
			lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
			extra := append(rawChunk(hep.VendorGeneric, hep.ChunkAuthKey, "leaked"), rawChunk(hep.VendorKamailio, 0x0001, "kept")...)
			extra = append(extra, rawChunk(hep.VendorKamailio, hep.ChunkAuthKey, "leaked-too")...)
			lr.Attributes().PutEmptyBytes(record.AttrHEPExtraChunks).FromRaw(extra)

			enc, err := newExporter(exportertest.NewNopSettings(metadata.Type), &Config{AuthKey: configopaque.String(exporterKey)})
			require.NoError(t, err)
			raw, err := enc.encode(nil, lr, ld.ResourceLogs().At(0).Resource())
			require.NoError(t, err)
			var want []string
			if exporterKey != "" {
				want = []string{exporterKey}
			}
			assert.Equal(t, want, authKeysOf(t, raw[hep.HeaderLen:]))
			var p hep.Packet
			require.NoError(t, p.Decode(raw))
			assert.Equal(t, []hep.Chunk{{Vendor: hep.VendorKamailio, Type: 0x0001, Data: []byte("kept")}}, p.Extra)
		})
	}
}
