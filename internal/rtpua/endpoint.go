// Package rtpua is one side of an audio call's media: an RTP stream of
// silence sent every 20 ms (pion/rtp), the peer's stream received and
// accounted for as RFC 3550 says (sequence numbers, loss, interarrival
// jitter), and RTCP sender or receiver reports (pion/rtcp) sent on the RTP
// port + 1 every RTCPInterval, with report blocks, LSR/DLSR and the SDES
// CNAME, the last one with a BYE. It can impair what it sends (loss,
// jitter; Impairment) to stand for a network. The demo's call generator
// and the system tests run it on both ends of calls through sipproxy and
// RTPEngine; it only ever sends to loopback addresses.
//
// What the reports say of an impaired stream, and how closely: loss is
// counted, so a report block's fraction lost is the interval's exactly
// (truncated to 1/256; a packet in flight at a report moves between
// intervals) and LossEvery makes it deterministic. Jitter is not counted
// but estimated: RFC 3550's J is an exponential average over 16 packets
// of the transit differences, so one report's value scatters about 13 %
// around what it converges to (ExpectedJitter) for a JitterSpread of 2
// PTime, and the scheduling of the sender, any relay and the receiver
// adds its own, from tenths of a ms on an idle machine to several ms on
// a loaded one. The system test (proxy/e2e TestMediaQuality) takes the
// mean of a direction's reports within 25 % of ExpectedJitter: about four
// standard deviations of that mean, with room for the scheduling.
package rtpua

import (
	"container/heap"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/siphon-otel/siphon-otel/internal/mediaq"
)

// Config shapes what an endpoint sends.
type Config struct {
	// RTCPInterval is the time between reports (default 1 s, at least
	// MinRTCPInterval). It is fixed, not RFC 3550's randomised interval:
	// that spreads the reports of many members of a session; a call has
	// two.
	RTCPInterval time.Duration
	// CNAME is the SDES CNAME (default "rtpua@<local address>").
	CNAME  string
	Impair Impairment
	// MaxDuration bounds the stream: it stops by itself after this long
	// (default 1 h), as if Stop had been called, except for the sockets.
	MaxDuration time.Duration
}

// Endpoint is an RTP socket and the RTCP socket on the next port,
// receiving from the moment it listens, sending from Start to Stop.
type Endpoint struct {
	rtp, rtcp *net.UDPConn
	accept    []Codec
	ssrc      uint32
	seq0      uint16
	ts0       uint32

	mu          sync.Mutex
	rx          reception
	foreign     uint64 // RTP of another source than the first, or of a format not accepted
	unreadable  uint64 // RTP or RTCP that did not parse
	rtcpIn      uint64
	peer        []PeerReport
	peerReports uint64
	reportsSent uint64
	readErrs    uint64
	peerBye     bool
	sent        []Report
	codec       Codec
	pktSent     uint64
	octSent     uint64
	dropped     uint64
	sendErrs    uint64
	started     bool

	stop     chan struct{}
	stopOnce sync.Once
	sender   sync.WaitGroup
	readers  sync.WaitGroup
}

// MinRTCPInterval bounds the report rate (and with MaxDuration the
// reports an endpoint keeps: Stats.Sent and Stats.Peer).
const MinRTCPInterval = 100 * time.Millisecond

// maxKept bounds Stats.Sent and Stats.Peer; the reports beyond are
// counted (Stats.ReportsSent, Stats.PeerReports), not kept.
const maxKept = 4096

// maxListenTries bounds the search for a free port pair.
const maxListenTries = 100

