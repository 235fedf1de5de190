package rtpua

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// remoteOf is how a peer reaches e, from e's own SDP.
func remoteOf(t *testing.T, e *Endpoint) Remote {
	t.Helper()
	r, err := ParseSDP(e.Offer(1))
	require.NoError(t, err)
	return r
}

// Two endpoints talk straight to each other over loopback for about a
// second and a half: A's stream loses every 10th packet and jitters by
// up to 40 ms, B's is clean. Each side's receiver figures, its report
// blocks and what the other side read from them agree with what was sent.
func TestEndpointPair(t *testing.T) {
	a, err := Listen(loopback, PCMU, G729)
	require.NoError(t, err)
	b, err := Listen(loopback, G729, PCMU)
	require.NoError(t, err)
	assert.Zero(t, a.RTPAddr().Port()%2, "RTP on an even port")

	// B answers A's offer: A's order of preference wins
	codec, err := b.Choose(remoteOf(t, a))
	require.NoError(t, err)
	assert.Equal(t, PCMU, codec)
	cfg := Config{RTCPInterval: 200 * time.Millisecond}
	require.NoError(t, b.Start(remoteOf(t, a), codec, cfg))
	cfg.Impair = Impairment{LossEvery: 10, JitterSpread: 40 * time.Millisecond, Seed: 5}
	require.NoError(t, a.Start(remoteOf(t, b), codec, cfg))
	assert.Error(t, a.Start(remoteOf(t, b), codec, cfg), "started once")

	// until A has had B's reports about it for a while
	require.Eventually(t, func() bool { return len(a.Stats().Peer) >= 6 }, 10*time.Second, 10*time.Millisecond)
	sa := a.Stop()
	// B has everything A sent once A's BYE came
	require.Eventually(t, func() bool { return b.Stats().PeerBye }, 5*time.Second, 5*time.Millisecond)
	sb := b.Stop()
	assert.Equal(t, sb, b.Stop(), "stopped once")

	for _, s := range []Stats{sa, sb} {
		assert.Equal(t, PCMU, s.Codec)
		assert.Zero(t, s.SendErrors)
		assert.Zero(t, s.Foreign)
		assert.Zero(t, s.Unreadable)
		assert.Zero(t, s.ReadErrors)
		assert.Positive(t, s.RTCPReceived)
		assert.Equal(t, uint64(len(s.Sent)), s.ReportsSent, "all kept")
		assert.Equal(t, uint64(len(s.Peer)), s.PeerReports, "all kept")
		assert.Equal(t, 160*s.PacketsSent, s.OctetsSent)
		require.NotEmpty(t, s.Sent)
		last := s.Sent[len(s.Sent)-1]
		assert.True(t, last.Bye, "the last report says BYE")
		for i, r := range s.Sent {
			assert.True(t, r.SR, "report %d: a sender's", i)
			assert.Equal(t, i == len(s.Sent)-1, r.Bye, "report %d", i)
		}
	}
	assert.Equal(t, sa.PacketsSent/10, sa.PacketsDropped, "every 10th")
	assert.Zero(t, sb.PacketsDropped)

	// B's view of A's stream: every packet A put on the wire, its losses,
	// its jitter
	assert.Equal(t, sa.SSRC, sb.PeerSSRC)
	assert.Equal(t, sa.PacketsSent-sa.PacketsDropped, sb.PacketsReceived)
	assert.Equal(t, int64(sb.Expected-sb.PacketsReceived), sb.Lost)
	assert.InDelta(t, sa.PacketsSent, sb.Expected, 1, "a dropped last packet is not expected")
	// The estimator's arithmetic is TestReceptionJitter's, on chosen
	// arrival times. Here arrivals are real: the machine's scheduling adds
	// its own jitter, which B's clean stream to A measures in this same
	// run (sa.Jitter). So A's impaired stream must show at least half of
	// what the impairment gives (a jitter of 0 misses that) and at most
	// 1.5 times it plus twice the measured scheduling (the spread itself,
	// or a doubled estimate, would exceed that on an idle machine).
	want, _ := ExpectedJitter(40 * time.Millisecond)
	impaired, clean := float64(sb.Jitter)/8000, float64(sa.Jitter)/8000
	assert.GreaterOrEqual(t, impaired, 0.5*want.Seconds(), "B's jitter estimate of A's impaired stream")
	assert.LessOrEqual(t, impaired, 1.5*want.Seconds()+2*clean, "B's jitter estimate of A's impaired stream (scheduling %.1f ms)", 1000*clean)
	// each report's fraction lost is its interval's (the arithmetic is
	// TestReceptionLoss's), and the intervals add up to the loss
	var expected, received uint64
	for i, r := range sb.Sent {
		require.NotNil(t, r.Block, "report %d", i)
		assert.Equal(t, sa.SSRC, r.Block.SSRC)
		expected += r.Block.ExpectedInterval
		received += r.Block.ReceivedInterval
	}
	assert.Equal(t, sb.Expected, expected)
	assert.Equal(t, sb.PacketsReceived, received)
	assert.InDelta(t, 0.1, float64(sb.Lost)/float64(sb.Expected), 0.02)
	// A's view of B's clean stream
	assert.Equal(t, sb.SSRC, sa.PeerSSRC)
	assert.Zero(t, sa.Lost)
	// a clean stream's jitter is only the scheduling's, which both streams
	// share: below the impaired one's (a stream impaired by mistake would
	// not be)
	assert.Less(t, clean, impaired, "a clean stream's jitter is below the impaired one's")

	// what A read from B's reports is what B sent, in order
	require.LessOrEqual(t, len(sa.Peer), len(sb.Sent))
	for i, p := range sa.Peer {
		sent := sb.Sent[i].Block
		assert.Equal(t, sent.FractionLost, p.Block.FractionLost, "report %d", i)
		assert.Equal(t, sent.Lost, p.Block.Lost, "report %d", i)
		assert.Equal(t, sent.Jitter, p.Block.Jitter, "report %d", i)
		assert.Equal(t, sent.HighestSeq, p.Block.HighestSeq, "report %d", i)
		if i > 0 { // the first report precedes any SR of A's
			require.True(t, p.HasRTT, "report %d has A's LSR", i)
			assert.Less(t, p.RTT, 50*time.Millisecond, "loopback")
			assert.GreaterOrEqual(t, p.RTT, time.Duration(0))
		}
	}
}

