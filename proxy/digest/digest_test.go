package digest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const realm = "example.com"

// answer builds a client's Authorization value for a challenge, as a UA
// would (RFC 2617 3.2.2): with qop, nonce-count nc.
func answer(t *testing.T, challenge, user, password, method, uri string, qop bool, nc ...int) string {
	t.Helper()
	p, ok := parse(challenge)
	require.True(t, ok, challenge)
	ha1 := HA1(user, p["realm"], password)
	ha2 := md5hex(method + ":" + uri)
	if !qop {
		resp := md5hex(ha1 + ":" + p["nonce"] + ":" + ha2)
		return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5`, user, p["realm"], p["nonce"], uri, resp)
	}
	count := fmt.Sprintf("%08x", append(nc, 1)[0])
	resp := md5hex(ha1 + ":" + p["nonce"] + ":" + count + ":0a4f113b:auth:" + ha2)
	return fmt.Sprintf(`Digest username="%s",realm="%s",nonce="%s",uri="%s",response="%s",algorithm=MD5,cnonce="0a4f113b",qop=auth,nc=%s`, user, p["realm"], p["nonce"], uri, resp, count)
}

func mustURI(t testing.TB, s string) sip.Uri {
	t.Helper()
	var u sip.Uri
	require.NoError(t, sip.ParseUri(s, &u))
	return u
}

const (
	client   = "192.0.2.10"
	attacker = "198.51.100.66"
)

// TestVerify: one check each, on a fresh nonce.
func TestVerify(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	a := New(realm, Credentials{"alice": HA1("alice", realm, "secret")})
	ch := func() string { a.now = func() time.Time { return now }; return a.Challenge(client, false) }
	assert.Contains(t, ch(), `realm="example.com"`)
	assert.Contains(t, ch(), `qop="auth"`)

	other := New(realm, a.Creds) // a different process key
	reg := func(h string) Attempt {
		return Attempt{Header: h, Method: "REGISTER", URI: mustURI(t, "sip:example.com"), Source: client}
	}
	tests := []struct {
		name    string
		attempt func() Attempt
		advance time.Duration
		want    error
	}{
		{"qop auth", func() Attempt { return reg(answer(t, ch(), "alice", "secret", "REGISTER", "sip:example.com", true)) }, 0, nil},
		{"rfc2069 style", func() Attempt {
			return Attempt{Header: answer(t, ch(), "alice", "secret", "INVITE", "sip:bob@example.com", false), Method: "INVITE",
				URI: mustURI(t, "sip:bob@example.com"), Source: client}
		}, 0, nil},
		{"wrong password", func() Attempt { return reg(answer(t, ch(), "alice", "guess", "REGISTER", "sip:example.com", true)) }, 0, ErrBadResponse},
		{"unknown user: the same as a wrong password", func() Attempt {
			return reg(answer(t, ch(), "mallory", "secret", "REGISTER", "sip:example.com", true))
		}, 0, ErrBadResponse},
		{"method replayed", func() Attempt {
			at := reg(answer(t, ch(), "alice", "secret", "REGISTER", "sip:example.com", true))
			at.Method = "INVITE"
			return at
		}, 0, ErrBadResponse},
		{"another Request-URI", func() Attempt {
			at := reg(answer(t, ch(), "alice", "secret", "REGISTER", "sip:example.com", true))
			at.URI = mustURI(t, "sip:other.example.com")
			return at
		}, 0, ErrURIMismatch},
		{"a digest-uri that is no URI", func() Attempt { return reg(answer(t, ch(), "alice", "secret", "REGISTER", "<>", true)) }, 0, ErrURIMismatch},
		{"from another address", func() Attempt {
			at := reg(answer(t, ch(), "alice", "secret", "REGISTER", "sip:example.com", true))
			at.Source = attacker
			return at
		}, 0, ErrBadNonce},
		{"nonce from elsewhere", func() Attempt {
			return reg(answer(t, other.Challenge(client, false), "alice", "secret", "REGISTER", "sip:example.com", true))
		}, 0, ErrBadNonce},
		{"made-up nonce, known user", func() Attempt {
			return reg(answer(t, `Digest realm="example.com", nonce="5f5e100.1.0123456789abcdef0123456789abcdef"`, "alice", "secret", "REGISTER", "sip:example.com", true))
		}, 0, ErrBadNonce},
		{"made-up nonce, unknown user", func() Attempt {
			return reg(answer(t, `Digest realm="example.com", nonce="5f5e100.1.0123456789abcdef0123456789abcdef"`, "mallory", "secret", "REGISTER", "sip:example.com", true))
		}, 0, ErrBadNonce},
		{"stale nonce", func() Attempt { return reg(answer(t, ch(), "alice", "secret", "REGISTER", "sip:example.com", true)) }, 6 * time.Minute, ErrStaleNonce},
		{"none", func() Attempt { return reg("") }, 0, ErrNoCredentials},
		{"basic", func() Attempt { return reg("Basic YWxpY2U6c2VjcmV0") }, 0, ErrMalformed},
		{"missing response", func() Attempt { return reg(`Digest username="alice", nonce="1.2.3", uri="sip:example.com"`) }, 0, ErrMalformed},
		{"qop without nc", func() Attempt {
			return reg(strings.Replace(answer(t, ch(), "alice", "secret", "REGISTER", "sip:example.com", true), ",nc=00000001", "", 1))
		}, 0, ErrMalformed},
		{"nonce-count 0", func() Attempt { return reg(answer(t, ch(), "alice", "secret", "REGISTER", "sip:example.com", true, 0)) }, 0, ErrMalformed},
		{"other realm", func() Attempt {
			return reg(strings.Replace(answer(t, ch(), "alice", "secret", "REGISTER", "sip:example.com", true), `realm="example.com"`, `realm="evil"`, 1))
		}, 0, ErrMalformed},
		{"unterminated quote", func() Attempt { return reg(`Digest username="alice`) }, 0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := tt.attempt()
			a.now = func() time.Time { return now.Add(tt.advance) }
			user, err := a.Verify(at)
			if tt.want == nil {
				require.NoError(t, err)
				assert.Equal(t, "alice", user)
				return
			}
			assert.True(t, errors.Is(err, tt.want), "got %v, want %v", err, tt.want)
		})
	}
	assert.Contains(t, a.Challenge(client, true), "stale=true")
	assert.True(t, a.Known("alice"))
	assert.False(t, a.Known("bob"))
}

