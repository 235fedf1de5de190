// Package digest is the server side of SIP digest authentication (RFC 3261
// 22, RFC 2617 with qop=auth) against a static credentials file.
package digest

import (
	"bufio"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Credentials map user names to HA1 = MD5(user:realm:password).
type Credentials map[string]string

// Load reads "user:password" lines, or "user:ha1:<32 hex>" for a stored
// HA1. Blank lines and # comments are skipped.
func Load(path, realm string) (Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("digest: %w", err)
	}
	defer f.Close()
	creds := Credentials{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, secret, ok := strings.Cut(line, ":")
		if !ok || user == "" || secret == "" {
			return nil, fmt.Errorf("digest: %s line %d: want user:password", path, n)
		}
		if h, ok := strings.CutPrefix(secret, "ha1:"); ok {
			if _, err := hex.DecodeString(h); err != nil || len(h) != 32 {
				return nil, fmt.Errorf("digest: %s line %d: ha1 must be 32 hex digits", path, n)
			}
			creds[user] = strings.ToLower(h)
			continue
		}
		creds[user] = HA1(user, realm, secret)
	}
	return creds, sc.Err()
}

// HA1 computes MD5(user:realm:password) in hex.
func HA1(user, realm, password string) string { return md5hex(user + ":" + realm + ":" + password) }

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Authenticator issues challenges and checks responses. Nonces are
// stateless: a timestamp signed with a per-process key, valid for NonceTTL.
type Authenticator struct {
	Realm    string
	Creds    Credentials
	NonceTTL time.Duration
	key      [32]byte
	now      func() time.Time
}

// New returns an authenticator with a fresh nonce key.
func New(realm string, creds Credentials) *Authenticator {
	a := &Authenticator{Realm: realm, Creds: creds, NonceTTL: 5 * time.Minute, now: time.Now}
	_, _ = rand.Read(a.key[:])
	return a
}

// Known reports whether a user has credentials.
func (a *Authenticator) Known(user string) bool { _, ok := a.Creds[user]; return ok }

func (a *Authenticator) nonce(t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 16)
	m := hmac.New(sha256.New, a.key[:])
	m.Write([]byte(ts))
	return ts + "." + hex.EncodeToString(m.Sum(nil))[:32]
}

// Challenge returns a WWW-Authenticate (or Proxy-Authenticate) value.
func (a *Authenticator) Challenge(stale bool) string {
	v := fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=MD5, qop="auth"`, a.Realm, a.nonce(a.now()))
	if stale {
		v += ", stale=true"
	}
	return v
}

// Failure reasons.
var (
	ErrNoCredentials = errors.New("digest: no Authorization header")
	ErrUnknownUser   = errors.New("digest: unknown user")
	ErrStaleNonce    = errors.New("digest: nonce expired")
	ErrBadNonce      = errors.New("digest: nonce not issued here")
	ErrBadResponse   = errors.New("digest: wrong response")
	ErrMalformed     = errors.New("digest: malformed Authorization header")
)

// Verify checks an Authorization header for method; it returns the user.
func (a *Authenticator) Verify(header, method string) (string, error) {
	if header == "" {
		return "", ErrNoCredentials
	}
	p, ok := parse(header)
	if !ok {
		return "", ErrMalformed
	}
	user, nonce, uri, resp := p["username"], p["nonce"], p["uri"], p["response"]
	if user == "" || nonce == "" || uri == "" || resp == "" || (p["realm"] != "" && p["realm"] != a.Realm) {
		return user, ErrMalformed
	}
	ha1, known := a.Creds[user]
	if !known {
		return user, ErrUnknownUser
	}
	ts, _, ok := strings.Cut(nonce, ".")
	sec, err := strconv.ParseInt(ts, 16, 64)
	if !ok || err != nil || subtle.ConstantTimeCompare([]byte(a.nonce(time.Unix(sec, 0))), []byte(nonce)) != 1 {
		return user, ErrBadNonce
	}
	ha2 := md5hex(method + ":" + uri)
	var want string
	if qop := p["qop"]; qop != "" {
		want = md5hex(ha1 + ":" + nonce + ":" + p["nc"] + ":" + p["cnonce"] + ":" + qop + ":" + ha2)
	} else {
		want = md5hex(ha1 + ":" + nonce + ":" + ha2)
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(resp))) != 1 {
		return user, ErrBadResponse
	}
	if a.now().Sub(time.Unix(sec, 0)) > a.NonceTTL {
		return user, ErrStaleNonce
	}
	return user, nil
}

// parse reads `Digest k="v", k=v` parameters.
func parse(h string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(h), "Digest ")
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil, false
		}
		k := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimSpace(rest[eq+1:])
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, false
			}
			v, rest = rest[1:end+1], rest[end+2:]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			v, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		out[k] = v
		rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ","))
	}
	return out, true
}
