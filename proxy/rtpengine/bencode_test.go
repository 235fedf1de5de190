package rtpengine

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// offerSDP is the caller's SDP of proxy/testdata/sipp/uac-call.xml.
const offerSDP = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

// The shapes of real NG messages: what the proxy sends, and what Debian's
// rtpengine 10.5 answered to it (from the system tests' exchanges).
var ngShapes = []struct {
	name  string
	wire  string
	value any
}{
	{"ping", "d7:command4:pinge", Dict{"command": "ping"}},
	{"pong", "d6:result4:ponge", Dict{"result": "pong"}},
	{"offer", "d3:ICE6:remove7:call-id7:c1@host7:command5:offer5:flagsl13:trust-addresse8:from-tag3:ft113:received-froml3:IP49:127.0.0.1e7:replacel6:origin18:session-connectione3:sdp" +
		strconv.Itoa(len(offerSDP)) + ":" + offerSDP + "e",
		Dict{"command": "offer", "call-id": "c1@host", "from-tag": "ft1", "sdp": offerSDP, "ICE": "remove",
			"flags": []any{"trust-address"}, "replace": []any{"origin", "session-connection"}, "received-from": []any{"IP4", "127.0.0.1"}}},
	{"offer reply", "d6:result2:ok3:sdp" + strconv.Itoa(len(offerSDP)) + ":" + offerSDP + "e", Dict{"result": "ok", "sdp": offerSDP}},
	{"error reply", "d12:error-reason15:Unknown call-id6:result5:errore", Dict{"result": "error", "error-reason": "Unknown call-id"}},
	{"delete", "d7:call-id2:c17:command6:delete12:delete-delayi0e8:from-tag3:ft1e",
		Dict{"command": "delete", "call-id": "c1", "from-tag": "ft1", "delete-delay": int64(0)}},
	{"list reply", "d5:callsl2:c12:c2e6:result2:oke", Dict{"result": "ok", "calls": []any{"c1", "c2"}}},
	{"empty list", "d5:callsle6:result2:oke", Dict{"result": "ok", "calls": []any{}}},
	{"query reply", "d6:result2:ok4:tagsd2:ftd6:mediasld5:indexi1e7:streamsld10:local porti30200eeeeeeee",
		Dict{"result": "ok", "tags": Dict{"ft": Dict{"medias": []any{Dict{"index": int64(1), "streams": []any{Dict{"local port": int64(30200)}}}}}}}},
	{"negative and zero", "li-42ei0ee", []any{int64(-42), int64(0)}},
	{"binary string", "3:\x00\xff ", "\x00\xff "},
}

func TestCodecShapes(t *testing.T) {
	for _, tt := range ngShapes {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.wire))
			require.NoError(t, err)
			assert.Equal(t, tt.value, got)
			b, err := Encode(got)
			require.NoError(t, err)
			assert.Equal(t, tt.wire, string(b), "sorted keys: the canonical form comes back")
		})
	}
}

// TestEncodeTypes covers what the proxy builds: []string and int values.
func TestEncodeTypes(t *testing.T) {
	b, err := Encode(Dict{"flags": []string{"a", "bc"}, "n": 7, "m": int64(-1), "raw": []byte("xy")})
	require.NoError(t, err)
	assert.Equal(t, "d5:flagsl1:a2:bce1:mi-1e1:ni7e3:raw2:xye", string(b))

	for _, bad := range []any{1.5, true, map[string]string{"a": "b"}, Dict{"k": []any{struct{}{}}}} {
		_, err := Encode(bad)
		assert.ErrorIs(t, err, ErrSyntax, "%#v", bad)
	}
}

func TestDecodeErrors(t *testing.T) {
	deep := strings.Repeat("l", maxDepth+1) + strings.Repeat("e", maxDepth+1)
	for _, tt := range []struct{ name, in, want string }{
		{"empty", "", "unexpected end"},
		{"truncated dict", "d6:result", "unexpected end"},
		{"unterminated dict", "d1:ai1e", "unterminated dictionary"},
		{"unterminated list", "li1e", "unterminated list"},
		{"unterminated integer", "i12", "unterminated integer"},
		{"empty integer", "ie", "bad integer"},
		{"leading zero", "i03e", "bad integer"},
		{"minus zero", "i-0e", "bad integer"},
		{"plus sign", "i+1e", "bad integer"},
		{"not a number", "i1xe", "bad integer"},
		{"integer overflow", "i99999999999999999999e", "bad integer"},
		{"string too long", "5:abc", "string of 5 bytes, 3 left"},
		{"negative length", "-1:a", "unexpected byte"},
		{"length leading zero", "03:abc", "bad integer"},
		{"huge length", "99999999999999999999:a", "bad integer"},
		{"integer key", "di1ei2ee", "dictionary key is not a string"},
		{"repeated key", "d1:ai1e1:ai2ee", `key "a" repeated`},
		{"trailing bytes", "i1ei2e", "3 bytes after the value"},
		{"bad byte", "x", "unexpected byte"},
		{"too deep", deep, "nested deeper than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			require.ErrorIs(t, err, ErrSyntax)
			assert.ErrorContains(t, err, tt.want)
		})
	}
	v, err := Decode([]byte(strings.Repeat("l", maxDepth) + strings.Repeat("e", maxDepth)))
	require.NoError(t, err, "nesting up to the bound is fine")
	assert.NotNil(t, v)
}

func TestParseDatagram(t *testing.T) {
	cookie, d, err := ParseDatagram([]byte("5f2a d6:result4:ponge"))
	require.NoError(t, err)
	assert.Equal(t, "5f2a", cookie)
	assert.Equal(t, Dict{"result": "pong"}, d)
	for _, bad := range []string{"nocookie", " d6:result4:ponge", "c1 li1ee", "c1 d6:result"} {
		_, _, err := ParseDatagram([]byte(bad))
		assert.Error(t, err, bad)
	}
}

// FuzzDecode: whatever the bytes, Decode returns (no panic, no hang), and
// what it accepts encodes to a canonical form that decodes to the same
// value and encodes to itself.
func FuzzDecode(f *testing.F) {
	for _, s := range ngShapes {
		f.Add([]byte(s.wire))
	}
	for _, s := range []string{"d1:ai1e1:ai2ee", "i-0e", "03:abc", "l" + strings.Repeat("l", 40), "d1:bi1e1:ai2ee", "0:"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b)
		if err != nil {
			return
		}
		enc, err := Encode(v)
		require.NoError(t, err, "a decoded value encodes")
		again, err := Decode(enc)
		require.NoError(t, err, "the canonical form decodes: %q", enc)
		require.Equal(t, v, again)
		enc2, err := Encode(again)
		require.NoError(t, err)
		require.Equal(t, enc, enc2)
	})
}
