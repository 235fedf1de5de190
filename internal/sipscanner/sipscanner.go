// Package sipscanner is the one list of SIP scanner User-Agents. sipproxy
// drops requests from these tools (siphon_scanner_blocked_total) and the
// sipkpi connector flags their sources (sip.scanner.detections, its default
// scanner.user_agents): both must agree, or a scan the proxy blocked would
// go unreported on the dashboards (or one reported would have been let
// through), so both read this list and match it the same way.
package sipscanner

import (
	"slices"
	"strings"
)

// userAgents are lower-case User-Agent substrings of SIP scanning tools seen
// in the wild (SIPVicious and its forks, sipcli, VaxSIP, iWar, SiVuS, smap,
// nmap's SIP scripts ...).
var userAgents = []string{
	"friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipscan", "vaxsipuseragent",
	"iwar", "sundayddr", "pplsip", "sivus", "smap", "nmap",
}

// UserAgents returns the list. It is a copy: a caller may keep it as a
// configuration default that user configuration then replaces or edits.
func UserAgents() []string { return slices.Clone(userAgents) }

// Matcher recognises scanner User-Agents by case-insensitive substring.
type Matcher struct{ subs []string }

// NewMatcher returns a matcher for substrings (matched case-insensitively).
func NewMatcher(substrings []string) *Matcher {
	m := &Matcher{subs: make([]string, len(substrings))}
	for i, s := range substrings {
		m.subs[i] = strings.ToLower(s)
	}
	return m
}

// Match reports whether ua contains one of the substrings, ignoring ASCII
// case (the list is ASCII). An empty User-Agent never matches. It does not
// allocate: sipkpi and sipcall ask it for every new request.
func (m *Matcher) Match(ua string) bool {
	if ua == "" {
		return false
	}
	for _, s := range m.subs {
		if containsFold(ua, s) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains lower, a lower-case substring,
// in any ASCII case.
func containsFold(s, lower string) bool {
	if lower == "" {
		return true
	}
	for i := 0; i+len(lower) <= len(s); i++ {
		j := 0
		for j < len(lower) && toLower(s[i+j]) == lower[j] {
			j++
		}
		if j == len(lower) {
			return true
		}
	}
	return false
}

func toLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

var known = NewMatcher(userAgents)

// Match reports whether ua names a known scanner (one of UserAgents).
func Match(ua string) bool { return known.Match(ua) }
