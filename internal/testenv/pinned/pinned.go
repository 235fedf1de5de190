// Package pinned finds state that keeps alive the messages it read. A
// record's attributes are slices of its body (internal/sipmsg and the CDR
// parser copy nothing), so a component that keeps one of them, a Call-ID
// or a method name, keeps the whole message: a KiB or more per entry that
// no allocation profile charges to the component.
package pinned

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
	"weak"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/testenv/mediaflow"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipflow"
)

// Bodies watches the string bodies of records without keeping them.
type Bodies struct {
	ws   []weak.Pointer[byte]
	lens []int
}

// Watch watches the string body of every record in ld (SIP, CDRs,
// rtpengine's RTCP as JSON); binary bodies are not watched.
func Watch(ld plog.Logs) *Bodies {
	b := &Bodies{}
	for _, it := range record.All(ld) {
		body := it.Log.Body()
		if body.Type() == pcommon.ValueTypeStr && body.Str() != "" {
			b.ws = append(b.ws, weak.Make(unsafe.StringData(body.Str())))
			b.lens = append(b.lens, len(body.Str()))
		}
	}
	return b
}

// Len is how many bodies are watched.
func (b *Bodies) Len() int { return len(b.ws) }

// Reachable is the first line of each body something still reaches, after
// the collections that free the others. The caller must have dropped its
// own references (the plog.Logs) first.
func (b *Bodies) Reachable() []string {
	runtime.GC()
	runtime.GC()
	var out []string
	for i, w := range b.ws {
		if p := w.Value(); p != nil {
			line, _, _ := strings.Cut(strings.Clone(unsafe.String(p, b.lens[i])), "\n")
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// Calls is the records of n calls and their neighbours, every kind the
// stateful components keep state for, as one node captures them: for each
// i, a call whose media RTPEngine anchors (its SDPs, the RTCP reports, the
// caller's RFC 6035 PUBLISH), still running for even i (its state held),
// ended by a BYE with X-RTP-Stat and followed by its CDR for odd i; every
// third call with a correlation id other than its Call-ID; an INVITE from a
// scanner's User-Agent that nothing answers; an INVITE of a B2BUA's b-leg
// naming the call in X-CID; an OPTIONS; a REGISTER CDR.
func Calls(t testing.TB, n int) plog.Logs {
	t.Helper()
	ld := sipflow.Logs("sbc-pinned")
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	base := mediaflow.CaptureStart(t)
	stat := mediaflow.RTPStat(t, "X-RTP-Stat: PS=1234,")
	for i := range n {
		c := mediaflow.New(t, fmt.Sprintf("pinned-%d@127.0.0.1", i))
		if i%3 == 0 {
			c.CorrelationID = fmt.Sprintf("pinned-corr-%d", i)
		}
		pkts := append(c.Setup(time.Second), c.RTCP()...)
		pkts = append(pkts, c.Publish(0, c.VQReport()))
		if i%2 == 1 {
			pkts = append(pkts, c.Bye(time.Second, true, stat, "")...)
		}
		c.Append(lrs, pkts...)
		if i%2 == 1 {
			sipflow.CDR(t, ld, base, c.CallID, 200, 0, 1, 30, "caller", "carrier-a")
		}

		// the B2BUA's b-leg of the call, naming the a-leg in X-CID
		bleg := sipflow.New(t, ld, base, fmt.Sprintf("pinned-bleg-%d", i))
		bleg.Emit(0, sipflow.AddrP, sipflow.AddrB, strings.Join([]string{
			"INVITE sip:bob@" + sipflow.AddrB + " SIP/2.0",
			"Via: SIP/2.0/UDP " + sipflow.AddrP + ":5060;branch=" + sipflow.Branch(bleg.CallID, "b", 1, "INVITE"),
			"From: <sip:alice@example.com>;tag=" + bleg.FromTag, "To: <sip:bob@example.com>",
			"Call-ID: " + bleg.CallID, "CSeq: 1 INVITE", "X-CID: " + c.CallID, "Content-Length: 0", "", ""}, "\r\n"))

		scan := sipflow.New(t, ld, base, fmt.Sprintf("pinned-scan-%d", i))
		scan.Request(0, sipflow.AddrA, sipflow.AddrP, "INVITE", 1, sipflow.Branch(scan.CallID, "a", 1, "INVITE"), "", "friendly-scanner")
		ping := sipflow.New(t, ld, base, fmt.Sprintf("pinned-ping-%d", i))
		ping.Request(0, sipflow.AddrP, sipflow.AddrB, "OPTIONS", 1, sipflow.Branch(ping.CallID, "b", 1, "OPTIONS"), "", "")
		reg := strings.Replace(sipflow.CDRJSON(base, fmt.Sprintf("pinned-reg-%d", i), 200, 0, 0, 0, "", ""),
			`"method":"INVITE"`, `"method":"REGISTER","reg_event":"refreshed"`, 1)
		sipflow.AppendCDR(t, ld, reg, base)
	}
	return ld
}
