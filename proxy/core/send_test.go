package core

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLargeRequest is RFC 3261 18.1.1: a request the proxy forwards that
// is larger than 1300 bytes goes over TCP instead of UDP (its Via says
// so), and over UDP after all when the next hop takes no TCP (the next
// one to that hop goes over UDP at once) or the proxy has no TCP listener
// to name in its Via. Each case sends two requests.
func TestLargeRequest(t *testing.T) {
	pad := "X-Pad: " + strings.Repeat("p", 1400)
	cases := []struct {
		name      string
		contact   string
		hdrs      []string
		noTCP     bool // the proxy listens on UDP only
		refuseTCP bool // the next hop takes no TCP
		sent      []string
	}{
		{"small: as the contact says", "sip:bob@10.0.0.7:5062", nil, false, false, []string{"UDP", "UDP"}},
		{"large: over TCP", "sip:bob@10.0.0.7:5062", []string{pad}, false, false, []string{"TCP", "TCP"}},
		{"large, to a TCP contact", "sip:bob@10.0.0.7:5062;transport=tcp", []string{pad}, false, false, []string{"TCP", "TCP"}},
		{"large, no TCP at the next hop: over UDP", "sip:bob@10.0.0.7:5062", []string{pad}, false, true, []string{"TCP", "UDP", "UDP"}},
		{"large, no TCP here: over UDP", "sip:bob@10.0.0.7:5062", []string{pad}, true, false, []string{"UDP", "UDP"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			if c.noTCP {
				cfg.Listen.TCP = nil
			}
			h := newHarness(t, cfg)
			h.bind("bob", c.contact)
			h.next.answer = func(_ *sip.Request, tx *clientTx) { tx.respond(200, "OK") }
			if c.refuseTCP {
				h.next.refuse = func(req *sip.Request) error {
					if req.Transport() == "TCP" {
						return errRefused
					}
					return nil
				}
			}
			for range 2 {
				u := h.send(newReq(t, "UDP", "MESSAGE", "sip:bob@example.com", c.hdrs...))
				assert.Equal(t, 200, u.final().StatusCode)
				u.wait()
			}
			var sent []string
			for _, r := range h.next.requests() {
				sent = append(sent, r.Transport())
				assert.Equal(t, r.Transport(), r.Via().Transport, "the top Via names the transport")
				assert.Equal(t, 5060, r.Via().Port)
				assert.Equal(t, "10.0.0.7:5062", r.Destination())
			}
			assert.Equal(t, c.sent, sent)
			for _, r := range []string{"too_large", "transport"} {
				assert.Equal(t, 0.0, counter(h.p.m.SendFailures.WithLabelValues("request", r)), "sent: no failure")
			}
		})
	}
}

// TestResponseNotSent: an answer the transport cannot write is counted,
// by reason (the write itself, at the socket, is proxy/e2e's).
func TestResponseNotSent(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		reason string
	}{
		{"too large for a datagram", fmt.Errorf("udp conn: %w", syscall.EMSGSIZE), "too_large"},
		{"sipgo's MTU bound", sip.ErrUDPMTUCongestion, "too_large"},
		{"anything else", errors.New("connection reset"), "transport"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			u := h.sendOn(newReq(t, "UDP", "OPTIONS", "sip:127.0.0.1:5060"), &recConn{fail: c.err})
			u.wait()
			require.Empty(t, u.conn.responses.all())
			assert.Equal(t, 1.0, counter(h.p.m.SendFailures.WithLabelValues("response", c.reason)))
			assert.Equal(t, 0.0, counter(h.p.m.Responses.WithLabelValues("200")), "not counted as sent")
		})
	}
}
