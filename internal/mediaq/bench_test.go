package mediaq

import (
	"strings"
	"testing"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

// BenchmarkParseRTCPJSON: rtpengine's SR with one report block (262
// bytes), parsed into a reused Report as the hep receiver does: JSON,
// round trip and E-model.
func BenchmarkParseRTCPJSON(b *testing.B) {
	payload := rtpengineCapture(b)[2].Payload
	arrival := rtpengineCapture(b)[2].Time()
	var r Report
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.ParseRTCPJSON(payload, Options{Arrival: arrival}); err != nil || len(r.Streams) != 1 || !r.Streams[0].Has(FigRTT|FigMOS) {
			b.Fatal(err, r.Streams)
		}
	}
}

// BenchmarkParseRTCPJSONXR: captagent's decoder's XR object (MOS given).
func BenchmarkParseRTCPJSONXR(b *testing.B) {
	payload := fixture.Media("rtcp-json/captagent-decoder-xr.json")
	var r Report
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.ParseRTCPJSON(payload, Options{}); err != nil || len(r.Streams) != 1 {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseVQReport: the RFC 6035 session report with both metric
// sections (1.3 KB), the body of one PUBLISH.
func BenchmarkParseVQReport(b *testing.B) {
	body := string(fixture.Media("vq/rfc6035-session.txt"))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if r, err := ParseVQReport(body, Codec{}); err != nil || len(r.Streams) != 2 {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRTPStat: heplify-server's AVM X-RTP-Stat sample.
func BenchmarkParseRTPStat(b *testing.B) {
	var value string
	for _, l := range fixture.MediaLines("rtp-stat.txt") {
		if strings.Contains(l, "CS=123") {
			_, value, _ = strings.Cut(l, ": ")
		}
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if r, err := ParseRTPStat(HeaderXRTPStat, value, Codec{}); err != nil || !r.Streams[0].Has(FigMOS) {
			b.Fatal(err)
		}
	}
}

func BenchmarkEstimate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		s := Stream{LossRatio: 0.02, Jitter: 0.01, RTT: 0.08, Given: FigLossRatio | FigJitter | FigRTT}
		s.Estimate()
		if !s.Has(FigMOS) {
			b.Fatal("no MOS")
		}
	}
}
