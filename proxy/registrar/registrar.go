// Package registrar is the location service: address-of-record bindings
// from REGISTER, with per-contact expiry and q values (RFC 3261 section 10).
package registrar

import (
	"sort"
	"strings"
	"sync"
	"time"
)

// Contact is one binding of an AoR.
type Contact struct {
	URI       string    `json:"uri"`
	Q         float64   `json:"q"`
	Expires   time.Time `json:"-"`
	CallID    string    `json:"-"`
	CSeq      uint32    `json:"-"`
	Source    string    `json:"-"` // where the REGISTER came from (host:port)
	Transport string    `json:"-"`
	UserAgent string    `json:"-"`
}

// Binding is a Contact asked for in one REGISTER.
type Binding struct {
	URI     string
	Expires int // seconds; 0 removes
	Q       float64
}

// Event says what a REGISTER did, for REGISTER CDRs (SIPhon's reg_event).
type Event string

// Registration events.
const (
	Registered   Event = "registered"
	Refreshed    Event = "refreshed"
	Deregistered Event = "deregistered"
	Expired      Event = "expired"
)

// Registrar holds the bindings.
type Registrar struct {
	mu   sync.Mutex
	aors map[string][]Contact
	gone map[string]time.Time // AoRs whose bindings all went away, and when
	now  func() time.Time
	// OnCount is told the number of bindings whenever it changes.
	OnCount func(n int)
}

// New returns an empty registrar.
func New() *Registrar {
	return &Registrar{aors: map[string][]Contact{}, gone: map[string]time.Time{}, now: time.Now, OnCount: func(int) {}}
}

// AoR normalises a SIP URI to its address of record: scheme, user and host
// (lower-cased), without port or parameters.
func AoR(uri string) string {
	s := uri
	if i := strings.IndexAny(s, ";?>"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimPrefix(strings.TrimSpace(s), "<")
	scheme := "sip"
	if rest, ok := strings.CutPrefix(strings.ToLower(s), "sips:"); ok {
		scheme, s = "sips", s[len(s)-len(rest):]
	} else if strings.HasPrefix(strings.ToLower(s), "sip:") {
		s = s[4:]
	}
	user, host, ok := strings.Cut(s, "@")
	if !ok {
		host, user = user, ""
	}
	if h, _, found := strings.Cut(host, ":"); found && !strings.HasPrefix(host, "[") {
		host = h
	}
	host = strings.ToLower(host)
	if user == "" {
		return scheme + ":" + host
	}
	return scheme + ":" + user + "@" + host
}

// Update applies one REGISTER's bindings (RFC 3261 10.3 steps 6-8). A
// binding with Expires 0 removes it; "*" with Expires 0 removes all. It
// returns the AoR's bindings after the update and what happened: any new
// contact makes it "registered", else any removal "deregistered", else
// "refreshed". A query (no bindings) changes nothing and returns "".
func (r *Registrar) Update(aor string, bindings []Binding, callID string, cseq uint32, source, transport, ua string) ([]Contact, Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	current := r.live(aor, now)
	if len(bindings) == 0 {
		return sorted(current), ""
	}
	added, removed := false, false
	for _, b := range bindings {
		if b.URI == "*" {
			if b.Expires == 0 {
				removed = removed || len(current) > 0
				current = nil
			}
			continue
		}
		i := index(current, b.URI)
		if b.Expires == 0 {
			if i >= 0 {
				current = append(current[:i], current[i+1:]...)
				removed = true
			}
			continue
		}
		c := Contact{URI: b.URI, Q: b.Q, Expires: now.Add(time.Duration(b.Expires) * time.Second),
			CallID: callID, CSeq: cseq, Source: source, Transport: transport, UserAgent: ua}
		if i >= 0 {
			current[i] = c
		} else {
			current = append(current, c)
			added = true
		}
	}
	r.set(aor, current)
	switch {
	case added:
		return sorted(current), Registered
	case removed || len(current) == 0:
		return sorted(current), Deregistered
	default:
		return sorted(current), Refreshed
	}
}

func index(cs []Contact, uri string) int {
	for i, c := range cs {
		if c.URI == uri {
			return i
		}
	}
	return -1
}

func (r *Registrar) set(aor string, cs []Contact) {
	if len(cs) == 0 {
		if _, had := r.aors[aor]; had {
			r.forget(aor, r.now())
		}
		delete(r.aors, aor)
	} else {
		r.aors[aor] = cs
		delete(r.gone, aor)
	}
	r.OnCount(r.countLocked())
}

func (r *Registrar) countLocked() int {
	n := 0
	for _, cs := range r.aors {
		n += len(cs)
	}
	return n
}

// live returns the unexpired bindings of aor (a copy).
func (r *Registrar) live(aor string, now time.Time) []Contact {
	var out []Contact
	for _, c := range r.aors[aor] {
		if c.Expires.After(now) {
			out = append(out, c)
		}
	}
	return out
}

// Lookup returns an AoR's live bindings, highest q first.
func (r *Registrar) Lookup(aor string) []Contact {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sorted(r.live(aor, r.now()))
}

func sorted(cs []Contact) []Contact {
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Q > cs[j].Q })
	return cs
}

// Remove deletes every binding of aor; false when it had none.
func (r *Registrar) Remove(aor string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.aors[aor]; !ok {
		return false
	}
	r.set(aor, nil)
	return true
}

// All returns every AoR's live bindings.
func (r *Registrar) All() map[string][]Contact {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	out := map[string][]Contact{}
	for aor := range r.aors {
		if cs := r.live(aor, now); len(cs) > 0 {
			out[aor] = sorted(cs)
		}
	}
	return out
}

// Count returns the number of bindings.
func (r *Registrar) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.countLocked()
}

// ExpiredBinding is a binding the sweep removed.
type ExpiredBinding struct {
	AoR     string
	Contact Contact
}

// Sweep removes expired bindings and returns them.
func (r *Registrar) Sweep() []ExpiredBinding {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	var gone []ExpiredBinding
	changed := false
	for aor, cs := range r.aors {
		keep := cs[:0]
		for _, c := range cs {
			if c.Expires.After(now) {
				keep = append(keep, c)
			} else {
				gone = append(gone, ExpiredBinding{aor, c})
				changed = true
			}
		}
		if len(keep) == 0 {
			delete(r.aors, aor)
			r.forget(aor, now)
		} else {
			r.aors[aor] = keep
		}
	}
	for aor, at := range r.gone {
		if now.Sub(at) > KnownFor {
			delete(r.gone, aor)
		}
	}
	if changed {
		r.OnCount(r.countLocked())
	}
	return gone
}

// KnownFor is how long an AoR whose bindings all went away still counts
// as known: a call to it gets 480 (known, not reachable now) rather than
// 404 (no such user).
const KnownFor = 24 * time.Hour

// maxGone bounds the memory of known-but-offline AoRs (~100 bytes each).
const maxGone = 100_000

// forget moves an AoR to the recently-known set.
func (r *Registrar) forget(aor string, now time.Time) {
	if len(r.gone) >= maxGone {
		return // full: a later Sweep prunes; until then it answers 404
	}
	r.gone[aor] = now
}

// Known reports whether aor has bindings now or had some within KnownFor.
func (r *Registrar) Known(aor string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.aors[aor]; ok {
		return true
	}
	at, ok := r.gone[aor]
	return ok && r.now().Sub(at) <= KnownFor
}
