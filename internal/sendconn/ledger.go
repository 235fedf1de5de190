package sendconn

import (
	"context"
	"errors"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Reasons a datagram was lost, as Conn.Lost reports them.
const (
	// PortUnreachable: nothing listens on the target port (ICMP port
	// unreachable).
	PortUnreachable = "port_unreachable"
	// HostUnreachable: the target host or its network cannot be reached
	// (ICMP host, network or administratively unreachable).
	HostUnreachable = "host_unreachable"
)

// UDP says nothing about a datagram that arrived, only, through an ICMP
// error, sometimes about one that did not; and a connected socket keeps one
// pending error, not one per datagram. So every datagram written is
// unconfirmed until a check at least a grace later finds no report of loss
// on the socket, which confirms it (Conn.Sent); a check or write that finds
// a report counts every unconfirmed datagram lost (Conn.Lost). While a port
// is closed every one of them is lost; the error is in the other direction
// and rare: datagrams that got through just before the port closed, or
// after it opened again, and were still unconfirmed, are counted lost.
//
// Reports are missed, and a lost datagram counted sent, only where no ICMP
// error comes back within the grace: a host that is down without a router
// to say so, a firewall that drops datagrams or ICMP silently, a receiver
// whose socket buffer is full, a round trip longer than ConfirmGrace. Off Linux only a write that fails reports a
// loss, so there Lost is a lower bound.
const (
	// ConfirmGrace is how long a datagram stays unconfirmed: the ICMP error
	// about it comes back within a round trip to the target's host
	// (microseconds on loopback, under a millisecond on a LAN; 200 ms covers
	// most paths between continents).
	ConfirmGrace = 200 * time.Millisecond
	// RefusingGrace replaces ConfirmGrace from a report of loss until
	// datagrams are confirmed again. A host sends one peer at most one ICMP
	// error a second after a burst of six (Linux: net.ipv4.icmp_ratelimit,
	// net.ipv6.icmp.ratelimit, 1000 ms; loopback is exempt), so while the
	// port stays closed up to a second passes between reports.
	RefusingGrace = 2 * time.Second
	// cohortSpan coalesces writes into cohorts, which bounds the ledger to
	// RefusingGrace/cohortSpan entries.
	cohortSpan = ConfirmGrace / 8
)

// cohort is datagrams written within cohortSpan of first.
type cohort struct {
	first, last time.Time
	n           int
}

// ledger holds a UDP socket's unconfirmed datagrams.
type ledger struct {
	cohorts  []cohort // oldest first
	refusing bool     // since a report of loss, until a confirmation
	reason   string   // of the last report
	checked  time.Time
	timer    *time.Timer
	scratch  []byte // control messages of the error queue
}

func (c *Conn) grace() time.Duration {
	if c.ledger.refusing {
		return RefusingGrace
	}
	return ConfirmGrace
}

func (l *ledger) unconfirmed() int {
	n := 0
	for _, co := range l.cohorts {
		n += co.n
	}
	return n
}

// wrote enters n datagrams written at now.
func (c *Conn) wrote(n int, now time.Time) {
	l := &c.ledger
	if k := len(l.cohorts) - 1; k >= 0 && now.Sub(l.cohorts[k].first) < cohortSpan {
		l.cohorts[k].last = now
		l.cohorts[k].n += n
	} else {
		l.cohorts = append(l.cohorts, cohort{first: now, last: now, n: n})
	}
	c.schedule(now)
}

// check reads the socket's reports of loss: if there is one it counts every
// unconfirmed datagram lost and returns true; otherwise it confirms the
// datagrams written at least a grace ago.
func (c *Conn) check(now time.Time) bool {
	l := &c.ledger
	l.checked = now
	if reason, lost := pendingLoss(c.conn, &l.scratch); lost {
		c.refused(reason)
		return true
	}
	g, n, i := c.grace(), 0, 0
	for ; i < len(l.cohorts) && now.Sub(l.cohorts[i].last) >= g; i++ {
		n += l.cohorts[i].n
	}
	if i > 0 {
		l.cohorts = append(l.cohorts[:0], l.cohorts[i:]...)
		l.refusing = false
		c.sent(n)
	}
	c.schedule(now)
	return false
}

// refused counts every unconfirmed datagram lost, for reason.
func (c *Conn) refused(reason string) {
	l := &c.ledger
	n := l.unconfirmed()
	l.cohorts, l.refusing, l.reason = l.cohorts[:0], true, reason
	if n == 0 {
		return
	}
	if c.Lost != nil {
		c.Lost(reason, n)
	}
	c.Logger.Warn("UDP target unreachable; datagrams lost",
		zap.String("endpoint", c.Endpoint), zap.String("reason", reason), zap.Int("datagrams", n))
}

// schedule arms the timer for the next check due, so that counts settle
// when sending pauses: when the oldest datagrams are due for confirmation,
// or earlier, while refusing, when the report about the newest is due
// (a closed port's losses need not wait RefusingGrace to be counted).
func (c *Conn) schedule(now time.Time) {
	l := &c.ledger
	if len(l.cohorts) == 0 {
		return // a stale timer finds nothing to do
	}
	at := l.cohorts[0].last.Add(c.grace())
	if report := l.cohorts[len(l.cohorts)-1].last.Add(ConfirmGrace); l.checked.Before(report) && report.Before(at) {
		at = report
	}
	due := at.Sub(now)
	if l.timer == nil {
		l.timer = time.AfterFunc(due, c.tick)
		return
	}
	l.timer.Reset(due)
}

func (c *Conn) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.check(time.Now())
	}
}

// settleAll leaves nothing unconfirmed, before the socket closes. It waits
// until the last datagram is a grace old, or ctx ends, and checks. What a
// closed port refused until then is lost; what is left unconfirmed (the
// wait was cut short, or the target refused within RefusingGrace) is
// counted by the last thing known of the target: sent if it was accepting,
// lost if it was refusing.
func (c *Conn) settleAll(ctx context.Context) {
	l := &c.ledger
	if l.timer != nil {
		l.timer.Stop()
	}
	if len(l.cohorts) == 0 {
		return
	}
	if !l.refusing {
		if wait := time.Until(l.cohorts[len(l.cohorts)-1].last.Add(ConfirmGrace)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
	}
	c.check(time.Now())
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.refusing {
		c.refused(l.reason)
		return
	}
	c.sent(l.unconfirmed())
	l.cohorts = l.cohorts[:0]
}

// lossReason tells whether a write error is an ICMP report of loss (the
// socket's pending error), and of which kind.
func lossReason(err error) (string, bool) {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return PortUnreachable, true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.EACCES):
		return HostUnreachable, true
	}
	return "", false
}
