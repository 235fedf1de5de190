package registrar

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTest() (*Registrar, *clock, *int) {
	c := &clock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	r := New()
	r.now = c.now
	count := new(int)
	r.OnCount = func(n int) { *count = n }
	return r, c, count
}

func TestAoR(t *testing.T) {
	for in, want := range map[string]string{
		"sip:Alice@Example.COM":                      "sip:Alice@example.com",
		"<sip:alice@example.com:5060;transport=tcp>": "sip:alice@example.com",
		"sips:bob@10.0.0.1:5061":                     "sips:bob@10.0.0.1",
		"sip:example.com":                            "sip:example.com",
		"SIP:carol@host?Subject=x":                   "sip:carol@host",
	} {
		assert.Equal(t, want, AoR(in), in)
	}
}

func TestUpdateEvents(t *testing.T) {
	r, _, count := newTest()
	const aor = "sip:alice@example.com"
	upd := func(bs ...Binding) ([]Contact, Event) {
		return r.Update(aor, bs, "cid", 1, "127.0.0.1:5062", "udp", "ua")
	}
	steps := []struct {
		name     string
		bindings []Binding
		event    Event
		uris     []string // after the update, highest q first
	}{
		{"first contact", []Binding{{URI: "sip:a@127.0.0.1:5062", Expires: 60, Q: 0.5}}, Registered, []string{"sip:a@127.0.0.1:5062"}},
		{"second contact, higher q", []Binding{{URI: "sip:b@127.0.0.1:5064", Expires: 60, Q: 0.9}}, Registered, []string{"sip:b@127.0.0.1:5064", "sip:a@127.0.0.1:5062"}},
		{"refresh", []Binding{{URI: "sip:a@127.0.0.1:5062", Expires: 120, Q: 0.5}}, Refreshed, []string{"sip:b@127.0.0.1:5064", "sip:a@127.0.0.1:5062"}},
		{"query", nil, "", []string{"sip:b@127.0.0.1:5064", "sip:a@127.0.0.1:5062"}},
		{"remove one", []Binding{{URI: "sip:b@127.0.0.1:5064", Expires: 0}}, Deregistered, []string{"sip:a@127.0.0.1:5062"}},
		{"remove unknown", []Binding{{URI: "sip:zz@127.0.0.1:1", Expires: 0}}, Refreshed, []string{"sip:a@127.0.0.1:5062"}},
		{"wildcard", []Binding{{URI: "*", Expires: 0}}, Deregistered, nil},
	}
	for _, s := range steps {
		cs, ev := upd(s.bindings...)
		assert.Equal(t, s.event, ev, s.name)
		var uris []string
		for _, c := range cs {
			uris = append(uris, c.URI)
		}
		assert.Equal(t, s.uris, uris, s.name)
		assert.Equal(t, len(s.uris), *count, s.name)
		assert.Equal(t, len(s.uris), r.Count(), s.name)
	}
	assert.True(t, r.Known(aor), "an AoR that was registered stays known")
	assert.False(t, r.Known("sip:nobody@example.com"))
}

func TestExpiryAndSweep(t *testing.T) {
	r, c, count := newTest()
	r.Update("sip:a@x", []Binding{{URI: "sip:a@127.0.0.1:1", Expires: 30, Q: 1}}, "c1", 1, "", "udp", "")
	r.Update("sip:b@x", []Binding{{URI: "sip:b@127.0.0.1:2", Expires: 90, Q: 1}}, "c2", 1, "", "udp", "")
	require.Equal(t, 2, *count)

	c.t = c.t.Add(31 * time.Second)
	assert.Empty(t, r.Lookup("sip:a@x"), "expired bindings are not routed to before the sweep")
	assert.Len(t, r.All(), 1)
	gone := r.Sweep()
	require.Len(t, gone, 1)
	assert.Equal(t, "sip:a@x", gone[0].AoR)
	assert.Equal(t, 1, *count)
	assert.True(t, r.Known("sip:a@x"))

	c.t = c.t.Add(KnownFor + time.Minute)
	r.Sweep()
	assert.False(t, r.Known("sip:a@x"), "forgotten after KnownFor")
	assert.Equal(t, 0, *count)

	// re-registering an expired contact is a new registration
	_, ev := r.Update("sip:a@x", []Binding{{URI: "sip:a@127.0.0.1:1", Expires: 30, Q: 1}}, "c1", 2, "", "udp", "")
	assert.Equal(t, Registered, ev)
}

func TestRemove(t *testing.T) {
	r, _, count := newTest()
	r.Update("sip:a@x", []Binding{{URI: "sip:a@127.0.0.1:1", Expires: 30, Q: 1}, {URI: "sip:a@127.0.0.1:2", Expires: 30, Q: 1}}, "c", 1, "", "udp", "")
	require.Equal(t, 2, *count)
	assert.True(t, r.Remove("sip:a@x"))
	assert.False(t, r.Remove("sip:a@x"))
	assert.Equal(t, 0, *count)
	assert.True(t, r.Known("sip:a@x"))
}

func TestGoneIsBounded(t *testing.T) {
	r, _, _ := newTest()
	for i := range maxGone + 10 {
		aor := "sip:u" + strconv.Itoa(i) + "@x"
		r.Update(aor, []Binding{{URI: "sip:c@127.0.0.1:1", Expires: 30, Q: 1}}, "c", 1, "", "udp", "")
		r.Remove(aor)
	}
	assert.LessOrEqual(t, len(r.gone), maxGone)
}