func TestEndpointRefuses(t *testing.T) {
	e, err := Listen(loopback)
	require.NoError(t, err)
	defer e.Stop()
	for _, tc := range []struct {
		name   string
		remote Remote
		codec  Codec
		cfg    Config
	}{
		{"not loopback", Remote{RTP: netip.MustParseAddrPort("192.0.2.1:4000"), RTCP: netip.MustParseAddrPort("127.0.0.1:4001")}, PCMU, Config{}},
		{"no frame", Remote{RTP: netip.MustParseAddrPort("127.0.0.1:4000"), RTCP: netip.MustParseAddrPort("127.0.0.1:4001")}, Codec{Name: "X", ClockRate: 8000}, Config{}},
		{"bad impairment", Remote{RTP: netip.MustParseAddrPort("127.0.0.1:4000"), RTCP: netip.MustParseAddrPort("127.0.0.1:4001")}, PCMU, Config{Impair: Impairment{LossEvery: 1}}},
		{"RTCP too often", Remote{RTP: netip.MustParseAddrPort("127.0.0.1:4000"), RTCP: netip.MustParseAddrPort("127.0.0.1:4001")}, PCMU, Config{RTCPInterval: time.Millisecond}},
	} {
		assert.Error(t, e.Start(tc.remote, tc.codec, tc.cfg), tc.name)
	}
	_, err = e.Choose(Remote{Codecs: []Codec{G729}})
	assert.Error(t, err, "PCMU only")

	stopped, err := Listen(loopback)
	require.NoError(t, err)
	s := stopped.Stop()
	assert.Empty(t, s.Sent, "never started: no report")
	assert.Error(t, stopped.Start(remoteOf(t, e), PCMU, Config{}), "stopped")
}

// MaxDuration ends a stream that nobody stops.
func TestEndpointMaxDuration(t *testing.T) {
	a, err := Listen(loopback)
	require.NoError(t, err)
	b, err := Listen(loopback)
	require.NoError(t, err)
	defer b.Stop()
	require.NoError(t, a.Start(remoteOf(t, b), PCMU, Config{MaxDuration: 100 * time.Millisecond}))
	require.Eventually(t, func() bool { return b.Stats().PeerBye }, 5*time.Second, 5*time.Millisecond)
	s := a.Stop()
	assert.InDelta(t, 5, s.PacketsSent, 1, "100 ms of 20 ms packets")
}
