package sipmsg

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

func TestParse(t *testing.T) {
	invite := fixture.Invite()
	tests := []struct {
		name string
		msg  string
		want Summary
	}{
		{"invite fixture", string(invite), Summary{
			Method: "INVITE", RequestURI: "sip:bob@biloxi.example.com",
			CallID: "a84b4c76e66710@pc33.atlanta.example.com", CSeqNumber: 314159, CSeqMethod: "INVITE",
			FromTag: "1928301774", ViaBranch: "z9hG4bK776asdhds", UserAgent: "Ozona/5.0",
		}},
		{"response with compact headers and LF line ends",
			"SIP/2.0 180 Ringing\nv: SIP/2.0/UDP a;branch=z9hG4bKa, SIP/2.0/UDP b;branch=z9hG4bKb\nV: SIP/2.0/UDP c;branch=z9hG4bKc\n" +
				"f: <sip:a@x;tag=uri-param>;TAG=ft\nt: \"B\" <sip:b@y>;tag=tt;x=1\ni: cid-1\nCSeq:   7   INVITE\nServer: kamailio\n\n",
			Summary{StatusCode: 180, Reason: "Ringing", CallID: "cid-1", CSeqNumber: 7, CSeqMethod: "INVITE",
				FromTag: "ft", ToTag: "tt", ViaBranch: "z9hG4bKa", UserAgent: "kamailio"}},
		{"folded header and body ignored",
			"BYE sip:b@y SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n ;branch=z9hG4bKfold\r\nCall-ID: c2\r\nUser-Agent: UA\r\nServer: S\r\n\r\nCall-ID: body\r\n",
			Summary{Method: "BYE", RequestURI: "sip:b@y", CallID: "c2", UserAgent: "UA"}},
		{"bad cseq ignored", "OPTIONS sip:x SIP/2.0\r\nCSeq: abc OPTIONS\r\n\r\n",
			Summary{Method: "OPTIONS", RequestURI: "sip:x"}},
		{"cseq overflow ignored", "OPTIONS sip:x SIP/2.0\r\nCSeq: 99999999999 OPTIONS\r\n\r\n",
			Summary{Method: "OPTIONS", RequestURI: "sip:x"}},
		{"status 699 reason with spaces", "SIP/2.0 699 Very Odd\r\n\r\n", Summary{StatusCode: 699, Reason: "Very Odd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.msg)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.want.Method != "", got.IsRequest())
		})
	}
}

func TestParseNotSIP(t *testing.T) {
	for _, msg := range []string{
		"", "\r\n", "HTTP/1.1 200 OK\r\n\r\n", "SIP/2.0 2000 OK\r\n", "SIP/2.0 099 x\r\n", "SIP/2.0 abc\r\n",
		"INVITE sip:x SIP/3.0\r\n", "INVITE\r\n", "INV ITE sip:x SIP/2.0", "INVITE  SIP/2.0",
		"{\"call_id\":\"x\"}", "\x00\x01\x02",
	} {
		_, err := Parse(msg)
		assert.ErrorIs(t, err, ErrNotSIP, "%q", msg)
	}
}

func FuzzParse(f *testing.F) {
	invite := fixture.Invite()
	f.Add(string(invite))
	f.Add("SIP/2.0 200 OK\r\nf: <sip:a>;tag=1\r\n\r\n")
	f.Fuzz(func(t *testing.T, msg string) {
		s, err := Parse(msg)
		if err != nil {
			if s != (Summary{}) {
				t.Fatal("summary filled on error")
			}
			return
		}
		for _, v := range []string{s.Method, s.RequestURI, s.CallID, s.CSeqMethod, s.FromTag, s.ToTag, s.ViaBranch, s.UserAgent, s.Reason} {
			if !strings.Contains(msg, v) {
				t.Fatalf("%q is not a substring of the input", v)
			}
		}
		if s.IsRequest() == (s.StatusCode != 0) {
			t.Fatal("both or neither of method and status")
		}
	})
}

func BenchmarkParseInvite(b *testing.B) {
	invite := fixture.Invite()
	msg := string(invite)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := Parse(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHeaderNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		want int
	}{
		{"Call-ID", hCallID}, {"call-id", hCallID}, {"CALL-ID", hCallID}, {"i", hCallID}, {"I", hCallID},
		{"CSeq", hCSeq}, {"cseq", hCSeq},
		{"From", hFrom}, {"f", hFrom}, {"F", hFrom},
		{"To", hTo}, {"t", hTo}, {"tO", hTo},
		{"Via", hVia}, {"v", hVia}, {"VIA", hVia},
		{"User-Agent", hUserAgent}, {"user-agent", hUserAgent},
		{"Server", hServer}, {"SERVER", hServer},
		{"Contact", hOther}, {"m", hOther}, {"Call-Info", hOther}, {"Tx", hOther}, {"Vias", hOther},
		{"", hOther}, {")", hOther}, {"\x49", hCallID}, {"\x09", hOther}, {"User_Agent", hOther},
	} {
		if got := header(tc.name); got != tc.want {
			t.Errorf("header(%q) = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestHeaderAndAddrURI(t *testing.T) {
	msg := "INVITE sip:bob@example.com SIP/2.0\r\n" +
		"v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n" +
		"f: \"Alice\" <sip:alice@example.com;transport=udp>;tag=a1\r\n" +
		"TO:sip:bob@example.com;tag=b1\r\n" +
		"X-CID:  leg-1@sbc \r\n" +
		"\r\n" +
		"From: sip:not-a-header@example.com\r\n"
	for _, tt := range []struct{ name, header, uri string }{
		{"From", `"Alice" <sip:alice@example.com;transport=udp>;tag=a1`, "sip:alice@example.com;transport=udp"},
		{"to", "sip:bob@example.com;tag=b1", "sip:bob@example.com"},
		{"x-cid", "leg-1@sbc", "leg-1@sbc"},
		{"Contact", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := FirstHeader(msg, tt.name)
			assert.Equal(t, tt.header, h)
			assert.Equal(t, tt.uri, AddrURI(h))
		})
	}
	assert.Equal(t, "", AddrURI("<sip:unterminated"), "no closing >")
}

// TestKnownMethod: a known method comes back as a constant, not as the
// slice of the message it was given; others are not known.
func TestKnownMethod(t *testing.T) {
	msg := strings.Clone("INVITE sip:bob@example.com SIP/2.0\r\n") // as a received message: on the heap
	for _, m := range []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE", "INFO",
		"REFER", "NOTIFY", "SUBSCRIBE", "MESSAGE", "PUBLISH"} {
		got, ok := KnownMethod(strings.Clone(m))
		assert.True(t, ok, m)
		assert.Equal(t, m, got)
	}
	got, _ := KnownMethod(msg[:6])
	assert.NotSame(t, unsafe.StringData(msg), unsafe.StringData(got), "the message's slice")
	for _, m := range []string{"", "invite", "FOO", "INVITE "} {
		_, ok := KnownMethod(m)
		assert.False(t, ok, m)
	}
}
