//go:build integration

package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/nopexporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/siphon-otel/siphon-otel/exporters/homerexporter"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/procstat"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver"
)

// sipSize is the SIP message size the ingest goal is stated for.
const sipSize = 700

// hepPackets builds n HEP3 packets, each carrying a distinct 700-byte SIP
// INVITE (the RFC 3665 fixture with its own Call-ID, padded to size).
func hepPackets(tb testing.TB, n int) [][]byte {
	tb.Helper()
	invite := fixture.Invite()
	out := make([][]byte, n)
	for i := range out {
		msg := strings.Replace(string(invite), "a84b4c76e66710@pc33.atlanta.example.com", fmt.Sprintf("bench-%08d@10.0.0.1", i), 1)
		msg = strings.Replace(msg, "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\r\n", "", 1)
		pad := sipSize - len(msg) - len("X-Pad: \r\n")
		if pad < 0 {
			tb.Fatalf("fixture too long for %d bytes", sipSize)
		}
		msg = strings.Replace(msg, "\r\nContent-Type:", "\r\nX-Pad: "+strings.Repeat("x", pad)+"\r\nContent-Type:", 1)
		if len(msg) != sipSize {
			tb.Fatalf("message is %d bytes, want %d", len(msg), sipSize)
		}
		p := hep.Packet{
			Family: hep.FamilyIPv4, Protocol: hep.ProtoUDP,
			SrcIP: netip.MustParseAddr("192.168.1.100"), DstIP: netip.MustParseAddr("10.0.0.1"),
			SrcPort: 5060, DstPort: 5060, TimeSec: 1772806981, TimeUsec: uint32(i % 1_000_000),
			ProtoType: hep.TypeSIP, CaptureID: uint32(2001 + i%4), Payload: []byte(msg),
			Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort | hep.HasDstPort |
				hep.HasTimeSec | hep.HasTimeUsec | hep.HasProtoType | hep.HasCaptureID,
		}
		var err error
		if out[i], err = p.AppendV3(nil); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// counter counts delivered packets and remembers when the last one came.
type counter struct {
	n    atomic.Int64
	last atomic.Int64 // unix nanoseconds
}

func (c *counter) add(n int) {
	c.n.Add(int64(n))
	c.last.Store(time.Now().UnixNano())
}

// wait returns once want packets were delivered or, over UDP where the
// kernel may drop, once nothing arrived for quiet (counted from the wait's
// start while nothing has: a pipeline's batch may still be on its way).
func (c *counter) wait(tb testing.TB, want int64, quiet time.Duration) int64 {
	start := time.Now()
	deadline := start.Add(2 * time.Minute)
	for {
		n := c.n.Load()
		if n >= want {
			return n
		}
		last := time.Unix(0, c.last.Load())
		if last.Before(start) {
			last = start
		}
		if quiet > 0 && time.Since(last) > quiet {
			return n
		}
		if time.Now().After(deadline) {
			tb.Fatalf("delivered %d of %d packets in 2 minutes", n, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// ingestResult is one sub-benchmark's last (largest) run.
type ingestResult struct {
	perSec, loss, allocs, cpuPerPacket float64
}

// BenchmarkHEPIngest sends b.N HEP packets of 700-byte SIP messages over
// loopback as fast as one sender goes, one write per packet as HEP agents
// send (udp, tcp) or coalesced into 64 KiB writes (tcp64k, where the raw
// reader measures memory bandwidth rather than a sender), and measures the
// delivered rate of:
// raw, a plain Go socket reader that only drains the socket (the physical
// limit of this machine, the baseline); nop, the hep receiver -> batch
// processor -> nop exporter; homer, the same into the homer exporter
// relaying to a HEP TCP sink. allocs/op is per packet sent, process-wide.
// The parent benchmark prints each pipeline's rate as a ratio of raw.
func BenchmarkHEPIngest(b *testing.B) {
	pkts := hepPackets(b, 1024)
	results := map[string]ingestResult{}
	for _, transport := range []string{"udp", "tcp", "tcp64k"} {
		for _, sink := range []string{"raw", "nop", "homer"} {
			name := transport + "/" + sink
			b.Run(name, func(b *testing.B) {
				results[name] = runIngest(b, transport, sink, pkts)
			})
		}
	}
	names := make([]string, 0, len(results))
	for n := range results {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := results[n]
		raw := results[strings.SplitN(n, "/", 2)[0]+"/raw"]
		own := r.cpuPerPacket - raw.cpuPerPacket
		perCore := "-"
		if own > 0 {
			perCore = fmt.Sprintf("%.0f", 1e6/own)
		}
		fmt.Printf("hep ingest %-12s %9.0f packets/s  %.3f of raw  loss %.2f%%  %.1f allocs/packet  %.2f CPU-µs/packet (%.2f over raw: %s packets/s per core)\n",
			n, r.perSec, r.perSec/raw.perSec, 100*r.loss, r.allocs, r.cpuPerPacket, own, perCore)
	}
}

func runIngest(b *testing.B, sender, sink string, pkts [][]byte) ingestResult {
	transport := strings.TrimSuffix(sender, "64k")
	addr := ports.Addr(b)
	var got counter
	stop := startIngest(b, transport, sink, addr, &got)
	defer stop()

	send := dialSender(b, transport, addr, sender != transport)
	var m0, m1 runtimeMem
	m0.read()
	cpu0, err := procstat.CPU(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if err := send(pkts[i%len(pkts)]); err != nil {
			b.Fatalf("send packet %d: %v", i, err)
		}
	}
	if err := send(nil); err != nil { // flush
		b.Fatal(err)
	}
	quiet := time.Duration(0)
	if transport == "udp" {
		quiet = 300 * time.Millisecond
	}
	n := got.wait(b, int64(b.N), quiet)
	elapsed := time.Unix(0, got.last.Load()).Sub(start)
	b.StopTimer()
	cpu1, err := procstat.CPU(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	m1.read()
	if transport == "tcp" && n != int64(b.N) {
		b.Fatalf("TCP lost packets: %d of %d delivered", n, b.N)
	}
	if n == 0 {
		b.Fatalf("none of %d packets delivered", b.N)
	}
	r := ingestResult{
		perSec: float64(n) / elapsed.Seconds(),
		loss:   1 - float64(n)/float64(b.N),
		allocs: float64(m1.mallocs-m0.mallocs) / float64(b.N),
		// the whole process: sender, pipeline and sinks; a pipeline's own
		// cost is this minus the raw run's (same sender, trivial reader)
		cpuPerPacket: (cpu1 - cpu0).Seconds() / float64(n) * 1e6,
	}
	b.ReportMetric(r.perSec, "packets/s")
	b.ReportMetric(r.cpuPerPacket, "cpu-µs/packet")
	b.ReportMetric(100*r.loss, "loss-%")
	return r
}

// dialSender returns a function sending one packet; nil flushes. With
// coalesce, TCP goes through a 64 KiB buffer.
func dialSender(b *testing.B, transport, addr string, coalesce bool) func([]byte) error {
	conn, err := net.Dial(transport, addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	if !coalesce {
		return func(p []byte) error {
			if p == nil {
				return nil
			}
			_, err := conn.Write(p)
			return err
		}
	}
	w := bufio.NewWriterSize(conn, 64<<10)
	return func(p []byte) error {
		if p == nil {
			return w.Flush()
		}
		_, err := w.Write(p)
		return err
	}
}

// startIngest starts the system under test on addr, counting into got.
func startIngest(b *testing.B, transport, sink, addr string, got *counter) (stop func()) {
	if sink == "raw" {
		return startRawReader(b, transport, addr, got)
	}
	ctx := context.Background()
	host := componenttest.NewNopHost()
	var exp consumer.Logs
	var shut []component.Component
	switch sink {
	case "nop":
		e, err := nopexporter.NewFactory().CreateLogs(ctx, exportertest.NewNopSettings(component.MustNewType("nop")),
			nopexporter.NewFactory().CreateDefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		exp, shut = e, append(shut, e)
		next := exp
		exp, _ = consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
			got.add(ld.LogRecordCount())
			return next.ConsumeLogs(ctx, ld)
		})
	case "homer":
		homerAddr := startHEPSink(b, got)
		f := homerexporter.NewFactory()
		cfg := f.CreateDefaultConfig().(*homerexporter.Config)
		cfg.Endpoint, cfg.Transport = homerAddr, homerexporter.TransportTCP
		q := exporterhelper.NewDefaultQueueConfig()
		q.BlockOnOverflow = true // backpressure instead of drops, as the distro's relay configs do
		cfg.QueueConfig = configoptional.Some(q)
		e, err := f.CreateLogs(ctx, exportertest.NewNopSettings(f.Type()), cfg)
		if err != nil {
			b.Fatal(err)
		}
		exp, shut = e, append(shut, e)
	}
	bf := batchprocessor.NewFactory()
	bp, err := bf.CreateLogs(ctx, processortest.NewNopSettings(bf.Type()), bf.CreateDefaultConfig(), exp)
	if err != nil {
		b.Fatal(err)
	}
	rf := hepreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*hepreceiver.Config)
	rcfg.TLS = configoptional.None[hepreceiver.TLSConfig]()
	if transport == "udp" {
		rcfg.TCP = configoptional.None[hepreceiver.TCPConfig]()
		rcfg.UDP.GetOrInsertDefault().Endpoint = addr
	} else {
		rcfg.UDP = configoptional.None[hepreceiver.UDPConfig]()
		rcfg.TCP.GetOrInsertDefault().Endpoint = addr
	}
	rcv, err := rf.CreateLogs(ctx, receivertest.NewNopSettings(rf.Type()), rcfg, bp)
	if err != nil {
		b.Fatal(err)
	}
	// start downstream first, stop upstream first, as the collector does
	order := append(shut, bp, rcv)
	for _, c := range order {
		if err := c.Start(ctx, host); err != nil {
			b.Fatal(err)
		}
	}
	return func() {
		for i := len(order) - 1; i >= 0; i-- {
			if err := order[i].Shutdown(ctx); err != nil {
				b.Error(err)
			}
		}
	}
}

// startRawReader drains the socket and counts packets: a datagram is one
// packet, a TCP stream is counted by bytes (every packet has one size).
func startRawReader(b *testing.B, transport, addr string, got *counter) func() {
	var wg sync.WaitGroup
	var closer func() error
	switch transport {
	case "udp":
		conn, err := net.ListenPacket("udp", addr)
		if err != nil {
			b.Fatal(err)
		}
		_ = conn.(*net.UDPConn).SetReadBuffer(4 << 20) // as the receiver's default
		closer = conn.Close
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 65536)
			for {
				if _, _, err := conn.(*net.UDPConn).ReadFromUDPAddrPort(buf); err != nil {
					return
				}
				got.add(1)
			}
		}()
	case "tcp":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		accepted := make(chan net.Conn, 1)
		closer = func() error {
			err := ln.Close()
			select {
			case c := <-accepted:
				_ = c.Close()
			default:
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
			buf := make([]byte, 64<<10)
			var bytes, size int64
			for {
				n, err := c.Read(buf)
				if size == 0 && n >= 6 {
					size = int64(buf[4])<<8 | int64(buf[5]) // HEP3 total length
				}
				bytes += int64(n)
				if size > 0 && bytes/size > got.n.Load() {
					got.add(int(bytes/size - got.n.Load()))
				}
				if err != nil {
					return
				}
			}
		}()
	}
	return func() {
		_ = closer()
		wg.Wait()
	}
}

// startHEPSink is a Homer stand-in over TCP that counts framed packets.
func startHEPSink(b *testing.B, got *counter) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				sr := hep.NewStreamReader(c, hep.MaxPacketLen, false, 0)
				for {
					if _, err := sr.Next(); err != nil {
						if !errors.Is(err, net.ErrClosed) && !bytes.Contains([]byte(err.Error()), []byte("EOF")) {
							b.Errorf("HEP sink: %v", err)
						}
						return
					}
					got.add(1)
				}
			}()
		}
	}()
	b.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}
