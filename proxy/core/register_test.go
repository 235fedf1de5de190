package core

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/proxy/cdrsink"
	"github.com/siphon-otel/siphon-otel/proxy/config"
	"github.com/siphon-otel/siphon-otel/proxy/registrar"
)

const (
	c1 = "sip:alice@10.0.0.1:5070"
	c2 = "sip:alice@10.0.0.2:5070"
)

// register builds alice's REGISTER over UDP.
func register(t *testing.T, hdrs ...string) *sip.Request {
	return newReq(t, "UDP", "REGISTER", "sip:example.com",
		append([]string{"To: <sip:alice@example.com>", "Call-ID: alice-reg", "User-Agent: Zoiper"}, hdrs...)...)
}

// TestRegister covers the registrar's decisions (RFC 3261 10.3): expiry
// from the Contact, the Expires header or the default, the min and max
// bounds, q values, queries, refreshes and removals.
func TestRegister(t *testing.T) {
	type step struct {
		hdrs     []string // of the REGISTER
		code     int
		contacts []string // in the 200
	}
	cases := []struct {
		name  string
		steps []step
		bound int // bindings after the steps
	}{
		{"default expiry", []step{{[]string{"Contact: <" + c1 + ">"}, 200, []string{"<" + c1 + ">;expires=3600"}}}, 1},
		{"Expires header", []step{{[]string{"Contact: <" + c1 + ">", "Expires: 120"}, 200, []string{"<" + c1 + ">;expires=120"}}}, 1},
		{"the contact's expires over the header", []step{{[]string{"Contact: <" + c1 + ">;expires=300", "Expires: 120"}, 200,
			[]string{"<" + c1 + ">;expires=300"}}}, 1},
		{"an unreadable Expires takes the default", []step{{[]string{"Contact: <" + c1 + ">", "Expires: soon"}, 200,
			[]string{"<" + c1 + ">;expires=3600"}}}, 1},
		{"too brief", []step{{[]string{"Contact: <" + c1 + ">;expires=30"}, 423, nil}}, 0},
		{"too long is cut to max_expires", []step{{[]string{"Contact: <" + c1 + ">;expires=100000"}, 200,
			[]string{"<" + c1 + ">;expires=86400"}}}, 1},
		{"q value", []step{{[]string{"Contact: <" + c1 + ">;q=0.5"}, 200, []string{"<" + c1 + ">;expires=3600;q=0.5"}}}, 1},
		{"a q out of range counts as 1", []step{{[]string{"Contact: <" + c1 + ">;q=2"}, 200, []string{"<" + c1 + ">;expires=3600"}}}, 1},
		{"two contacts, highest q first", []step{{[]string{"Contact: <" + c1 + ">;q=0.2, <" + c2 + ">;q=0.9"}, 200,
			[]string{"<" + c2 + ">;expires=3600;q=0.9", "<" + c1 + ">;expires=3600;q=0.2"}}}, 2},
		{"query lists the bindings", []step{
			{[]string{"Contact: <" + c1 + ">", "Expires: 600"}, 200, []string{"<" + c1 + ">;expires=600"}},
			{nil, 200, []string{"<" + c1 + ">;expires=600"}},
		}, 1},
		{"refresh keeps one binding", []step{
			{[]string{"Contact: <" + c1 + ">"}, 200, []string{"<" + c1 + ">;expires=3600"}},
			{[]string{"Contact: <" + c1 + ">", "Expires: 900"}, 200, []string{"<" + c1 + ">;expires=900"}},
		}, 1},
		{"expires=0 removes one", []step{
			{[]string{"Contact: <" + c1 + ">, <" + c2 + ">"}, 200, []string{"<" + c1 + ">;expires=3600", "<" + c2 + ">;expires=3600"}},
			{[]string{"Contact: <" + c1 + ">;expires=0"}, 200, []string{"<" + c2 + ">;expires=3600"}},
		}, 1},
		{"Expires: 0 removes", []step{
			{[]string{"Contact: <" + c1 + ">"}, 200, []string{"<" + c1 + ">;expires=3600"}},
			{[]string{"Contact: <" + c1 + ">", "Expires: 0"}, 200, nil},
		}, 0},
		{"* removes all", []step{
			{[]string{"Contact: <" + c1 + ">, <" + c2 + ">"}, 200, []string{"<" + c1 + ">;expires=3600", "<" + c2 + ">;expires=3600"}},
			{[]string{"Contact: *", "Expires: 0"}, 200, nil},
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			for i, s := range c.steps {
				u := h.send(register(t, append([]string{fmt.Sprintf("CSeq: %d REGISTER", i+1)}, s.hdrs...)...))
				res := u.final()
				require.Equal(t, s.code, res.StatusCode, "step %d: %s", i, res.Reason)
				assert.Equal(t, s.contacts, headerValues(res, "Contact"), "step %d", i)
				switch s.code {
				case 200:
					_, err := time.Parse(time.RFC1123, headerValue(res, "Date"))
					assert.NoError(t, err, "Date")
				case 423:
					assert.Equal(t, "60", headerValue(res, "Min-Expires"))
				}
				u.wait()
			}
			assert.Len(t, h.p.Reg.Lookup(registrar.AoR("sip:alice@example.com")), c.bound)
			assert.Equal(t, float64(c.bound), counter(h.p.m.RegistrationsActive))
			assert.Empty(t, h.next.requests(), "a REGISTER for our domain is not forwarded")
		})
	}
}

