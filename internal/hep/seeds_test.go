package hep

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// seedInputs are the shapes the fuzzers start from: the specification's
// example, every chunk type, v1 and v2, and each kind of malformation.
func seedInputs(t testing.TB) map[string][]byte {
	full := fullPacket()
	fullRaw, err := full.AppendV3(nil)
	if err != nil {
		t.Fatal(err)
	}
	v4s, v4d := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	v6s, v6d := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	trunc := bytes.Clone(fullRaw)
	binary.BigEndian.PutUint16(trunc[4:], uint16(len(trunc)+10))
	return map[string][]byte{
		"spec-example":     specExample(t),
		"every-chunk-ipv6": fullRaw,
		"v1-ipv4":          v12(1, v4s, v4d, 5060, 5080, 0, 0, 0, "OPTIONS sip:a SIP/2.0\r\n\r\n"),
		"v2-ipv6":          v12(2, v6s, v6d, 5060, 5080, 1700000000, 5, 2001, "SIP/2.0 200 OK\r\n\r\n"),
		"zero-length":      v3(withChunkLen(chunk(0, ChunkPayload, []byte("x")), 0)),
		"chunk-overrun":    v3(withChunkLen(chunk(0, ChunkPayload, []byte("x")), 90)),
		"length-mismatch":  trunc,
		"vendor-chunk":     v3(chunk(VendorKamailio, 7, []byte("vendor")), chunk(0, ChunkPayload, []byte("p"))),
		"auth-key-copies": v3(chunk(0, ChunkAuthKey, []byte("k")), chunk(0, ChunkPayload, []byte("p")),
			chunk(VendorKamailio, ChunkAuthKey, []byte("k")), chunk(0, ChunkAuthKey, []byte("other"))),
		"two-packets":     append(specExample(t), specExample(t)...),
		"garbage-between": append(append(specExample(t), "garbage HEP HEP3"...), specExample(t)...),
	}
}

// TestSeedCorpusIsCurrent keeps testdata/fuzz in step with seedInputs;
// run with -write-seeds to regenerate it.
func TestSeedCorpusIsCurrent(t *testing.T) {
	for _, target := range []string{"FuzzDecode", "FuzzStream"} {
		dir := filepath.Join("testdata", "fuzz", target)
		for name, b := range seedInputs(t) {
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
			path := filepath.Join(dir, name)
			if *writeSeeds {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != want {
				t.Errorf("%s is missing or stale: go test ./internal/hep -run TestSeedCorpusIsCurrent -write-seeds", path)
			}
		}
	}
}
