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
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
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

// Authenticator issues challenges and checks responses.
//
// A nonce is stateless until it is used: "<issued, hex>.<id, hex>.<mac>",
// the mac an HMAC-SHA256 with a per-process key over the issue time, the id
// and the IP address the challenge went to, so it only verifies for
// requests from that address, for NonceTTL. Once a response with it is
// right, its use is remembered until it expires: with qop=auth each
// nonce-count is accepted once and must grow (RFC 2617 3.2.2); without qop,
// and for REGISTER, the nonce authenticates one request only (Kamailio's
// nonce_count and one_time_nonce, with its auth_checks source-IP binding).
// The digest-uri must name the Request-URI (RFC 2617 3.2.2.5).
type Authenticator struct {
	Realm    string
	Creds    Credentials
	NonceTTL time.Duration
	// MaxTracked bounds the nonces whose use is remembered; past it a new
	// nonce's first use is refused (ErrTooManyNonces) until older ones
	// expire.
	MaxTracked int

	key   [32]byte
	dummy string // the HA1 an unknown user is checked against
	ids   atomic.Uint64
	now   func() time.Time

	mu    sync.Mutex
	used  map[uint64]uint64 // nonce id -> highest nonce-count accepted (burnt: math.MaxUint64)
	order []usedNonce       // used's ids in order of first use, for expiry
	head  int               // order[head:] is live
}

type usedNonce struct {
	id      uint64
	expires time.Time
}

// DefaultMaxTracked is MaxTracked's default: about 50 MB when full, a
// nonce's first use at a sustained 3,500/s over a 5-minute lifetime.
const DefaultMaxTracked = 1 << 20

// New returns an authenticator with a fresh nonce key.
func New(realm string, creds Credentials) *Authenticator {
	a := &Authenticator{Realm: realm, Creds: creds, NonceTTL: 5 * time.Minute, MaxTracked: DefaultMaxTracked,
		now: time.Now, used: map[uint64]uint64{}}
	_, _ = rand.Read(a.key[:])
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	a.ids.Store(binary.BigEndian.Uint64(seed[:]))
	// a password nobody knows: an unknown user's answer is checked as
	// a known user's wrong one would be, with the same hashing
	a.dummy = HA1("", realm, hex.EncodeToString(a.key[:]))
	return a
}

// Known reports whether a user has credentials.
func (a *Authenticator) Known(user string) bool { _, ok := a.Creds[user]; return ok }