// TestReplay: what a captured right answer is worth a second time. Each
// step answers the first challenge (or a fresh one) and is checked in
// order on one authenticator.
func TestReplay(t *testing.T) {
	type step struct {
		fresh   bool   // answer a new challenge instead of the first
		method  string // REGISTER (one-time) or INVITE
		qop     bool
		nc      int
		source  string
		advance time.Duration // since the first challenge
		want    error
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"INVITE: each nonce-count once, counting up", []step{
			{method: "INVITE", qop: true, nc: 1, source: client},
			{method: "INVITE", qop: true, nc: 1, source: client, want: ErrReplayed},
			{method: "INVITE", qop: true, nc: 3, source: client},
			{method: "INVITE", qop: true, nc: 2, source: client, want: ErrReplayed},
			{method: "INVITE", qop: true, nc: 3, source: attacker, want: ErrBadNonce},
			{method: "INVITE", qop: true, nc: 4, source: client, advance: 4 * time.Minute},
			{method: "INVITE", qop: true, nc: 5, source: client, advance: 6 * time.Minute, want: ErrStaleNonce},
		}},
		{"REGISTER: a nonce binds once", []step{
			{method: "REGISTER", qop: true, nc: 1, source: client},
			{method: "REGISTER", qop: true, nc: 1, source: client, want: ErrReplayed},
			{method: "REGISTER", qop: true, nc: 2, source: client, want: ErrReplayed},
			{method: "REGISTER", qop: true, nc: 1, source: attacker, want: ErrBadNonce},
			{fresh: true, method: "REGISTER", qop: true, nc: 1, source: client},
		}},
		{"no qop: one use", []step{
			{method: "INVITE", source: client},
			{method: "INVITE", source: client, want: ErrReplayed},
		}},
		{"a replayed wrong answer spends nothing", []step{
			{method: "INVITE", qop: true, nc: 1, source: attacker, want: ErrBadNonce},
			{method: "INVITE", qop: true, nc: 1, source: client},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
			a := New(realm, Credentials{"alice": HA1("alice", realm, "secret")})
			a.now = func() time.Time { return now }
			first := a.Challenge(client, false)
			for i, s := range c.steps {
				a.now = func() time.Time { return now.Add(s.advance) }
				ch := first
				if s.fresh {
					ch = a.Challenge(client, false)
				}
				uri := "sip:bob@example.com"
				if s.method == "REGISTER" {
					uri = "sip:example.com"
				}
				at := Attempt{Header: answer(t, ch, "alice", "secret", s.method, uri, s.qop, s.nc), Method: s.method,
					URI: mustURI(t, uri), Source: s.source, OneTime: s.method == "REGISTER"}
				_, err := a.Verify(at)
				if s.want == nil {
					assert.NoError(t, err, "step %d", i)
				} else {
					assert.ErrorIs(t, err, s.want, "step %d", i)
				}
			}
		})
	}
}