// TestRegisterBinding: what the registrar keeps of a REGISTER.
func TestRegisterBinding(t *testing.T) {
	h := newHarness(t, nil)
	req := newReq(t, "TCP", "REGISTER", "sip:example.com", "To: <sip:Alice@EXAMPLE.com>", "User-Agent: Zoiper",
		"Contact: <sip:alice@10.0.0.1:5070;transport=tcp>;expires=600;+sip.instance=\"<urn:uuid:1>\"")
	u := h.send(req)
	require.Equal(t, 200, u.final().StatusCode)
	u.wait()
	got := h.p.Reg.Lookup("sip:Alice@example.com")
	require.Len(t, got, 1)
	assert.Equal(t, "sip:alice@10.0.0.1:5070;transport=tcp", got[0].URI, "the URI without header params")
	assert.Equal(t, "tcp", got[0].Transport)
	assert.Equal(t, "10.0.0.1:5070", got[0].Source)
	assert.Equal(t, "Zoiper", got[0].UserAgent)
	assert.Equal(t, req.CallID().Value(), got[0].CallID)
}

// digestAuthorization answers challenge as a UA with password would
// (RFC 2617, qop=auth), with nonce-count 1.
func digestAuthorization(t *testing.T, challenge, user, password, method, uri string) string {
	t.Helper()
	return digestAuthorizationNC(t, challenge, user, password, method, uri, 1)
}

