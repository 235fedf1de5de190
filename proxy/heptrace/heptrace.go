// Package heptrace sends every SIP message the proxy reads or writes to a
// HEP collector as HEP3, the way SIPhon's tracing.hep does: protocol type 1,
// chunks 0x01-0x0c, the message as payload 0x0f, correlation id 0x11 = the
// Call-ID. sipgo has no write hook, so the capture sits on the sockets:
// wrapped UDP PacketConns (see capture.go) and TCP/TLS connections (package
// stream, which frames the byte streams into messages).
//
// Sending never blocks the SIP path: packets go through a bounded queue
// (tracing.hep.queue_size, SIPhon's 4096) and a full queue drops and counts.
package heptrace

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"go.uber.org/zap"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/sendconn"
	"github.com/siphon-otel/siphon-otel/internal/sipmsg"
)

// Reasons a packet is dropped, given to Settings.Dropped.
const (
	DropQueueFull = "queue_full" // the send queue is full
	DropSendError = "send_error" // the send failed, or the collector's host reported the packet lost
	DropOversized = "oversized"  // the message does not fit one HEP packet
)

// DropReasons are every reason Dropped is given, so that a counter's series
// exist before the first drop.
func DropReasons() []string { return []string{DropQueueFull, DropSendError, DropOversized} }

// Settings configure a Tracer; the fields are SIPhon's tracing.hep keys.
type Settings struct {
	Endpoint      string
	Transport     string // udp, tcp, tls
	AgentID       string
	CACert        string
	TLSServerName string
	QueueSize     int
	// Sent and Dropped feed the proxy's metrics. Over UDP a packet is sent
	// when confirmed (sendconn's ledger, within a second or two of the
	// write) and dropped as send_error when the collector's host reported
	// it lost (port or host unreachable).
	Sent    func(n int)
	Dropped func(reason string, n int)
	Logger  *slog.Logger
}

// Tracer queues and sends HEP packets.
type Tracer struct {
	s       Settings
	capture uint32
	queue   chan []byte
	conn    *sendconn.Conn
	done    chan struct{}
	stop    chan struct{}
	once    sync.Once

	// the unreachable warning, under the Conn's lock (its Lost callback)
	lost   int
	warned time.Time
}

// warnEvery is the least time between two warnings about an unreachable
// collector: a down collector is reported on every batch.
const warnEvery = 10 * time.Second

// CaptureID maps SIPhon's agent_id: a number is used as is, any other
// string is FNV-1a hashed to 32 bits.
func CaptureID(agentID string) uint32 {
	if n, err := strconv.ParseUint(agentID, 10, 32); err == nil {
		return uint32(n)
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(agentID))
	return h.Sum32()
}

// New starts a tracer; Close stops it.
func New(s Settings) (*Tracer, error) {
	t := &Tracer{s: s, capture: CaptureID(s.AgentID), queue: make(chan []byte, s.QueueSize),
		done: make(chan struct{}), stop: make(chan struct{})}
	t.conn = &sendconn.Conn{Transport: s.Transport, Endpoint: s.Endpoint, Timeout: 5 * time.Second, Logger: zap.NewNop(),
		Sent: s.Sent, Lost: t.unreachable}
	if s.Transport == sendconn.TLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.TLSServerName}
		if s.CACert != "" {
			pem, err := os.ReadFile(s.CACert)
			if err != nil {
				return nil, fmt.Errorf("heptrace: ca_cert: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, errors.New("heptrace: ca_cert: no certificate found")
			}
		}
		t.conn.TLS = cfg
	}
	go t.run()
	return t, nil
}