// Listen opens an RTP socket on an even port of host chosen by the kernel
// and the RTCP socket on the port after it, and starts receiving. accept
// are the formats it offers and takes (default PCMU), in order.
func Listen(host netip.Addr, accept ...Codec) (*Endpoint, error) {
	if len(accept) == 0 {
		accept = []Codec{PCMU}
	}
	var ids [10]byte
	_, _ = rand.Read(ids[:]) // never fails (crypto/rand)
	e := &Endpoint{accept: slices.Clone(accept), stop: make(chan struct{}),
		ssrc: binary.BigEndian.Uint32(ids[0:]), seq0: binary.BigEndian.Uint16(ids[4:]), ts0: binary.BigEndian.Uint32(ids[6:])}
	var err error
	for range maxListenTries {
		e.rtp, e.rtcp, err = listenPair(host)
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("rtpua: no RTP/RTCP port pair on %s after %d tries: %w", host, maxListenTries, err)
	}
	e.readers.Add(2)
	go e.readRTP()
	go e.readRTCP()
	return e, nil
}

// listenPair binds an even port and the next one.
func listenPair(host netip.Addr) (rtpConn, rtcpConn *net.UDPConn, err error) {
	rtpConn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(host, 0)))
	if err != nil {
		return nil, nil, err
	}
	port := rtpConn.LocalAddr().(*net.UDPAddr).Port
	if port%2 != 0 || port == 65535 {
		rtpConn.Close()
		return nil, nil, fmt.Errorf("port %d is odd", port)
	}
	rtcpConn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(host, uint16(port+1))))
	if err != nil {
		rtpConn.Close()
		return nil, nil, err
	}
	return rtpConn, rtcpConn, nil
}

// RTPAddr is where the endpoint receives RTP; RTCP is on the next port.
func (e *Endpoint) RTPAddr() netip.AddrPort { return e.rtp.LocalAddr().(*net.UDPAddr).AddrPort() }

// SSRC is the endpoint's own source.
func (e *Endpoint) SSRC() uint32 { return e.ssrc }

// Offer is an SDP offering the formats the endpoint accepts.
func (e *Endpoint) Offer(sessionID uint64) []byte { return SDP(e.RTPAddr(), sessionID, e.accept...) }

// Choose returns the first format of remote's (the offerer's order of
// preference, or an answer's choice) that the endpoint accepts, with
// remote's payload type.
func (e *Endpoint) Choose(remote Remote) (Codec, error) {
	for _, c := range remote.Codecs {
		for _, a := range e.accept {
			if a.Name == c.Name && a.ClockRate == c.ClockRate {
				return c, nil
			}
		}
	}
	return Codec{}, fmt.Errorf("rtpua: none of %v is among %v", remote.Codecs, e.accept)
}

// Start sends codec to remote: RTP every 20 ms (impaired as cfg says) and
// RTCP every cfg.RTCPInterval, until Stop or cfg.MaxDuration. remote's
// addresses must be loopback ones.
func (e *Endpoint) Start(remote Remote, codec Codec, cfg Config) error {
	if err := cfg.Impair.Validate(); err != nil {
		return err
	}
	if !remote.RTP.Addr().IsLoopback() || !remote.RTCP.Addr().IsLoopback() {
		return fmt.Errorf("rtpua: %s / %s: only loopback addresses are sent to", remote.RTP, remote.RTCP)
	}
	if codec.FrameBytes <= 0 || codec.ClockRate == 0 {
		return fmt.Errorf("rtpua: codec %q has no frame size or clock", codec.Name)
	}
	switch {
	case cfg.RTCPInterval == 0:
		cfg.RTCPInterval = time.Second
	case cfg.RTCPInterval < MinRTCPInterval:
		return fmt.Errorf("rtpua: RTCP interval %s is under %s", cfg.RTCPInterval, MinRTCPInterval)
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = time.Hour
	}
	if cfg.CNAME == "" {
		cfg.CNAME = "rtpua@" + e.RTPAddr().Addr().String()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return errors.New("rtpua: already started")
	}
	select {
	case <-e.stop:
		return errors.New("rtpua: stopped")
	default:
	}
	e.started, e.codec = true, codec
	e.sender.Add(1)
	go e.run(remote, codec, cfg)
	return nil
}

// pending is a packet held back by the jitter impairment.
type pending struct {
	at time.Time
	n  uint64
}

type pendingQueue []pending