// digestAuthorizationNC is digestAuthorization with nonce-count nc.
func digestAuthorizationNC(t *testing.T, challenge, user, password, method, uri string, nc int) string {
	t.Helper()
	m := regexp.MustCompile(`realm="([^"]+)", nonce="([^"]+)"`).FindStringSubmatch(challenge)
	require.Len(t, m, 3, challenge)
	realm, nonce := m[1], m[2]
	md5hex := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	ha1 := md5hex(user + ":" + realm + ":" + password)
	ha2 := md5hex(method + ":" + uri)
	count := fmt.Sprintf("%08x", nc)
	resp := md5hex(ha1 + ":" + nonce + ":" + count + ":0a4f113b:auth:" + ha2)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, qop=auth, nc=%s, cnonce="0a4f113b"`,
		user, realm, nonce, uri, resp, count)
}

// authConfig turns digest auth on with alice:secret.
func authConfig(t *testing.T) *config.Config {
	cfg := testConfig()
	cfg.Registrar.Credentials = filepath.Join(t.TempDir(), "users")
	require.NoError(t, os.WriteFile(cfg.Registrar.Credentials, []byte("alice:secret\n"), 0o600))
	return cfg
}

// TestRegisterAuth: with credentials configured, REGISTER is challenged
// (401); wrong credentials are refused (403) and counted, and a user may
// only register its own AoR.
func TestRegisterAuth(t *testing.T) {
	cases := []struct {
		name     string
		auth     func(challenge string) string // the Authorization header; "" for none
		to       string
		code     int
		failures float64
	}{
		{"right password", func(ch string) string {
			return digestAuthorization(t, ch, "alice", "secret", "REGISTER", "sip:example.com")
		}, "alice", 200, 0},
		{"wrong password", func(ch string) string {
			return digestAuthorization(t, ch, "alice", "guess", "REGISTER", "sip:example.com")
		}, "alice", 403, 1},
		{"unknown user", func(ch string) string {
			return digestAuthorization(t, ch, "mallory", "secret", "REGISTER", "sip:example.com")
		}, "mallory", 403, 1},
		{"alice registering bob", func(ch string) string {
			return digestAuthorization(t, ch, "alice", "secret", "REGISTER", "sip:example.com")
		}, "bob", 403, 0},
		{"a nonce not issued here: challenged again", func(string) string {
			return digestAuthorization(t, `realm="example.com", nonce="5f5e100.0123456789abcdef0123456789abcdef"`,
				"alice", "secret", "REGISTER", "sip:example.com")
		}, "alice", 401, 1},
		{"malformed: challenged again", func(string) string { return "Digest garbage" }, "alice", 401, 1},
		{"none", func(string) string { return "" }, "alice", 401, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, authConfig(t))
			first := h.send(register(t, "Contact: <"+c1+">"))
			res := first.final()
			require.Equal(t, 401, res.StatusCode)
			challenge := headerValue(res, "WWW-Authenticate")
			assert.True(t, strings.HasPrefix(challenge, `Digest realm="example.com", nonce="`), challenge)
			first.wait()
			assert.Equal(t, 0.0, counter(h.p.m.AuthFailures), "no credentials is not a failure")

			hdrs := []string{"To: <sip:" + c.to + "@example.com>", "Contact: <" + c1 + ">", "CSeq: 2 REGISTER"}
			if a := c.auth(challenge); a != "" {
				hdrs = append(hdrs, "Authorization: "+a)
			}
			u := h.send(register(t, hdrs...))
			res = u.final()
			assert.Equal(t, c.code, res.StatusCode)
			if c.code == 401 {
				assert.True(t, strings.HasPrefix(headerValue(res, "WWW-Authenticate"), `Digest realm="example.com"`), "challenged again")
			}
			u.wait()
			assert.Equal(t, c.failures, counter(h.p.m.AuthFailures))
			want := 0
			if c.code == 200 {
				want = 1
			}
			assert.Len(t, h.p.Reg.Lookup(registrar.AoR("sip:"+c.to+"@example.com")), want)
		})
	}
}

// TestInviteAuth: an INVITE from a local user needs proxy authentication
// (407); the authenticated user is on the handler's request and in the
// CDR. INVITEs from other domains are not challenged.
func TestInviteAuth(t *testing.T) {
	cases := []struct {
		name     string
		from     string
		password string // "" for no Proxy-Authorization
		code     int    // upstream final
		authUser any    // in the CDR; nil for no CDR field
		cdr      bool
	}{
		{"local user, no credentials", "alice@example.com", "", 407, nil, false},
		{"local user, wrong password", "alice@example.com", "guess", 403, nil, false},
		{"local user, right password", "alice@example.com", "secret", 486, "alice", true},
		{"another domain is not challenged", "carol@elsewhere.test", "", 486, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, authConfig(t))
			h.bind("bob", "sip:bob@10.0.0.7:5062")
			h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respond(486, "Busy Here") }
			hdrs := []string{"From: <sip:" + c.from + ">;tag=f1"}
			if c.password != "" {
				ch := h.p.auth.Challenge("10.0.0.1", false) // newReq comes from 10.0.0.1
				hdrs = append(hdrs, "Proxy-Authorization: "+digestAuthorization(t, ch, "alice", c.password, "INVITE", "sip:bob@example.com"))
			}
			u := h.send(newReq(t, "UDP", "INVITE", "sip:bob@example.com", hdrs...))
			res := u.final()
			require.Equal(t, c.code, res.StatusCode)
			if c.code == 407 {
				assert.True(t, strings.HasPrefix(headerValue(res, "Proxy-Authenticate"), `Digest realm="example.com"`))
			}
			u.ack(res)
			u.wait()
			cdrs := h.callCDRs()
			if !c.cdr {
				assert.Empty(t, cdrs, "a challenged INVITE is not a call")
				assert.Empty(t, h.next.requests())
				return
			}
			require.Len(t, cdrs, 1)
			assert.Equal(t, c.authUser, cdrs[0]["auth_user"])
		})
	}
}

