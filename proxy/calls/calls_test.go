package calls

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/proxy/cdrsink"
)

type gauges struct{ dialogs, sessions, window int }

func (g *gauges) Dialogs(n int)             { g.dialogs = n }
func (g *gauges) CDRSessions(n int)         { g.sessions = n }
func (g *gauges) ProxyDialogSessions(n int) { g.window = n }

// step is one event the proxy reports to the tracker.
type step func(t *Tracker)

func invite(t *Tracker) {
	t.Invite(Call{CallID: "c1", FromTag: "ft", SourceIP: "127.0.0.1", Transport: "udp"})
}
func ringing(t *Tracker) { t.Provisional("c1", "ft") }
func final(code int) step {
	return func(t *Tracker) { t.Final("c1", "ft", code, "", "127.0.0.2", false) }
}
func ack(t *Tracker) { t.Ack("c1", "ft") }
func byeFrom(caller bool) step {
	return func(t *Tracker) { t.Bye("c1", "ft", caller, "") }
}
func cancelled(t *Tracker) { t.Cancelled("c1", "ft", "") }
func expire(t *Tracker)    { t.Expire(0) }

// TestCallEnds: one CDR per call, whatever order the proxy's goroutines
// report a call's events in; in particular a BYE handled before the 200
// it follows on the wire (the callee's BYE overtaking its own 200 inside the
// proxy: the demo once wrote a CDR with code 0 for that).
func TestCallEnds(t *testing.T) {
	cases := []struct {
		name      string
		steps     []step
		endsAt    int // the step that writes the CDR
		code      float64
		initiator string
		answered  bool
	}{
		{"caller hangs up", []step{invite, ringing, final(200), ack, byeFrom(true)}, 4, 200, Caller, true},
		{"callee hangs up", []step{invite, ringing, final(200), ack, byeFrom(false)}, 4, 200, Callee, true},
		{"callee's BYE before its 200", []step{invite, ringing, byeFrom(false), final(200), ack}, 3, 200, Callee, true},
		{"caller's BYE before the 200 (right after it on the wire)", []step{invite, byeFrom(true), final(200), ack}, 2, 200, Caller, true},
		{"caller's BYE on an early dialog, then 487", []step{invite, ringing, byeFrom(true), final(487)}, 3, 487, Caller, false},
		{"busy", []step{invite, ringing, final(486)}, 2, 486, Callee, false},
		{"cancelled", []step{invite, ringing, cancelled, final(487)}, 3, 487, Caller, false},
		{"BYE before a final that never comes", []step{invite, byeFrom(true), expire}, 2, 408, Timeout, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cdrs []cdrsink.Record
			g := &gauges{}
			tr := New(g, func(r cdrsink.Record) { cdrs = append(cdrs, r) })
			var ended []string // OnEnd's calls: the media session goes with the call
			tr.OnEnd = func(callID, callerTag string) { ended = append(ended, callID+"/"+callerTag) }
			clock := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
			tr.now = func() time.Time { clock = clock.Add(100 * time.Millisecond); return clock }
			for i, s := range c.steps {
				s(tr)
				if i < c.endsAt {
					require.Empty(t, cdrs, "a CDR before the call ended (step %d)", i)
					require.Empty(t, ended, "ended before it ended (step %d)", i)
				} else {
					require.Len(t, cdrs, 1, "step %d", i)
					require.Equal(t, []string{"c1/ft"}, ended, "step %d", i)
				}
			}
			var rec map[string]any
			require.NoError(t, json.Unmarshal(cdrs[0].JSON, &rec))
			assert.Equal(t, c.code, rec["response_code"])
			assert.Equal(t, c.initiator, rec["disconnect_initiator"])
			if c.answered {
				assert.NotNil(t, rec["timestamp_answer"])
			} else {
				assert.Nil(t, rec["timestamp_answer"])
			}
			assert.Empty(t, tr.Active())
			assert.Equal(t, gauges{}, *g, "dialogs, CDR sessions and 2xx/ACK window back at zero")
			// late events of the ended call change nothing
			byeFrom(true)(tr)
			final(200)(tr)
			ack(tr)
			assert.Len(t, cdrs, 1)
			assert.Len(t, ended, 1)
		})
	}
}