func (q pendingQueue) Len() int { return len(q) }
func (q pendingQueue) Less(i, j int) bool {
	return q[i].at.Before(q[j].at) || q[i].at.Equal(q[j].at) && q[i].n < q[j].n
}
func (q pendingQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *pendingQueue) Push(x any)   { *q = append(*q, x.(pending)) }
func (q *pendingQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}

// run is the sender: packet n is due at start + n*PTime (plus its
// impairment delay); reports go out every RTCPInterval. Stopping ends
// the stream, lets the delayed packets go at their times and sends the
// last report with a BYE.
func (e *Endpoint) run(remote Remote, codec Codec, cfg Config) {
	defer e.sender.Done()
	const ptime = PTime * time.Millisecond
	play := newPlayer(cfg.Impair)
	rtpTo, rtcpTo := net.UDPAddrFromAddrPort(remote.RTP), net.UDPAddrFromAddrPort(remote.RTCP)
	payload := make([]byte, codec.FrameBytes)
	for i := range payload {
		payload[i] = codec.Silence
	}
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: codec.PayloadType, SSRC: e.ssrc}, Payload: payload}
	buf := make([]byte, 1500)
	var (
		q        pendingQueue
		n        uint64 // packets generated
		start    = time.Now()
		deadline = start.Add(cfg.MaxDuration)
		nextRTCP = start.Add(cfg.RTCPInterval)
		stop     = e.stop
		stopping bool
		timer    = time.NewTimer(time.Hour)
	)
	defer timer.Stop()
	for {
		now := time.Now()
		if !stopping && !now.Before(deadline) {
			stopping = true
		}
		for ; !stopping && !start.Add(time.Duration(n)*ptime).After(now); n++ {
			e.mu.Lock()
			e.pktSent++
			e.octSent += uint64(len(payload))
			if play.drop(n) {
				e.dropped++
				e.mu.Unlock()
				continue
			}
			e.mu.Unlock()
			heap.Push(&q, pending{at: start.Add(time.Duration(n)*ptime + play.delay()), n: n})
		}
		for len(q) > 0 && !q[0].at.After(now) {
			p := heap.Pop(&q).(pending)
			pkt.SequenceNumber = e.seq0 + uint16(p.n)
			pkt.Timestamp = e.ts0 + uint32(p.n)*codec.samples()
			pkt.Marker = p.n == 0 // the start of a talkspurt (RFC 3551 4.1)
			k, err := pkt.MarshalTo(buf)
			if err == nil {
				_, err = e.rtp.WriteToUDP(buf[:k], rtpTo)
			}
			if err != nil {
				e.mu.Lock()
				e.sendErrs++
				e.mu.Unlock()
			}
		}
		if stopping && len(q) == 0 {
			e.report(rtcpTo, cfg.CNAME, start, codec, true)
			return
		}
		if !stopping && !nextRTCP.After(now) {
			e.report(rtcpTo, cfg.CNAME, start, codec, false)
			nextRTCP = nextRTCP.Add(cfg.RTCPInterval)
		}
		var wake time.Time
		if len(q) > 0 {
			wake = q[0].at
		}
		if !stopping {
			for _, t := range []time.Time{start.Add(time.Duration(n) * ptime), nextRTCP, deadline} {
				if wake.IsZero() || t.Before(wake) {
					wake = t
				}
			}
		}
		timer.Reset(time.Until(wake))
		select {
		case <-timer.C:
		case <-stop:
			stopping, stop = true, nil
		}
	}
}

