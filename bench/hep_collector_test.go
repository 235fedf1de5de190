//go:build integration

package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// EnvBaseBinary names the baseline otelcol-siphon (make bench-hep builds
// it at BENCH_BASE); without it BenchmarkHEPCollector runs the candidate
// ($OTELCOL_SIPHON) alone.
const EnvBaseBinary = "OTELCOL_SIPHON_BASE"

// callMessages is one call as a capture agent sees it at one hop: INVITE
// (with SDP), 100, 180, 200 (with SDP), ACK, BYE, 200. Requests: INVITE,
// ACK, BYE; responses: the other four, each the first of its transaction
// and To-tag, so that sipkpi counts every message once.
const (
	callRequests  = 3
	callResponses = 4
	callMessages  = callRequests + callResponses
)

// callIDMark is the Call-ID's placeholder in the templates, as wide as
// the decimal call number that replaces it in place (the packets keep
// their length, so nothing is encoded again per call).
const callIDMark = "CALLIDCALLIDCALL"

func callTemplates(tb testing.TB) [][]byte {
	tb.Helper()
	sdp := strings.Join([]string{"v=0", "o=alice 2890844526 2890844526 IN IP4 10.0.0.1", "s=-",
		"c=IN IP4 10.0.0.1", "t=0 0", "m=audio 49170 RTP/AVP 0 8 101", "a=rtpmap:0 PCMU/8000",
		"a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv", ""}, "\r\n")
	callID := "bench-" + callIDMark + "@10.0.0.1"
	msg := func(first, branch, toTag string, cseq int, method, body string, extra ...string) string {
		to := "<sip:bob@biloxi.example.com>"
		if toTag != "" {
			to += ";tag=" + toTag
		}
		h := []string{first,
			"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK" + branch + ";rport",
			"Max-Forwards: 70",
			"From: \"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774",
			"To: " + to,
			"Call-ID: " + callID,
			fmt.Sprintf("CSeq: %d %s", cseq, method),
			"Contact: <sip:alice@10.0.0.1:5060>",
			"User-Agent: Ozona/5.0",
		}
		h = append(h, extra...)
		if body != "" {
			h = append(h, "Content-Type: application/sdp")
		}
		h = append(h, fmt.Sprintf("Content-Length: %d", len(body)), "", body)
		return strings.Join(h, "\r\n")
	}
	allow := "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY"
	msgs := []struct {
		src, dst string
		sip      string
	}{
		{"10.0.0.1", "10.0.0.10", msg("INVITE sip:bob@biloxi.example.com SIP/2.0", "776asdhds", "", 1, "INVITE", sdp, allow, "Supported: replaces, timer")},
		{"10.0.0.10", "10.0.0.1", msg("SIP/2.0 100 Trying", "776asdhds", "", 1, "INVITE", "")},
		{"10.0.0.10", "10.0.0.1", msg("SIP/2.0 180 Ringing", "776asdhds", "a6c85cf", 1, "INVITE", "")},
		{"10.0.0.10", "10.0.0.1", msg("SIP/2.0 200 OK", "776asdhds", "a6c85cf", 1, "INVITE", sdp, allow)},
		{"10.0.0.1", "10.0.0.10", msg("ACK sip:bob@10.0.0.2:5060 SIP/2.0", "ack4f2b1", "a6c85cf", 1, "ACK", "")},
		{"10.0.0.1", "10.0.0.10", msg("BYE sip:bob@10.0.0.2:5060 SIP/2.0", "bye9c3d7", "a6c85cf", 2, "BYE", "")},
		{"10.0.0.10", "10.0.0.1", msg("SIP/2.0 200 OK", "bye9c3d7", "a6c85cf", 2, "BYE", "")},
	}
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		p := hep.Packet{
			Family: hep.FamilyIPv4, Protocol: hep.ProtoUDP,
			SrcIP: netip.MustParseAddr(m.src), DstIP: netip.MustParseAddr(m.dst),
			SrcPort: 5060, DstPort: 5060, ProtoType: hep.TypeSIP, CaptureID: 2001, Payload: []byte(m.sip),
			Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort | hep.HasDstPort |
				hep.HasTimeSec | hep.HasTimeUsec | hep.HasProtoType | hep.HasCaptureID,
		}
		p.SetTime(time.Unix(1772806981, 0).Add(time.Duration(i) * 50 * time.Millisecond))
		var err error
		if out[i], err = p.AppendV3(nil); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// callStream hands out the packets of calls 0, 1, ... in order, each call
// with its own Call-ID written in place into the templates.
type callStream struct {
	tmpl  [][]byte
	marks [][]int // offsets of callIDMark in each template
}

func newCallStream(tb testing.TB) *callStream {
	s := &callStream{tmpl: callTemplates(tb)}
	for _, t := range s.tmpl {
		var at []int
		for off := 0; ; {
			i := bytes.Index(t[off:], []byte(callIDMark))
			if i < 0 {
				break
			}
			at = append(at, off+i)
			off += i + len(callIDMark)
		}
		if len(at) == 0 {
			tb.Fatal("template without the Call-ID mark")
		}
		s.marks = append(s.marks, at)
	}
	return s
}

// packet returns the i-th packet (i counts from 0 across calls), valid
// until the next call's.
func (s *callStream) packet(i int) []byte {
	call, m := i/callMessages, i%callMessages
	t := s.tmpl[m]
	var id [len(callIDMark)]byte
	n := strconv.AppendInt(id[:0], int64(call), 10)
	pad := len(callIDMark) - len(n)
	for _, off := range s.marks[m] {
		for j := range pad {
			t[off+j] = '0'
		}
		copy(t[off+pad:], n)
	}
	return t
}

// hepCollectorResult is one run: the collector's CPU time per packet it
// was sent, its peak RSS, and where the packets went.
type hepCollectorResult struct {
	cpuPerPacket, rssMiB, anonMiB, perSec float64
	sent, accepted, kernelDrops           int64
	load                                  string
}

// BenchmarkHEPCollector sends b.N HEP3 SIP packets (b.N/7 calls of 7
// messages, each call its own Call-ID) to the real otelcol-siphon running
// hep -> sipkpi -> prometheus (testdata/hep-kpi.yaml; "calls" adds
// hep-calls.yaml: sip_correlation, sipkpi and sipcall, as the shipped
// logs/calls pipeline), over TCP as fast as one sender goes (one write per
// packet, as capture agents send) and over UDP paced at HEP_BENCH_UDP_RATE
// packets/s (default 50,000). It measures the collector process's CPU time
// (user+sys from /proc) from the first packet sent to the last counted by
// sipkpi, per packet, and its peak RSS (VmHWM); and it accounts for every
// packet: sipkpi's requests, responses and retransmissions (UDP: a
// message its reader took before another reader took the one sent before
// it) equal what the receiver accepted,
// which with the kernel's drops on the socket (/proc/net/udp) equals what
// was sent (TCP: nothing dropped, 3 requests and 4 responses per call).
//
// With $OTELCOL_SIPHON_BASE, the baseline binary runs the same setups
// (hep-kpi only: "calls" is compared with the baseline's kpi),
// interleaved, HEP_BENCH_ROUNDS times (default 1); the median round (by
// CPU) of each is reported with its ratio to the baseline.
// HEP_BENCH_SETUPS (e.g. kpi/tcp,kpi/udp) picks setups; HEP_BENCH_PROFILE
// names a directory for a 5 s CPU profile of each run.
func BenchmarkHEPCollector(b *testing.B) {
	cand := collector.Binary(b)
	bins := []struct{ name, path string }{{"cand", cand}}
	if base := os.Getenv(EnvBaseBinary); base != "" {
		if _, err := os.Stat(base); err != nil {
			b.Fatalf("%s=%s: %v", EnvBaseBinary, base, err)
		}
		bins = append([]struct{ name, path string }{{"base", base}}, bins...)
	}
	rounds := 1
	if r, err := strconv.Atoi(os.Getenv("HEP_BENCH_ROUNDS")); err == nil && r > 0 {
		rounds = r
	}
	rate := 50000
	if r, err := strconv.Atoi(os.Getenv("HEP_BENCH_UDP_RATE")); err == nil && r > 0 {
		rate = r
	}
	setups := []string{"kpi/tcp", "kpi/udp", "calls/tcp", "calls/udp"}
	if s := os.Getenv("HEP_BENCH_SETUPS"); s != "" {
		setups = strings.Split(s, ",")
	}
	samples := map[string][]hepCollectorResult{}
	var names []string
	for round := range rounds {
		for _, setup := range setups {
			config, transport, _ := strings.Cut(setup, "/")
			for i := range bins {
				// alternate which binary goes first, so that neither always
				// follows the other's leftovers (page cache, a busy spell)
				bin := bins[(i+round)%len(bins)]
				if bin.name == "base" && config != "kpi" {
					continue // the baseline has no sipcall
				}
				name := bin.name + "/" + setup
				if round == 0 {
					names = append(names, name)
				}
				b.Run(name, func(b *testing.B) {
					if b.N == 1 {
						return // the probe run: -benchtime Nx runs N next
					}
					samples[name] = append(samples[name], runHEPCollector(b, bin.path, config, transport, rate, bin.name == "base"))
				})
			}
		}
	}
	median := map[string]hepCollectorResult{}
	for name, rs := range samples {
		sort.Slice(rs, func(i, j int) bool { return rs[i].cpuPerPacket < rs[j].cpuPerPacket })
		median[name] = rs[len(rs)/2]
	}
	sort.Strings(names)
	for _, n := range names {
		r, ok := median[n]
		if !ok {
			continue
		}
		_, setup, _ := strings.Cut(n, "/")
		_, transport, _ := strings.Cut(setup, "/")
		ratio := ""
		if base, ok := median["base/kpi/"+transport]; ok {
			ratio = fmt.Sprintf(" (%.2f of base/kpi)  peak RSS %.2f (anon %.2f) of base/kpi", r.cpuPerPacket/base.cpuPerPacket, r.rssMiB/base.rssMiB, r.anonMiB/base.anonMiB)
		}
		fmt.Printf("hep collector %-15s %6.2f CPU-µs/packet%s  peak RSS %6.1f MiB (anon %6.1f)  %8.0f packets/s  sent %d accepted %d kernel drops %d  median of %d  load %s\n",
			n, r.cpuPerPacket, ratio, r.rssMiB, r.anonMiB, r.perSec, r.sent, r.accepted, r.kernelDrops, len(samples[n]), r.load)
	}
}

// runHEPCollector runs one setup. misorderOK lets TCP requests count as
// retransmissions, for a baseline that delivered batches out of order.
func runHEPCollector(b *testing.B, bin, config, transport string, rate int, misorderOK bool) hepCollectorResult {
	calls := b.N / callMessages
	if calls == 0 {
		b.Fatalf("b.N=%d: fewer packets than one call (%d)", b.N, callMessages)
	}
	n := calls * callMessages
	hepAddr, health, kpiAddr, pprofAddr := ports.Addr(b), ports.Addr(b), ports.Addr(b), ports.Addr(b)
	_, telemetry, _ := net.SplitHostPort(ports.Addr(b))
	wd, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	var overlays []string
	if config == "calls" {
		overlays = append(overlays, filepath.Join(wd, "testdata", "hep-calls.yaml"))
	}
	p := collector.Start(b, collector.Options{
		Binary:   bin,
		Config:   filepath.Join(wd, "testdata", "hep-kpi.yaml"),
		Overlays: overlays,
		Env: map[string]string{"BENCH_HEALTH": health, "BENCH_HEP": hepAddr, "BENCH_KPI": kpiAddr,
			"BENCH_TELEMETRY_PORT": telemetry, "BENCH_PPROF": pprofAddr},
		HealthAddr:    health,
		TelemetryPort: telemetry,
		Args:          collectorArgs(),
	})
	stream := newCallStream(b)
	conn, err := net.Dial(transport, hepAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()

	load := loadAvg()
	run := startMeasuring(b, p.Pid(), pprofAddr, os.Getenv("HEP_BENCH_PROFILE"))
	if transport == "udp" {
		sendPaced(b, conn, stream, n, rate)
	} else {
		for i := range n {
			if _, err := conn.Write(stream.packet(i)); err != nil {
				b.Fatalf("send packet %d: %v", i, err)
			}
		}
	}
	// every packet is counted by sipkpi, or (UDP) dropped by the kernel
	var kernelDrops, accepted int64
	var counted float64
	kpiURL := "http://" + kpiAddr + "/metrics"
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if transport == "udp" {
			kernelDrops = udpDrops(b, hepAddr)
		}
		acc, _, err := p.Sum("otelcol_receiver_accepted_log_records", exposition.Labels{"receiver": "hep"})
		if err == nil {
			accepted = int64(acc)
		}
		if m, err := exposition.Scrape(context.Background(), kpiURL); err == nil {
			// a message read before one sent earlier (UDP readers run in
			// parallel) counts as a retransmission of the later one
			req, _ := m.Sum("sip_requests_total", nil)
			resp, _ := m.Sum("sip_responses_total", nil)
			retr, _ := m.Sum("sip_retransmissions_total", nil)
			counted = req + resp + retr
		}
		if accepted+kernelDrops >= int64(n) && counted >= float64(accepted) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("after 3 minutes: sent %d, accepted %d, kernel drops %d, counted by sipkpi %v", n, accepted, kernelDrops, counted)
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed, cpuTime, rss := run.stop()
	if accepted+kernelDrops != int64(n) || counted != float64(accepted) {
		b.Fatalf("packets unaccounted for: sent %d, accepted %d + kernel drops %d, sipkpi counted %v", n, accepted, kernelDrops, counted)
	}
	if m, err := exposition.Scrape(context.Background(), kpiURL); err != nil {
		b.Fatal(err)
	} else if req, _ := m.Sum("sip_requests_total", nil); transport == "tcp" && req != float64(callRequests*calls) {
		// over one TCP connection the collector sees the messages in order
		if !misorderOK {
			b.Fatalf("sipkpi counted %v requests, want %d", req, callRequests*calls)
		}
		b.Logf("sipkpi counted %v requests of %d (the rest as retransmissions: batches out of order)", req, callRequests*calls)
	}
	if transport == "tcp" && kernelDrops != 0 {
		b.Fatalf("TCP: %d dropped", kernelDrops)
	}
	if err := p.Stop(30 * time.Second); err != nil {
		b.Errorf("collector stop: %v", err)
	}
	r := hepCollectorResult{
		cpuPerPacket: cpuTime.Seconds() / float64(accepted) * 1e6, // per packet taken in: a datagram the kernel dropped cost the collector nothing
		rssMiB:       float64(rss) / (1 << 20),
		anonMiB:      float64(run.peakAnon) / (1 << 20),
		perSec:       float64(n) / elapsed.Seconds(),
		sent:         int64(n), accepted: accepted, kernelDrops: kernelDrops, load: load,
	}
	b.ReportMetric(r.cpuPerPacket, "cpu-µs/packet")
	b.ReportMetric(r.rssMiB, "peak-RSS-MiB")
	b.ReportMetric(r.anonMiB, "peak-anon-MiB")
	b.ReportMetric(float64(kernelDrops), "kernel-drops")
	return r
}

// sendPaced sends n packets at rate packets/s, by schedule: every
// millisecond the packets due by then, so that a late tick catches up.
func sendPaced(b *testing.B, conn net.Conn, s *callStream, n, rate int) {
	start := time.Now()
	for i := 0; i < n; {
		due := min(n, int(time.Since(start).Seconds()*float64(rate))+1)
		for ; i < due; i++ {
			if _, err := conn.Write(s.packet(i)); err != nil {
				b.Fatalf("send packet %d: %v", i, err)
			}
		}
		if i < n {
			time.Sleep(time.Millisecond)
		}
	}
}

// udpDrops returns the kernel's drop count of the UDP socket bound to addr
// (an IPv4 address) from /proc/net/udp: datagrams the receive buffer had
// no room for.
func udpDrops(b *testing.B, addr string) int64 {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		b.Fatal(err)
	}
	ip := ap.Addr().As4()
	// /proc/net/udp writes the address as a host-order (little endian) word
	local := strings.ToUpper(hex.EncodeToString([]byte{ip[3], ip[2], ip[1], ip[0]})) + ":" + fmt.Sprintf("%04X", ap.Port())
	f, err := os.Open("/proc/net/udp")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 13 && fields[1] == local {
			d, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
			if err != nil {
				b.Fatalf("/proc/net/udp: drops %q: %v", fields[len(fields)-1], err)
			}
			return d
		}
	}
	b.Fatalf("/proc/net/udp: no socket on %s (%s)", addr, local)
	return 0
}

// loadAvg is the 1-minute load average, noted next to each figure: the
// machine is shared.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(raw))[0]
}
