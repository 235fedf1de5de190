package sipcorr

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
)

// Source is one place a correlation key may come from, as configured:
// exactly one of Header and HEPCorrelationID.
//
//   - header: X-CID               the header's value is the key (a Call-ID)
//   - header: P-Charging-Vector   its icid-value parameter (RFC 7315)
//   - header: Session-ID          the originating UA's UUID (RFC 7989)
//   - header: <name>, regex: <re> the first group of re in the header's value
//   - hep_correlation_id: true    HEP chunk 0x11 when it differs from the Call-ID
type Source struct {
	Header           string `mapstructure:"header"`
	Regex            string `mapstructure:"regex"`
	HEPCorrelationID bool   `mapstructure:"hep_correlation_id"`
}

// DefaultSources are the sources of section 1 of docs/call-traces.md that
// need no setting, in its order.
func DefaultSources() []Source {
	return []Source{{Header: "X-CID"}, {Header: "P-Charging-Vector"}, {Header: "Session-ID"}, {HEPCorrelationID: true}}
}

// MaxKeyLength bounds a key taken from a message: a longer value is
// malformed (a key is carried on every record of its call and held in the
// table).
const MaxKeyLength = 256

// Kind is how a record got its key; its String is the label of the
// records counter.
type Kind uint8

// Kinds. The first five are the sources; a record counted under one of
// them established its Call-ID's key.
const (
	KindHeader           Kind = iota // a header's value
	KindPChargingVector              // P-Charging-Vector icid-value
	KindSessionID                    // Session-ID UUID
	KindRegex                        // a header's value through a regex
	KindHEPCorrelationID             // HEP chunk 0x11
	KindTable                        // the key its Call-ID's first matching message established
	KindCallID                       // no source matched: its own Call-ID
	KindUpstream                     // it came with sip.correlation_id, kept
	KindNoCallID                     // no Call-ID: left without the attribute
	numKinds
)

var kindNames = [numKinds]string{"header", "p_charging_vector", "session_id", "regex", "hep_correlation_id",
	"table", "call_id", "upstream", "no_call_id"}

func (k Kind) String() string { return kindNames[k] }

// Kinds lists every Kind, in order.
func Kinds() []Kind {
	out := make([]Kind, numKinds)
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}

// source is a compiled Source.
type source struct {
	kind Kind
	name sipmsg.Name
	re   *regexp.Regexp
}

// compile checks sources and builds them; the error names each bad entry.
func compile(sources []Source) ([]source, error) {
	var errs []error
	out := make([]source, 0, len(sources))
	seen := map[Source]bool{}
	for i, s := range sources {
		c, err := s.compile()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("sources[%d]: %w", i, err))
		case seen[normal(s)]:
			errs = append(errs, fmt.Errorf("sources[%d]: the same source as an earlier one", i))
		}
		seen[normal(s)] = true
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// normal is s with its header name in the case compared.
func normal(s Source) Source {
	s.Header = strings.ToLower(s.Header)
	return s
}

func (s Source) compile() (source, error) {
	switch {
	case s.HEPCorrelationID && (s.Header != "" || s.Regex != ""):
		return source{}, errors.New("hep_correlation_id takes no header or regex")
	case s.HEPCorrelationID:
		return source{kind: KindHEPCorrelationID}, nil
	case s.Header == "":
		return source{}, errors.New("needs a header or hep_correlation_id: true")
	case !sipmsg.IsToken(s.Header):
		return source{}, fmt.Errorf("header %q is not a SIP header name", s.Header)
	}
	c := source{name: sipmsg.HeaderName(s.Header), kind: KindHeader}
	switch {
	case s.Regex != "":
		re, err := regexp.Compile(s.Regex)
		if err != nil {
			return source{}, fmt.Errorf("regex: %w", err)
		}
		if re.NumSubexp() < 1 {
			return source{}, fmt.Errorf("regex %q has no group: its first group is the key", s.Regex)
		}
		c.kind, c.re = KindRegex, re
	case strings.EqualFold(s.Header, "P-Charging-Vector"):
		c.kind = KindPChargingVector
	case strings.EqualFold(s.Header, "Session-ID"):
		c.kind = KindSessionID
	}
	return c, nil
}

// message is what the sources read of a sip.message record.
type message struct {
	text       string // the SIP message; headers are read only when a source needs them
	callID     string
	hepCorrID  string
	isResponse bool
	inDialog   bool // it has a To-tag
}

// key returns the key this source finds in m, and whether the source's
// header was there but malformed (no key in it).
func (s *source) key(m *message) (key string, malformed bool) {
	if s.kind == KindHEPCorrelationID {
		if m.hepCorrID != "" && m.hepCorrID != m.callID && len(m.hepCorrID) <= MaxKeyLength {
			return m.hepCorrID, false
		}
		return "", len(m.hepCorrID) > MaxKeyLength
	}
	for v := range s.name.Values(m.text) {
		k, bad := s.fromValue(v, m)
		switch {
		case bad || len(k) > MaxKeyLength:
			malformed = true
		case k != "":
			return k, false
		}
	}
	return "", malformed
}

// fromValue reads the key in one value of the source's header.
func (s *source) fromValue(v string, m *message) (key string, malformed bool) {
	switch s.kind {
	case KindRegex:
		if g := s.re.FindStringSubmatch(v); g != nil {
			return strings.TrimSpace(g[1]), false
		}
		return "", false // the regex chooses which values hold a key
	case KindPChargingVector:
		icid, _ := sipmsg.Param(v, "icid-value")
		icid = strings.TrimSpace(icid)
		return icid, icid == ""
	case KindSessionID:
		return sessionID(v, m)
	}
	return v, v == ""
}

// nullUUID is RFC 7989's null: the other end's UUID is not known yet.
const nullUUID = "00000000000000000000000000000000"

// sessionID returns the originating UA's UUID from a Session-ID value
// (RFC 7989: local-uuid *(SEMI sess-id-param), remote-param = "remote"
// EQUAL remote-uuid, a UUID being 32 hex digits or the null UUID). The
// sender puts its own UUID first and the other end's in remote:
//   - a request without a To-tag (dialog-creating) is sent by the
//     originator: its local UUID;
//   - a response is sent by the answering UA: the remote UUID, the
//     originator's, unless null (the request came without one), then the
//     local one;
//   - an in-dialog request may come from either end: no key.
//
// The key is in lower case: RFC 7989 compares UUIDs case-insensitively.
func sessionID(v string, m *message) (string, bool) {
	local, params, _ := strings.Cut(v, ";")
	local = strings.TrimSpace(local)
	remote, hasRemote := sipmsg.Param(params, "remote")
	remote = strings.TrimSpace(remote)
	if !isUUID(local) || hasRemote && !isUUID(remote) {
		return "", true
	}
	var k string
	switch {
	case m.isResponse && hasRemote && !strings.EqualFold(remote, nullUUID):
		k = remote
	case m.isResponse || !m.inDialog:
		k = local
	default:
		return "", false
	}
	if k == nullUUID {
		return "", false
	}
	return strings.ToLower(k), false
}

func isUUID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
