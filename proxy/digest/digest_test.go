package digest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const realm = "example.com"

// answer builds a client's Authorization value for a challenge, as a UA
// would (RFC 2617 3.2.2).
func answer(t *testing.T, challenge, user, password, method, uri string, qop bool) string {
	t.Helper()
	p, ok := parse(challenge)
	require.True(t, ok, challenge)
	ha1 := HA1(user, p["realm"], password)
	ha2 := md5hex(method + ":" + uri)
	if !qop {
		resp := md5hex(ha1 + ":" + p["nonce"] + ":" + ha2)
		return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5`, user, p["realm"], p["nonce"], uri, resp)
	}
	resp := md5hex(ha1 + ":" + p["nonce"] + ":00000001:0a4f113b:auth:" + ha2)
	return fmt.Sprintf(`Digest username="%s",realm="%s",nonce="%s",uri="%s",response="%s",algorithm=MD5,cnonce="0a4f113b",qop=auth,nc=00000001`, user, p["realm"], p["nonce"], uri, resp)
}

func TestVerify(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	a := New(realm, Credentials{"alice": HA1("alice", realm, "secret")})
	a.now = func() time.Time { return now }
	ch := a.Challenge(false)
	assert.Contains(t, ch, `realm="example.com"`)
	assert.Contains(t, ch, `qop="auth"`)

	other := New(realm, a.Creds) // a different process key
	tests := []struct {
		name    string
		header  string
		method  string
		advance time.Duration
		want    error
	}{
		{"qop auth", answer(t, ch, "alice", "secret", "REGISTER", "sip:example.com", true), "REGISTER", 0, nil},
		{"rfc2069 style", answer(t, ch, "alice", "secret", "INVITE", "sip:bob@example.com", false), "INVITE", 0, nil},
		{"wrong password", answer(t, ch, "alice", "guess", "REGISTER", "sip:example.com", true), "REGISTER", 0, ErrBadResponse},
		{"method replayed", answer(t, ch, "alice", "secret", "REGISTER", "sip:example.com", true), "INVITE", 0, ErrBadResponse},
		{"unknown user", answer(t, ch, "mallory", "secret", "REGISTER", "sip:example.com", true), "REGISTER", 0, ErrUnknownUser},
		{"nonce from elsewhere", answer(t, other.Challenge(false), "alice", "secret", "REGISTER", "sip:example.com", true), "REGISTER", 0, ErrBadNonce},
		{"stale nonce", answer(t, ch, "alice", "secret", "REGISTER", "sip:example.com", true), "REGISTER", 6 * time.Minute, ErrStaleNonce},
		{"none", "", "REGISTER", 0, ErrNoCredentials},
		{"basic", "Basic YWxpY2U6c2VjcmV0", "REGISTER", 0, ErrMalformed},
		{"missing response", `Digest username="alice", nonce="1.2", uri="sip:x"`, "REGISTER", 0, ErrMalformed},
		{"other realm", strings.Replace(answer(t, ch, "alice", "secret", "REGISTER", "sip:x", true), `realm="example.com"`, `realm="evil"`, 1), "REGISTER", 0, ErrMalformed},
		{"unterminated quote", `Digest username="alice`, "REGISTER", 0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.now = func() time.Time { return now.Add(tt.advance) }
			user, err := a.Verify(tt.header, tt.method)
			if tt.want == nil {
				require.NoError(t, err)
				assert.Equal(t, "alice", user)
				return
			}
			assert.True(t, errors.Is(err, tt.want), "got %v, want %v", err, tt.want)
		})
	}
	assert.Contains(t, a.Challenge(true), "stale=true")
	assert.True(t, a.Known("alice"))
	assert.False(t, a.Known("bob"))
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
	f.Fuzz(func(t *testing.T, h string) {
		if _, err := a.Verify(h, "REGISTER"); err == nil {
			t.Fatalf("accepted forged credentials %q", h)
		}
	})
}