// report sends one RTCP compound packet: an SR (an RR before the first
// RTP packet) with a report block on the peer's stream once it has been
// heard, the SDES CNAME, and a BYE when last.
func (e *Endpoint) report(to *net.UDPAddr, cname string, start time.Time, codec Codec, bye bool) {
	now := time.Now()
	e.mu.Lock()
	r := Report{At: now, Bye: bye}
	var blocks []rtcp.ReceptionReport
	if e.rx.started {
		b := e.rx.block(now)
		r.Block = &b
		blocks = []rtcp.ReceptionReport{{SSRC: b.SSRC, FractionLost: b.FractionLost, TotalLost: uint32(b.Lost) & 0xffffff,
			LastSequenceNumber: b.HighestSeq, Jitter: b.Jitter, LastSenderReport: b.LSR, Delay: b.DLSR}}
	}
	var first rtcp.Packet
	if e.pktSent > 0 {
		r.SR = true
		first = &rtcp.SenderReport{SSRC: e.ssrc, NTPTime: mediaq.NTP(now),
			RTPTime:     e.ts0 + uint32(now.Sub(start).Seconds()*float64(codec.ClockRate)),
			PacketCount: uint32(e.pktSent), OctetCount: uint32(e.octSent), Reports: blocks}
	} else {
		first = &rtcp.ReceiverReport{SSRC: e.ssrc, Reports: blocks}
	}
	if e.reportsSent++; len(e.sent) < maxKept {
		e.sent = append(e.sent, r)
	}
	e.mu.Unlock()
	compound := []rtcp.Packet{first, rtcp.NewCNAMESourceDescription(e.ssrc, cname)}
	if bye {
		compound = append(compound, &rtcp.Goodbye{Sources: []uint32{e.ssrc}})
	}
	b, err := rtcp.Marshal(compound)
	if err == nil {
		_, err = e.rtcp.WriteToUDP(b, to)
	}
	if err != nil {
		e.mu.Lock()
		e.sendErrs++
		e.mu.Unlock()
	}
}

func (e *Endpoint) readRTP() {
	defer e.readers.Done()
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, err := e.rtp.Read(buf)
		at := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// nothing else is expected of an unconnected UDP socket: note
			// it and stop receiving rather than spin on it
			e.mu.Lock()
			e.readErrs++
			e.mu.Unlock()
			return
		}
		err = pkt.Unmarshal(buf[:n])
		e.mu.Lock()
		switch c, ok := e.accepted(pkt.PayloadType); {
		case err != nil:
			e.unreadable++
		case !ok:
			e.foreign++
		case !e.rx.started:
			e.rx.ssrc, e.rx.clock = pkt.SSRC, float64(c.ClockRate)
			e.rx.packet(pkt.SequenceNumber, pkt.Timestamp, at)
		case pkt.SSRC != e.rx.ssrc:
			e.foreign++
		default:
			e.rx.packet(pkt.SequenceNumber, pkt.Timestamp, at)
		}
		e.mu.Unlock()
	}
}

// accepted returns the accepted format of a payload type: the negotiated
// one once started, else any of the offer's (static types).
func (e *Endpoint) accepted(pt uint8) (Codec, bool) {
	if e.started {
		return e.codec, pt == e.codec.PayloadType
	}
	for _, c := range e.accept {
		if c.PayloadType == pt {
			return c, true
		}
	}
	return Codec{}, false
}

func (e *Endpoint) readRTCP() {
	defer e.readers.Done()
	buf := make([]byte, 1500)
	for {
		n, err := e.rtcp.Read(buf)
		at := time.Now()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) { // as in readRTP
				e.mu.Lock()
				e.readErrs++
				e.mu.Unlock()
			}
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		e.mu.Lock()
		if err != nil {
			e.unreadable++
		} else {
			e.rtcpIn++
			for _, p := range pkts {
				e.peerPacket(p, at)
			}
		}
		e.mu.Unlock()
	}
}