// Capture queues one SIP message seen on the wire. It copies payload.
func (t *Tracer) Capture(transport string, src, dst net.Addr, payload []byte, at time.Time) {
	if t == nil || len(payload) == 0 {
		return
	}
	p := hep.Packet{
		Protocol: hep.ProtoUDP, ProtoType: hep.TypeSIP, CaptureID: t.capture, Payload: payload,
		Fields: hep.HasFamily | hep.HasProtocol | hep.HasProtoType | hep.HasCaptureID,
	}
	if transport != "udp" {
		p.Protocol = hep.ProtoTCP
	}
	setEnd := func(a net.Addr, ip *netip.Addr, port *uint16, f hep.Field, pf hep.Field) {
		ap, ok := addrPort(a)
		if !ok {
			return
		}
		*ip, *port = ap.Addr().Unmap(), ap.Port()
		p.Fields |= f | pf
	}
	setEnd(src, &p.SrcIP, &p.SrcPort, hep.HasSrcIP, hep.HasSrcPort)
	setEnd(dst, &p.DstIP, &p.DstPort, hep.HasDstIP, hep.HasDstPort)
	p.Family = hep.FamilyIPv4
	if p.SrcIP.Is6() || p.DstIP.Is6() {
		p.Family = hep.FamilyIPv6
	}
	p.SetTime(at)
	// a view of payload, not a copy: the summary only lives until AppendV3
	// has copied what it needs (this runs for every message the proxy
	// sends or receives)
	if s, err := sipmsg.Parse(unsafe.String(unsafe.SliceData(payload), len(payload))); err == nil && s.CallID != "" {
		p.CorrelationID = unsafe.Slice(unsafe.StringData(s.CallID), len(s.CallID))
	}
	b, err := p.AppendV3(packetBuf())
	if err != nil {
		t.s.Dropped(DropOversized, 1)
		return
	}
	select {
	case t.queue <- b:
	default:
		t.s.Dropped(DropQueueFull, 1)
		recycle(b)
	}
}

// addrPort reads the address of the UDP and TCP kinds without the
// String/parse round trip, and any other kind through it.
func addrPort(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort(), a != nil
	case *net.TCPAddr:
		return a.AddrPort(), a != nil
	case nil:
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap, err == nil
}

// linger is how long the sender lets packets gather after the first one
// of a batch: at a few thousand messages per second, waking for each and
// writing each alone cost more CPU than the proxy's own SIP work.
const linger = time.Millisecond

func (t *Tracer) run() {
	defer close(t.done)
	batch := make([][]byte, 0, 256)
	for {
		select {
		case b := <-t.queue:
			batch = append(batch[:0], b)
			select {
			case <-time.After(linger):
			case <-t.stop: // drained below
			}
		drain:
			for len(batch) < cap(batch) {
				select {
				case b := <-t.queue:
					batch = append(batch, b)
				default:
					break drain
				}
			}
			t.send(batch)
		case <-t.stop:
			// what is queued still goes out
			for {
				select {
				case b := <-t.queue:
					t.send([][]byte{b})
				default:
					return
				}
			}
		}
	}
}

// packets holds encoding buffers between messages: one per captured
// message would otherwise be garbage the proxy's GC pays for.
var packets sync.Pool

func packetBuf() []byte {
	if b, ok := packets.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 2048)
}

func recycle(b []byte) {
	if cap(b) <= 64<<10 { // keep only ordinary sizes
		packets.Put(&b)
	}
}

func (t *Tracer) send(batch [][]byte) {
	defer func() {
		for _, b := range batch {
			recycle(b)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	from, err := t.conn.Send(ctx, len(batch), func(dst []byte, i int) ([]byte, bool) {
		return append(dst, batch[i]...), true
	})
	if err != nil {
		t.s.Dropped(DropSendError, len(batch)-from)
		t.s.Logger.Warn("HEP send failed", "endpoint", t.s.Endpoint, "error", err)
	}
}

// unreachable counts UDP packets the collector's host reported lost, and
// warns at most every warnEvery with how many were lost since the last
// warning.
func (t *Tracer) unreachable(reason string, n int) {
	t.s.Dropped(DropSendError, n)
	t.lost += n
	if now := time.Now(); now.Sub(t.warned) >= warnEvery {
		t.s.Logger.Warn("HEP collector unreachable; packets lost", "endpoint", t.s.Endpoint, "reason", reason, "packets", t.lost)
		t.warned, t.lost = now, 0
	}
}

// Close sends what is queued and stops.
func (t *Tracer) Close() {
	if t == nil {
		return
	}
	t.once.Do(func() {
		close(t.stop)
		<-t.done
		// settles the UDP accounting: waits at most sendconn.ConfirmGrace
		t.conn.Close(context.Background())
	})
}