// mac binds a nonce's issue time and id to the address it was issued to.
func (a *Authenticator) mac(ts, id, source string) string {
	m := hmac.New(sha256.New, a.key[:])
	m.Write([]byte(ts + "." + id + "|" + source))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// Challenge returns a WWW-Authenticate (or Proxy-Authenticate) value with
// a nonce for requests from source (an IP address).
func (a *Authenticator) Challenge(source string, stale bool) string {
	ts := strconv.FormatInt(a.now().Unix(), 16)
	id := strconv.FormatUint(a.ids.Add(1), 16)
	nonce := ts + "." + id + "." + a.mac(ts, id, source)
	v := fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=MD5, qop="auth"`, a.Realm, nonce)
	if stale {
		v += ", stale=true"
	}
	return v
}

// Failure reasons. An unknown user is ErrBadResponse, as a wrong answer
// is: nothing tells the two apart.
var (
	ErrNoCredentials = errors.New("digest: no Authorization header")
	ErrStaleNonce    = errors.New("digest: nonce expired")
	ErrBadNonce      = errors.New("digest: nonce not issued here, or to another address")
	ErrBadResponse   = errors.New("digest: wrong response")
	ErrMalformed     = errors.New("digest: malformed Authorization header")
	ErrURIMismatch   = errors.New("digest: digest-uri is not the Request-URI")
	ErrReplayed      = errors.New("digest: nonce-count already used")
	ErrTooManyNonces = errors.New("digest: too many nonces in use")
)

// Attempt is a request's credentials and what they must match.
type Attempt struct {
	Header string  // the Authorization or Proxy-Authorization value
	Method string  // the request's method
	URI    sip.Uri // the Request-URI
	Source string  // the IP address the request came from
	// OneTime spends the nonce on this request whatever its nonce-count
	// (REGISTER: the request that binds contacts).
	OneTime bool
}

// Verify checks an attempt; it returns the user. The checks that do not
// depend on the user come first, and an unknown user costs the same
// hashing as a known one, so the outcome and its timing tell nothing about
// which users exist.
func (a *Authenticator) Verify(at Attempt) (string, error) {
	if at.Header == "" {
		return "", ErrNoCredentials
	}
	p, ok := parse(at.Header)
	if !ok {
		return "", ErrMalformed
	}
	user, nonce, uri, resp := p["username"], p["nonce"], p["uri"], p["response"]
	if user == "" || nonce == "" || uri == "" || resp == "" || (p["realm"] != "" && p["realm"] != a.Realm) {
		return user, ErrMalformed
	}
	qop, nc := p["qop"], uint64(0)
	if qop != "" {
		n, err := strconv.ParseUint(p["nc"], 16, 32)
		if qop != "auth" || p["cnonce"] == "" || len(p["nc"]) > 8 || err != nil || n == 0 {
			return user, ErrMalformed
		}
		nc = n
	}
	if !sameResource(uri, at.URI) {
		return user, ErrURIMismatch
	}
	parts := strings.Split(nonce, ".")
	if len(parts) != 3 || subtle.ConstantTimeCompare([]byte(a.mac(parts[0], parts[1], at.Source)), []byte(parts[2])) != 1 {
		return user, ErrBadNonce
	}
	issued, err1 := strconv.ParseInt(parts[0], 16, 64)
	id, err2 := strconv.ParseUint(parts[1], 16, 64)
	if err1 != nil || err2 != nil {
		return user, ErrBadNonce // ours, so never: the mac covers both
	}
	ha1, known := a.Creds[user]
	if !known {
		ha1 = a.dummy
	}
	ha2 := md5hex(at.Method + ":" + uri)
	var want string
	if qop != "" {
		want = md5hex(ha1 + ":" + nonce + ":" + p["nc"] + ":" + p["cnonce"] + ":" + qop + ":" + ha2)
	} else {
		want = md5hex(ha1 + ":" + nonce + ":" + ha2)
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(resp))) != 1 || !known {
		return user, ErrBadResponse
	}
	expires := time.Unix(issued, 0).Add(a.NonceTTL)
	now := a.now()
	if now.After(expires) {
		return user, ErrStaleNonce
	}
	// without qop there is no count to check: one use
	if err := a.spend(id, nc, at.OneTime || qop == "", expires, now); err != nil {
		return user, err
	}
	return user, nil
}

// spend records a right answer's use of a nonce: its nonce-count must be
// above every one accepted before, and a one-time use burns the nonce.
func (a *Authenticator) spend(id, nc uint64, oneTime bool, expires, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for a.head < len(a.order) && !now.Before(a.order[a.head].expires) {
		delete(a.used, a.order[a.head].id)
		a.order[a.head] = usedNonce{}
		a.head++
	}
	if a.head > len(a.order)/2 {
		a.order = append(a.order[:0], a.order[a.head:]...)
		a.head = 0
	}
	prev, seen := a.used[id]
	if seen && nc <= prev {
		return ErrReplayed
	}
	if !seen {
		if len(a.used) >= a.MaxTracked {
			return ErrTooManyNonces
		}
		a.order = append(a.order, usedNonce{id: id, expires: expires})
	}
	if oneTime {
		nc = math.MaxUint64
	}
	a.used[id] = nc
	return nil
}

// Tracked is how many nonces have their use remembered.
func (a *Authenticator) Tracked() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.used)
}

// sameResource reports whether a digest-uri names the Request-URI:
// scheme, user, host and port (RFC 3261 19.1.4 compares more, but a
// UA may render the parameters differently from the request line).
func sameResource(digestURI string, ruri sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, ruri.Scheme) && u.User == ruri.User &&
		strings.EqualFold(u.Host, ruri.Host) && u.Port == ruri.Port
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
