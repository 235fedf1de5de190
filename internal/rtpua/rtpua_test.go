package rtpua

import (
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 6, 14, 0, 0, 0, time.UTC)

// feed gives a reception packets (sequence offsets from base) arriving
// in the order given, each 20 ms of RTP time and of arrival apart unless
// arrival says otherwise.
func feed(r *reception, base uint16, seqs []int, arrival func(i, seq int) time.Time) {
	for i, s := range seqs {
		at := t0.Add(time.Duration(s) * 20 * time.Millisecond)
		if arrival != nil {
			at = arrival(i, s)
		}
		r.packet(base+uint16(s), uint32(s)*160, at)
	}
}

func TestReceptionLoss(t *testing.T) {
	seq := func(lo, hi int, skip ...int) []int {
		var out []int
		for s := lo; s < hi; s++ {
			if !slices.Contains(skip, s) {
				out = append(out, s)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name             string
		base             uint16
		seqs             []int
		expected         uint64
		lost             int64
		fraction         uint8
		highest          uint32
		expInt, recvdInt uint64
	}{
		{"clean", 100, seq(0, 50), 50, 0, 0, 149, 50, 50},
		// 5 of 100: 5 << 8 / 100 = 12 (12.8 truncated)
		{"every 20th lost", 100, seq(0, 100, 19, 39, 59, 79, 99), 99, 4, 4 << 8 / 99, 198, 99, 95},
		// the highest sequence number wraps: the cycle count goes up
		{"wrap", 65530, seq(0, 20, 7), 20, 1, 1 << 8 / 20, 1<<16 + 13, 20, 19},
		// a late packet fills its gap; a duplicate makes up for a loss
		{"late", 0, []int{0, 1, 3, 2, 4}, 5, 0, 0, 4, 5, 5},
		{"duplicate", 0, []int{0, 1, 1, 3}, 4, 0, 0, 3, 4, 4},
		{"more duplicates than losses", 0, []int{0, 1, 1, 1, 2}, 3, -2, 0, 2, 3, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := reception{clock: 8000, ssrc: 7}
			feed(&r, tc.base, tc.seqs, nil)
			b := r.block(t0.Add(time.Minute))
			assert.Equal(t, tc.expected, r.expected())
			assert.Equal(t, tc.lost, b.Lost)
			assert.Equal(t, tc.fraction, b.FractionLost)
			assert.Equal(t, tc.highest, b.HighestSeq)
			assert.Equal(t, tc.expInt, b.ExpectedInterval)
			assert.Equal(t, tc.recvdInt, b.ReceivedInterval)
			assert.Equal(t, uint32(7), b.SSRC)
			assert.Zero(t, b.LSR, "no SR heard")
			assert.Zero(t, b.DLSR)
			// the next interval starts where this one ended
			next := r.block(t0.Add(2 * time.Minute))
			assert.Zero(t, next.ExpectedInterval)
			assert.Zero(t, next.FractionLost)
			assert.Equal(t, b.Lost, next.Lost, "cumulative")
		})
	}
}

func TestReceptionHighestSeq(t *testing.T) {
	r := reception{clock: 8000}
	feed(&r, 65530, []int{0, 1, 2, 3, 4, 5, 6, 7, 8}, nil)
	assert.Equal(t, uint32(1<<16+2), r.block(t0).HighestSeq, "65530+8 wraps to 2 in cycle 1")
}

// RFC 3550 A.8: J += (|D| - J)/16 over packets in arrival order.
func TestReceptionJitter(t *testing.T) {
	const d = 0.004 // s
	for _, tc := range []struct {
		name    string
		arrival func(i, seq int) time.Time
		want    func(n int) float64 // timestamp units after n packets
	}{
		{"constant transit", nil, func(int) float64 { return 0 }},
		// every other packet 4 ms late: |D| = 32 units each time after the first
		{"alternating", func(i, s int) time.Time {
			at := t0.Add(time.Duration(s) * 20 * time.Millisecond)
			if s%2 == 1 {
				at = at.Add(time.Duration(d * float64(time.Second)))
			}
			return at
		}, func(n int) float64 { return d * 8000 * (1 - math.Pow(15.0/16, float64(n-1))) }},
		// the transit grows by 1 ms a packet: |D| = 8 units
		{"drift", func(i, s int) time.Time {
			return t0.Add(time.Duration(s) * 21 * time.Millisecond)
		}, func(n int) float64 { return 8 * (1 - math.Pow(15.0/16, float64(n-1))) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{2, 10, 100} {
				r := reception{clock: 8000}
				feed(&r, 0, seqN(n), tc.arrival)
				assert.InDelta(t, tc.want(n), r.jitter, 1e-6, "after %d packets", n)
				assert.Equal(t, uint32(tc.want(n)), r.block(t0).Jitter)
			}
		})
	}
}

func seqN(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// The LSR is the middle of the last SR's NTP time, the DLSR the time
// since it came in 1/65536 s.
func TestReceptionLSR(t *testing.T) {
	r := reception{clock: 8000}
	r.packet(1, 160, t0)
	r.lsr, r.lsrAt = 0xb7052000, t0
	b := r.block(t0.Add(5250 * time.Millisecond))
	assert.Equal(t, uint32(0xb7052000), b.LSR)
	assert.Equal(t, uint32(0x00054000), b.DLSR)
}

func TestImpairmentValidate(t *testing.T) {
	for _, tc := range []struct {
		imp Impairment
		ok  bool
	}{
		{Impairment{}, true},
		{Impairment{LossEvery: 20, JitterSpread: 40 * time.Millisecond, Seed: 1}, true},
		{Impairment{LossRatio: 0.05}, true},
		{Impairment{LossEvery: -1}, false},
		{Impairment{LossEvery: 1}, false},
		{Impairment{LossEvery: 20, LossRatio: 0.05}, false},
		{Impairment{LossRatio: 1}, false},
		{Impairment{LossRatio: math.NaN()}, false},
		{Impairment{JitterSpread: -time.Millisecond}, false},
		{Impairment{JitterSpread: 2 * time.Second}, false},
	} {
		err := tc.imp.Validate()
		if tc.ok {
			assert.NoError(t, err, "%+v", tc.imp)
		} else {
			assert.Error(t, err, "%+v", tc.imp)
		}
	}
}

func TestImpairmentPlayer(t *testing.T) {
	const n = 100000
	count := func(imp Impairment) (lost int, delays []time.Duration) {
		p := newPlayer(imp)
		for i := range uint64(n) {
			if p.drop(i) {
				lost++
				continue
			}
			delays = append(delays, p.delay())
		}
		return lost, delays
	}
	lost, delays := count(Impairment{LossEvery: 20})
	assert.Equal(t, n/20, lost, "every 20th exactly")
	assert.Equal(t, time.Duration(0), slices.Max(delays), "no jitter")
	p := newPlayer(Impairment{LossEvery: 20})
	assert.False(t, p.drop(18))
	assert.True(t, p.drop(19), "packet 20 of the stream")

	lost, _ = count(Impairment{LossRatio: 0.05, Seed: 3})
	assert.InDelta(t, 0.05, float64(lost)/n, 0.003, "random loss near its ratio (3 standard deviations: 0.002)")
	again, _ := count(Impairment{LossRatio: 0.05, Seed: 3})
	assert.Equal(t, lost, again, "the seed decides")

	w := 40 * time.Millisecond
	_, delays = count(Impairment{JitterSpread: w, Seed: 9})
	assert.GreaterOrEqual(t, slices.Min(delays), time.Duration(0))
	assert.Less(t, slices.Max(delays), w)
	var sum time.Duration
	for _, d := range delays {
		sum += d
	}
	assert.InDelta(t, float64(w/2), float64(sum)/float64(len(delays)), float64(time.Millisecond)/2, "uniform: mean w/2")
	lossOnly, _ := count(Impairment{LossRatio: 0.05, Seed: 3, JitterSpread: w})
	assert.Equal(t, lost, lossOnly, "jitter does not change which packets are lost")
}

// The expected interarrival jitter of the impairment (ExpectedJitter's
// derivation) against the estimator of reception run over a long
// stream of packets delayed by the impairment's player and arriving in
// the order of their delayed times.
func TestExpectedJitter(t *testing.T) {
	const n = 200000
	ptime := PTime * time.Millisecond
	for _, w := range []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond} {
		want, ok := ExpectedJitter(w)
		require.True(t, ok)
		p := newPlayer(Impairment{JitterSpread: w, Seed: 42})
		type arrival struct {
			at  time.Time
			seq int
		}
		arr := make([]arrival, n)
		for i := range arr {
			arr[i] = arrival{t0.Add(time.Duration(i)*ptime + p.delay()), i}
		}
		slices.SortFunc(arr, func(a, b arrival) int { return a.at.Compare(b.at) })
		r := reception{clock: 8000}
		var mean float64
		for i, a := range arr {
			r.packet(uint16(a.seq), uint32(a.seq)*160, a.at)
			if i >= 1000 { // past the estimator's start from 0
				mean += r.jitter / (n - 1000)
			}
		}
		assert.InDelta(t, want.Seconds(), mean/8000, 0.01*want.Seconds()+1e-9, "spread %s", w)
	}
	_, ok := ExpectedJitter(30 * time.Millisecond)
	assert.False(t, ok, "not derived between PTime and 2 PTime")
}

func TestSDP(t *testing.T) {
	addr := netip.MustParseAddrPort("127.0.0.1:40000")
	body := SDP(addr, 7, PCMU, G729)
	assert.Equal(t, "v=0\r\no=siphon 7 7 IN IP4 127.0.0.1\r\ns=siphon\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio 40000 RTP/AVP 0 18\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n"+
		"a=rtcp:40001\r\na=ptime:20\r\na=sendrecv\r\n", string(body))
	r, err := ParseSDP(body)
	require.NoError(t, err)
	assert.Equal(t, addr, r.RTP)
	assert.Equal(t, netip.MustParseAddrPort("127.0.0.1:40001"), r.RTCP)
	assert.Equal(t, []Codec{PCMU, G729}, r.Codecs)

	for _, tc := range []struct {
		name, sdp  string
		rtp, rtcp  string
		codecNames []string
		err        bool
	}{
		// RTPEngine's rewrite: its own address and ports, a=rtcp, the
		// formats passed on; an unknown dynamic one left out
		{"rtpengine", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 31602 RTP/AVP 8 0 101\r\n" +
			"a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\na=rtcp:31603\r\n",
			"127.0.0.1:31602", "127.0.0.1:31603", []string{"PCMA", "PCMU"}, false},
		// media-level c= beats the session's; no a=rtcp: the next port;
		// a second audio stream is not read
		{"media level", "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP4 127.0.0.2\r\nm=audio 6000 RTP/AVP 8\r\nc=IN IP4 127.0.0.3\r\n",
			"127.0.0.2:5004", "127.0.0.2:5005", []string{"PCMU"}, false},
		{"rtcp elsewhere", "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 5004 RTP/AVP 0\r\na=rtcp:6000 IN IP4 127.0.0.9\r\n",
			"127.0.0.1:5004", "127.0.0.9:6000", []string{"PCMU"}, false},
		{"video only", "v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 5004 RTP/AVP 96\r\n", "", "", nil, true},
		{"no port", "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n", "", "", nil, true},
		{"no address", "v=0\r\nm=audio 5004 RTP/AVP 0\r\n", "", "", nil, true},
		{"bad c=", "v=0\r\nc=IN IP4\r\nm=audio 5004 RTP/AVP 0\r\n", "", "", nil, true},
		{"no known codec", "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 5004 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n", "", "", nil, true},
		{"too large", "v=0\r\n" + string(make([]byte, maxSDP)), "", "", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseSDP([]byte(tc.sdp))
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.rtp, r.RTP.String())
			assert.Equal(t, tc.rtcp, r.RTCP.String())
			var names []string
			for _, c := range r.Codecs {
				names = append(names, c.Name)
			}
			assert.Equal(t, tc.codecNames, names)
		})
	}
}
