package rtpua

import (
	"math"
	"time"
)

// reception is RFC 3550's receiver state for one source: the sequence
// number accounting of appendix A.1, the loss figures of A.3 and the
// interarrival jitter of 6.4.1 / A.8.
type reception struct {
	clock float64 // the source's RTP clock, Hz

	started       bool
	ssrc          uint32
	baseSeq       uint32 // first sequence number
	maxSeq        uint16 // highest sequence number seen
	cycles        uint32 // sequence number wraps, << 16
	received      uint64
	expectedPrior uint64
	receivedPrior uint64

	// jitter: the last packet's arrival and RTP timestamp, and the
	// estimate in timestamp units
	lastArrival time.Time
	lastTS      uint32
	jitter      float64

	// the last SR from the source: its NTP middle 32 bits, when it came
	lsr   uint32
	lsrAt time.Time
}

// maxDropout is A.1's bound on a sequence number jump: ahead by less is
// loss, anything else a late or duplicate packet, or a restarted source,
// which this receiver also takes as a late packet (it counts it and
// leaves the state: the peers of this package do not restart).
const maxDropout = 3000

// packet accounts for one RTP packet of the source, arrived at.
func (r *reception) packet(seq uint16, ts uint32, at time.Time) {
	if !r.started {
		r.started = true
		r.baseSeq, r.maxSeq = uint32(seq), seq
		r.received = 1
		r.lastArrival, r.lastTS = at, ts
		return
	}
	r.received++
	if delta := seq - r.maxSeq; delta < maxDropout {
		if seq < r.maxSeq {
			r.cycles += 1 << 16
		}
		r.maxSeq = seq
	}
	// A.8: D(i-1,i) = (Rj - Ri) - (Sj - Si), in timestamp units, for
	// packets in order of arrival; the RTP timestamp difference is taken
	// modulo 2^32.
	d := at.Sub(r.lastArrival).Seconds()*r.clock - float64(int32(ts-r.lastTS))
	r.jitter += (math.Abs(d) - r.jitter) / 16
	r.lastArrival, r.lastTS = at, ts
}

// extendedMax is the extended highest sequence number received.
func (r *reception) extendedMax() uint32 { return r.cycles + uint32(r.maxSeq) }

// expected is how many packets the source has sent up to the highest
// received (A.3).
func (r *reception) expected() uint64 { return uint64(r.extendedMax()) - uint64(r.baseSeq) + 1 }

// lost is the cumulative loss, clamped to the report block's 24 signed
// bits (negative when duplicates outnumber losses).
func (r *reception) lost() int64 {
	l := int64(r.expected()) - int64(r.received)
	return max(min(l, 1<<23-1), -(1 << 23))
}

// block closes a reporting interval and returns its report block, with
// the interval's expected and received counts. now is when it is sent
// (for DLSR).
func (r *reception) block(now time.Time) Block {
	expected := r.expected()
	b := Block{SSRC: r.ssrc, Lost: r.lost(), HighestSeq: r.extendedMax(), Jitter: uint32(r.jitter),
		ExpectedInterval: expected - r.expectedPrior, ReceivedInterval: r.received - r.receivedPrior}
	r.expectedPrior, r.receivedPrior = expected, r.received
	// A.3: fraction = lost in the interval << 8 / expected in it, 0 when
	// duplicates made up for the losses
	if lostInterval := int64(b.ExpectedInterval) - int64(b.ReceivedInterval); b.ExpectedInterval > 0 && lostInterval > 0 {
		b.FractionLost = uint8(min(lostInterval<<8/int64(b.ExpectedInterval), 255))
	}
	if !r.lsrAt.IsZero() {
		b.LSR = r.lsr
		b.DLSR = uint32(now.Sub(r.lsrAt).Seconds() * 65536)
	}
	return b
}

// Block is one RTCP report block (RFC 3550 6.4.1) with the interval
// counts behind its fraction lost.
type Block struct {
	SSRC         uint32 // the source reported on
	FractionLost uint8  // lost in the interval, in 1/256
	Lost         int64  // cumulative
	HighestSeq   uint32 // extended highest sequence number received
	Jitter       uint32 // interarrival jitter, timestamp units
	LSR, DLSR    uint32
	// ExpectedInterval and ReceivedInterval are the packets expected and
	// received since the previous report (not sent; the fraction's
	// terms).
	ExpectedInterval, ReceivedInterval uint64
}

// LossRatio is the fraction lost as a ratio.
func (b Block) LossRatio() float64 { return float64(b.FractionLost) / 256 }

// JitterSeconds is the jitter in seconds at the given RTP clock.
func (b Block) JitterSeconds(clock uint32) float64 { return float64(b.Jitter) / float64(clock) }
