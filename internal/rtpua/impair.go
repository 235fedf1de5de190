package rtpua

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Impairment is what the network between an endpoint and its peer does
// to the RTP the endpoint sends, played on the sending side. Dropped
// packets still take their sequence numbers and count as sent in the
// endpoint's SRs (the network lost them, not the sender); delayed packets
// keep their RTP timestamps. RTCP is never impaired. The zero value is a
// clean network.
//
// Loss is deterministic with LossEvery (packets N, 2N, 3N ... of the
// stream, counting from 1, are dropped: a ratio of exactly 1/N) or random
// with LossRatio (each packet dropped with that probability, from Seed).
//
// Jitter delays each packet by its own amount drawn uniformly from
// [0, JitterSpread), independently (from Seed), and the packets leave in
// the order of their delayed times: a packet delayed more than the next
// one's by more than PTime is overtaken, as on a network with several
// paths. With a spread up to 2 PTime only neighbours swap.
//
// Expected interarrival jitter (RFC 3550 6.4.1, A.8): the estimator J +=
// (|D| - J)/16 converges to E|D|, D being the difference of the transit
// times of two packets arriving one after the other. Without reordering
// (JitterSpread <= PTime) consecutive arrivals are consecutive packets,
// D = d_i - d_{i-1} with d i.i.d. uniform on [0, w), whose absolute value
// has the triangular density 2(w - x)/w^2 on [0, w): E|D| = w/3. With
// reordering the pairs that arrive one after the other differ more: for
// w = 2 PTime, integrating over the ways neighbours swap (a packet's
// successor in arrival order is its predecessor, or the packet two or
// three on, depending on the swaps around it) gives E|D| = 7/10 PTime =
// 0.35 w instead of w/3 (ExpectedJitter). Losses take packets out of
// the pairing, which changes this by well under 1 % at 5 % loss.
type Impairment struct {
	LossEvery    int
	LossRatio    float64
	JitterSpread time.Duration
	Seed         uint64
}

// Validate reports an impairment that cannot be played.
func (i Impairment) Validate() error {
	switch {
	case i.LossEvery < 0:
		return fmt.Errorf("rtpua: LossEvery %d is negative", i.LossEvery)
	case i.LossEvery == 1:
		return fmt.Errorf("rtpua: LossEvery 1 drops every packet")
	case i.LossEvery > 0 && i.LossRatio > 0:
		return fmt.Errorf("rtpua: LossEvery and LossRatio both set")
	case !(i.LossRatio >= 0 && i.LossRatio < 1):
		return fmt.Errorf("rtpua: LossRatio %g is not in [0, 1)", i.LossRatio)
	case i.JitterSpread < 0 || i.JitterSpread > time.Second:
		return fmt.Errorf("rtpua: JitterSpread %s is not in [0, 1s]", i.JitterSpread)
	}
	return nil
}

// ExpectedJitter is the interarrival jitter the RFC 3550 estimator
// converges to for a JitterSpread w, as derived above: w/3 up to PTime,
// 0.35 w at 2 PTime. Between the two it is not derived here and ok is
// false; so it is beyond.
func ExpectedJitter(w time.Duration) (j time.Duration, ok bool) {
	const p = PTime * time.Millisecond
	switch {
	case w <= p:
		return w / 3, true
	case w == 2*p:
		return 7 * p / 10, true
	}
	return 0, false
}

// player decides each packet's fate; one per stream, used by its sender
// alone.
type player struct {
	imp  Impairment
	loss *rand.Rand
	jit  *rand.Rand
}

func newPlayer(imp Impairment) *player {
	// two sources, so that turning jitter on does not change which
	// packets are lost
	return &player{imp: imp, loss: rand.New(rand.NewPCG(imp.Seed, 1)), jit: rand.New(rand.NewPCG(imp.Seed, 2))}
}

// drop says whether packet n (0-based) is lost.
func (p *player) drop(n uint64) bool {
	switch {
	case p.imp.LossEvery > 0:
		return (n+1)%uint64(p.imp.LossEvery) == 0
	case p.imp.LossRatio > 0:
		return p.loss.Float64() < p.imp.LossRatio
	}
	return false
}

// delay is the next packet's delay.
func (p *player) delay() time.Duration {
	if p.imp.JitterSpread <= 0 {
		return 0
	}
	return time.Duration(p.jit.Int64N(int64(p.imp.JitterSpread)))
}