// peerPacket takes in one RTCP packet of the peer's, e.mu held.
func (e *Endpoint) peerPacket(p rtcp.Packet, at time.Time) {
	var blocks []rtcp.ReceptionReport
	switch p := p.(type) {
	case *rtcp.SenderReport:
		if !e.rx.started || p.SSRC == e.rx.ssrc {
			e.rx.lsr, e.rx.lsrAt = uint32(p.NTPTime>>16), at
		}
		blocks = p.Reports
	case *rtcp.ReceiverReport:
		blocks = p.Reports
	case *rtcp.Goodbye:
		e.peerBye = true
	}
	for _, b := range blocks {
		if b.SSRC != e.ssrc {
			continue
		}
		lost := int64(b.TotalLost & 0xffffff)
		if lost >= 1<<23 {
			lost -= 1 << 24
		}
		pr := PeerReport{At: at, Block: Block{SSRC: b.SSRC, FractionLost: b.FractionLost, Lost: lost,
			HighestSeq: b.LastSequenceNumber, Jitter: b.Jitter, LSR: b.LastSenderReport, DLSR: b.Delay}}
		if rtt, ok := mediaq.RoundTrip(at, b.LastSenderReport, b.Delay); ok {
			pr.RTT, pr.HasRTT = time.Duration(rtt*float64(time.Second)), true
		}
		if e.peerReports++; len(e.peer) < maxKept {
			e.peer = append(e.peer, pr)
		}
	}
}

// Stop ends the stream (the delayed packets still go, then the last
// report with a BYE), closes the sockets and returns the figures.
func (e *Endpoint) Stop() Stats {
	e.stopOnce.Do(func() {
		close(e.stop)
		e.sender.Wait()
		e.rtp.Close()
		e.rtcp.Close()
		e.readers.Wait()
	})
	return e.Stats()
}

// Report is one RTCP compound packet the endpoint sent.
type Report struct {
	At    time.Time
	SR    bool   // a sender report (else a receiver report)
	Block *Block // the report block on the peer's stream; nil before it was heard
	Bye   bool
}

// PeerReport is a report block of the peer's on this endpoint's stream.
type PeerReport struct {
	At    time.Time // when it arrived
	Block Block     // the interval counts are not sent, so zero
	// RTT is RFC 3550's round trip A - LSR - DLSR, A the arrival here.
	RTT    time.Duration
	HasRTT bool
}

// Stats are an endpoint's figures.
type Stats struct {
	SSRC  uint32
	Codec Codec // what it sent (zero if it never started)
	// PacketsSent and OctetsSent are what its SRs count: every packet of
	// the stream, those the impairment dropped (PacketsDropped) too.
	PacketsSent, OctetsSent, PacketsDropped uint64
	SendErrors                              uint64
	// The peer's stream: its source, the packets received and expected,
	// the cumulative loss and the jitter estimate (timestamp units) now.
	PeerSSRC                  uint32
	PacketsReceived, Expected uint64
	Lost                      int64
	Jitter                    float64
	Foreign, Unreadable       uint64 // packets of another source or format; packets that did not parse
	RTCPReceived              uint64 // compound packets from the peer
	PeerBye                   bool
	ReadErrors                uint64       // socket errors, after which it stopped receiving
	Sent                      []Report     // the RTCP it sent, in order (the first maxKept)
	Peer                      []PeerReport // the peer's report blocks on its stream (the first maxKept)
	ReportsSent, PeerReports  uint64       // all of them
}

// JitterSeconds is the jitter estimate in seconds.
func (s Stats) JitterSeconds() float64 {
	if s.Codec.ClockRate == 0 {
		return 0
	}
	return s.Jitter / float64(s.Codec.ClockRate)
}

// Stats returns the figures so far.
func (e *Endpoint) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{SSRC: e.ssrc, Codec: e.codec, PacketsSent: e.pktSent, OctetsSent: e.octSent, PacketsDropped: e.dropped,
		SendErrors: e.sendErrs, Foreign: e.foreign, Unreadable: e.unreadable, RTCPReceived: e.rtcpIn, PeerBye: e.peerBye,
		ReadErrors: e.readErrs, Sent: slices.Clone(e.sent), Peer: slices.Clone(e.peer), ReportsSent: e.reportsSent, PeerReports: e.peerReports}
	if e.rx.started {
		s.PeerSSRC, s.PacketsReceived, s.Expected, s.Lost, s.Jitter = e.rx.ssrc, e.rx.received, e.rx.expected(), e.rx.lost(), e.rx.jitter
	}
	return s
}