// TestTracking: used nonces are remembered until they expire, and no
// more than MaxTracked at once.
func TestTracking(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	a := New(realm, Credentials{"alice": HA1("alice", realm, "secret")})
	a.MaxTracked = 3
	a.now = func() time.Time { return now }
	use := func() error {
		_, err := a.Verify(Attempt{Header: answer(t, a.Challenge(client, false), "alice", "secret", "INVITE", "sip:bob@example.com", true),
			Method: "INVITE", URI: mustURI(t, "sip:bob@example.com"), Source: client})
		return err
	}
	for i := range 3 {
		require.NoError(t, use(), "nonce %d", i)
	}
	assert.Equal(t, 3, a.Tracked())
	assert.ErrorIs(t, use(), ErrTooManyNonces, "full")
	now = now.Add(a.NonceTTL + time.Second)
	require.NoError(t, use(), "the first three expired")
	assert.Equal(t, 1, a.Tracked(), "expired nonces are forgotten")
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "users")
	require.NoError(t, os.WriteFile(good, []byte("# users\n\nalice:secret\nbob:ha1:"+HA1("bob", realm, "pw")+"\n"), 0o600))
	creds, err := Load(good, realm)
	require.NoError(t, err)
	assert.Equal(t, Credentials{"alice": HA1("alice", realm, "secret"), "bob": HA1("bob", realm, "pw")}, creds)

	for name, body := range map[string]string{
		"no colon":  "alice\n",
		"short ha1": "bob:ha1:abc\n",
		"empty pw":  "carol:\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		_, err := Load(p, realm)
		assert.ErrorContains(t, err, "line 1", name)
	}
	_, err = Load(filepath.Join(dir, "missing"), realm)
	assert.Error(t, err)
}

// FuzzVerify feeds arbitrary Authorization headers: never a panic, and
// nothing forged is accepted.
func FuzzVerify(f *testing.F) {
	a := New(realm, Credentials{"alice": HA1("alice", realm, "secret")})
	f.Add(`Digest username="alice", realm="example.com", nonce="1.2", uri="sip:x", response="00"`)
	f.Add(`Digest username=alice,nonce=,uri="`)
	f.Add(`Digest ==,"",`)
	uri := mustURI(f, "sip:example.com")
	f.Fuzz(func(t *testing.T, h string) {
		if _, err := a.Verify(Attempt{Header: h, Method: "REGISTER", URI: uri, Source: client}); err == nil {
			t.Fatalf("accepted forged credentials %q", h)
		}
	})
}