// TestRegisterCDR: with cdr.include_register, each REGISTER that binds or
// removes writes a CDR with its reg_event; a query writes none.
func TestRegisterCDR(t *testing.T) {
	for _, include := range []bool{true, false} {
		t.Run(fmt.Sprint("include_register=", include), func(t *testing.T) {
			cfg := testConfig()
			cfg.CDR.Enabled, cfg.CDR.IncludeRegister = true, include
			cfg.CDR.File.Path = filepath.Join(t.TempDir(), "cdr.jsonl")
			sink, err := cdrsink.New(cfg.CDR, discard, func(string) {}, func() {})
			require.NoError(t, err)
			h := newHarness(t, cfg, func(o *Options) { o.CDR = sink })
			for i, hdrs := range [][]string{
				{"Contact: <" + c1 + ">"},               // registered
				{"Contact: <" + c1 + ">"},               // refreshed
				nil,                                     // a query
				{"Contact: <" + c1 + ">", "Expires: 0"}, // deregistered
			} {
				u := h.send(register(t, append([]string{fmt.Sprintf("CSeq: %d REGISTER", i+1)}, hdrs...)...))
				require.Equal(t, 200, u.final().StatusCode)
				u.wait()
			}
			require.NoError(t, sink.Close(context.Background()))
			var events []string
			f, err := os.Open(cfg.CDR.File.Path)
			require.NoError(t, err)
			defer f.Close()
			for sc := bufio.NewScanner(f); sc.Scan(); {
				rec := decodeJSON(t, sc.Bytes())
				assert.Equal(t, "REGISTER", rec["method"])
				assert.Equal(t, "sip:alice@example.com", rec["to_uri"])
				assert.Equal(t, "10.0.0.1", rec["source_ip"])
				assert.Equal(t, "Zoiper", rec["user_agent"])
				events = append(events, rec["reg_event"].(string))
			}
			if !include {
				assert.Empty(t, events)
				return
			}
			assert.Equal(t, []string{"registered", "refreshed", "deregistered"}, events)
		})
	}
}

// TestLimiter: a token bucket per source address: burst at once, then
// rate per second; quiet sources are forgotten.
func TestLimiter(t *testing.T) {
	l := newLimiter(1, 2)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	l.swept = now
	steps := []struct {
		after time.Duration // since the previous step
		ip    string
		want  bool
	}{
		{0, "a", true},
		{0, "a", true},
		{0, "a", false}, // the burst is spent
		{0, "b", true},  // per source
		{500 * time.Millisecond, "a", false},
		{500 * time.Millisecond, "a", true}, // one token a second
		{0, "a", false},
		{30 * time.Second, "a", true}, // refilled up to the burst only
		{0, "a", true},
		{0, "a", false},
	}
	for i, s := range steps {
		now = now.Add(s.after)
		assert.Equal(t, s.want, l.allow(s.ip), "step %d (%s)", i, s.ip)
	}
	require.Len(t, l.buckets, 2)
	now = now.Add(2 * time.Minute)
	assert.True(t, l.allow("c"))
	assert.Equal(t, []string{"c"}, keys(l.buckets), "a and b were full again: forgotten")
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// withoutPerRequest is a response with what differs between two answers
// to the same request blanked: the To tag (a fresh one each answer) and
// the nonce of a challenge (a fresh one each challenge).
func withoutPerRequest(res *sip.Response) string {
	r := res.Clone()
	r.To().Params.Remove("tag")
	return regexp.MustCompile(`nonce="[^"]*"`).ReplaceAllString(r.String(), `nonce="-"`)
}

// TestAuthAnswersAlike: an unknown user gets the answer a known user with
// a wrong answer gets, byte for byte apart from the per-request fields,
// whatever the nonce: nothing tells which users exist.
func TestAuthAnswersAlike(t *testing.T) {
	const madeUp = `realm="example.com", nonce="5f5e100.1.0123456789abcdef0123456789abcdef"`
	cases := []struct {
		name  string
		nonce func(challenge string) string // the challenge answered
		code  int
	}{
		{"a made-up nonce", func(string) string { return madeUp }, 401},
		{"a nonce of ours", func(ch string) string { return ch }, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, authConfig(t))
			first := h.send(register(t, "Contact: <"+c1+">"))
			challenge := headerValue(first.final(), "WWW-Authenticate")
			first.wait()
			var answers []string
			for _, user := range []string{"alice", "mallory"} {
				// the same request but for the user name: same Call-ID,
				// tags and branch (each is its own transaction here)
				auth := digestAuthorization(t, c.nonce(challenge), user, "guess", "REGISTER", "sip:example.com")
				u := h.send(register(t, "To: <sip:alice@example.com>", "Contact: <"+c1+">", "CSeq: 2 REGISTER",
					"Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-same;rport", "From: <sip:alice@example.com>;tag=same",
					"Authorization: "+auth))
				res := u.final()
				assert.Equal(t, c.code, res.StatusCode, user)
				answers = append(answers, withoutPerRequest(res))
				u.wait()
			}
			assert.Equal(t, answers[0], answers[1])
			assert.Equal(t, 2.0, counter(h.p.m.AuthFailures), "both counted")
			assert.Empty(t, h.p.Reg.Lookup(registrar.AoR("sip:alice@example.com")))
		})
	}
}

