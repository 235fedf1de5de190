package sipscanner

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		ua   string
		want bool
	}{
		{"friendly-scanner", true},
		{"Friendly-Scanner", true},
		{"sipvicious 0.3.4", true},
		{"SIPVicious", true},
		{"sipcli/v1.8", true},
		{"sip-scan", true},
		{"SIPSCAN 1.0", true},
		{"VaxSIPUserAgent/3.1", true},
		{"iWar", true},
		{"sundayddr", true},
		{"pplsip", true},
		{"SiVuS", true},
		{"smap 0.6.0", true},
		{"Nmap NSE", true},
		{"PolycomVVX-VVX_411-UA/5.9.0", false},
		{"Linphone/4.4 (belle-sip/4.4)", false},
		{"sipp", false},
		{"", false},
	}
	for _, c := range cases {
		t.Run(c.ua, func(t *testing.T) {
			assert.Equal(t, c.want, Match(c.ua))
		})
	}
}

// TestEveryEntryMatches: each listed substring is found in a User-Agent
// that is exactly it, upper-cased, or embedded in other text.
func TestEveryEntryMatches(t *testing.T) {
	for _, s := range UserAgents() {
		assert.True(t, Match(s), s)
		assert.True(t, Match(strings.ToUpper(s)), s)
		assert.True(t, Match("x "+s+"/1.0"), s)
		assert.Equal(t, strings.ToLower(s), s, "the list is lower-case")
	}
}

// TestUserAgents: the union of what sipproxy and sipkpi each had before
// they shared the list; a copy that callers may change.
func TestUserAgents(t *testing.T) {
	want := []string{"friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipscan", "vaxsipuseragent",
		"iwar", "sundayddr", "pplsip", "sivus", "smap", "nmap"}
	got := UserAgents()
	require.Equal(t, want, got)
	got[0] = "changed"
	assert.Equal(t, want, UserAgents(), "UserAgents returns a copy")
	assert.True(t, Match("friendly-scanner"), "changing the copy does not change matching")
}

func TestMatcher(t *testing.T) {
	m := NewMatcher([]string{"Evil-Tool", "probe"})
	cases := []struct {
		ua   string
		want bool
	}{
		{"evil-tool/2", true},
		{"EVIL-TOOL", true},
		{"my PROBE", true},
		{"friendly-scanner", false}, // only the matcher's own list
		{"", false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, m.Match(c.ua), c.ua)
	}
	assert.False(t, NewMatcher(nil).Match("sipvicious"), "an empty list matches nothing")
}

// TestMatchDoesNotAllocate: it runs for every new request of sipkpi and
// sipcall.
func TestMatchDoesNotAllocate(t *testing.T) {
	for _, ua := range []string{"Ozona/5.0 (Linux)", "FRIENDLY-SCANNER", "x sipVicious"} {
		assert.Zero(t, testing.AllocsPerRun(100, func() { Match(ua) }), ua)
	}
	// an overlapping prefix does not hide a match that starts inside it
	assert.True(t, Match("sipsipvicious"))
	assert.True(t, NewMatcher([]string{"aab"}).Match("AAAB"))
	assert.False(t, NewMatcher([]string{"aab"}).Match("AA"))
}