// TestAuthReplay: a right Authorization captured and sent again, with
// another Call-ID and Contact, binds nothing: from another address its
// nonce is not ours (a new challenge), from the same address it was spent
// (REGISTER binds once: a new challenge, stale=true). A Proxy-Authorization
// of an INVITE may be used again only with a higher nonce-count.
func TestAuthReplay(t *testing.T) {
	t.Run("REGISTER", func(t *testing.T) {
		h := newHarness(t, authConfig(t))
		first := h.send(register(t, "Contact: <"+c1+">"))
		challenge := headerValue(first.final(), "WWW-Authenticate")
		first.wait()
		auth := "Authorization: " + digestAuthorization(t, challenge, "alice", "secret", "REGISTER", "sip:example.com")
		u := h.send(register(t, "Contact: <"+c1+">", "CSeq: 2 REGISTER", auth))
		require.Equal(t, 200, u.final().StatusCode)
		u.wait()

		for _, c := range []struct {
			source, stale string
		}{
			{"10.0.0.66:5070", ""},
			{"10.0.0.1:5070", ", stale=true"},
		} {
			replay := register(t, "Contact: <"+c2+">", "Call-ID: replay@evil", "CSeq: 1 REGISTER", auth)
			replay.SetSource(c.source)
			u := h.send(replay)
			res := u.final()
			assert.Equal(t, 401, res.StatusCode, c.source)
			assert.True(t, strings.HasSuffix(headerValue(res, "WWW-Authenticate"), `qop="auth"`+c.stale), "%s: %s", c.source, headerValue(res, "WWW-Authenticate"))
			u.wait()
		}
		got := h.p.Reg.Lookup(registrar.AoR("sip:alice@example.com"))
		require.Len(t, got, 1)
		assert.Equal(t, c1, got[0].URI, "the replays bound nothing")
		assert.Equal(t, 2.0, counter(h.p.m.AuthFailures))
	})
	t.Run("INVITE", func(t *testing.T) {
		h := newHarness(t, authConfig(t))
		h.bind("bob", "sip:bob@10.0.0.7:5062")
		h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respond(486, "Busy Here") }
		ch := h.p.auth.Challenge("10.0.0.1", false)
		for i, c := range []struct {
			nc   int
			uri  string
			code int
		}{
			{1, "sip:bob@example.com", 486},
			{1, "sip:bob@example.com", 407}, // replayed
			{2, "sip:bob@example.com", 486}, // the UA's next use
			{3, "sip:carol@example.com", 400},
		} {
			auth := digestAuthorizationNC(t, ch, "alice", "secret", "INVITE", c.uri, c.nc)
			u := h.send(newReq(t, "UDP", "INVITE", "sip:bob@example.com", "From: <sip:alice@example.com>;tag=f1", "Proxy-Authorization: "+auth))
			res := u.final()
			assert.Equal(t, c.code, res.StatusCode, "attempt %d", i)
			u.ack(res)
			u.wait()
		}
		assert.Len(t, h.next.requests(), 2, "two INVITEs authenticated")
	})
}
