//go:build integration

package interop

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/siphon-otel/siphon-otel/exporters/homerexporter"
	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/kamailio"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/receivers/hepreceiver"
)

const waitFor = 30 * time.Second

// leg is one message on one hop, as seen in a HEP record.
type leg struct {
	what     string // method, or status/CSeq method
	src, dst int
}

// TestKamailioSiptraceToHEPReceiver drives real SIP calls (sipp UAC -> a
// Kamailio stateful proxy -> sipp UAS). Kamailio's siptrace mirrors every
// message as HEP3 to our receiver; each call's messages must arrive with
// sipp's Call-IDs and the right addresses and ports.
func TestKamailioSiptraceToHEPReceiver(t *testing.T) {
	hepPort, kamPort, uasPort, uacPort := ports.Port(t), ports.Port(t), ports.Port(t), ports.Port(t)

	sink := new(consumertest.LogsSink)
	f := hepreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*hepreceiver.Config)
	cfg.UDP.GetOrInsertDefault().Endpoint = fmt.Sprintf("127.0.0.1:%d", hepPort)
	rcv, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	kamailio.Start(t, "testdata/kamailio-siptrace.cfg", kamPort, map[string]any{
		"HEPPort": hepPort, "NextHopPort": uasPort, "CaptureID": 2001,
	})
	// sipp's built-in scenarios: the UAS answers, the UAC calls
	uas := testenv.Start(t, childproc.Spec{Path: "sipp", Args: []string{"-sn", "uas", "-i", "127.0.0.1", "-p", strconv.Itoa(uasPort), "-nostdin"}})
	testenv.WaitReady(t, uas, 20*time.Second, childproc.UDPBound(uasPort))

	const calls = 5
	uac := testenv.Start(t, childproc.Spec{Path: "sipp", Args: []string{"-sn", "uac", "-i", "127.0.0.1", "-p", strconv.Itoa(uacPort),
		fmt.Sprintf("127.0.0.1:%d", kamPort), "-m", strconv.Itoa(calls), "-r", "10", "-d", "200",
		"-timeout", "30s", "-nostdin"}})
	err = uac.Wait(time.Minute)
	require.True(t, uac.Exited(), "sipp uac: %v", err)
	require.NoError(t, err, "sipp uac: every call must succeed through Kamailio\n%s", uac.Log())
	pid := uac.Pid() // in sipp's Call-IDs

	var want []leg
	for _, l := range []leg{
		{"INVITE", uacPort, kamPort}, {"INVITE", kamPort, uasPort},
		{"180/INVITE", uasPort, kamPort}, {"180/INVITE", kamPort, uacPort},
		{"200/INVITE", uasPort, kamPort}, {"200/INVITE", kamPort, uacPort},
		{"ACK", uacPort, kamPort},
		{"BYE", uacPort, kamPort}, {"BYE", kamPort, uasPort},
		{"200/BYE", uasPort, kamPort}, {"200/BYE", kamPort, uacPort},
	} {
		want = append(want, l)
	}
	seen := func() map[string]map[leg]int {
		calls := map[string]map[leg]int{}
		for _, ld := range sink.AllLogs() {
			for _, r := range record.All(ld) {
				lr := r.Log
				a := lr.Attributes().AsRaw()
				what, _ := a[record.AttrSIPRequestMethod].(string)
				if code, ok := a[record.AttrSIPResponseStatusCode].(int64); ok {
					what = fmt.Sprintf("%d/%s", code, a[record.AttrSIPCSeqMethod])
				}
				src, _ := a[record.AttrSourcePort].(int64)
				dst, _ := a[record.AttrDestinationPort].(int64)
				cid, _ := a[record.AttrSIPCallID].(string)
				if calls[cid] == nil {
					calls[cid] = map[leg]int{}
				}
				calls[cid][leg{what, int(src), int(dst)}]++
			}
		}
		return calls
	}
	// missing names every leg of every call (by sipp's Call-ID) not seen yet
	missing := func(got map[string]map[leg]int) []string {
		var out []string
		for i := 1; i <= calls; i++ {
			id := fmt.Sprintf("%d-%d@127.0.0.1", i, pid)
			for _, l := range want {
				if got[id][l] == 0 {
					out = append(out, fmt.Sprintf("%s %s %d->%d", id, l.what, l.src, l.dst))
				}
			}
		}
		return out
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Empty(c, missing(seen()), "every leg of every call")
	}, waitFor, 20*time.Millisecond)
	got := seen()
	assert.Len(t, got, calls, "only sipp's calls")

	// every record carries Kamailio's HEP metadata and loopback addresses
	for _, ld := range sink.AllLogs() {
		for _, r := range record.All(ld) {
			lr := r.Log
			assert.Equal(t, "2001", mustStr(r.Resource.Attributes(), record.AttrServiceInstanceID))
			a := lr.Attributes().AsRaw()
			assert.Equal(t, record.EventSIPMessage, lr.EventName())
			assert.Equal(t, int64(3), a[record.AttrHEPVersion])
			assert.Equal(t, int64(2001), a[record.AttrHEPCaptureID])
			assert.Equal(t, "udp", a[record.AttrNetworkTransport])
			assert.Equal(t, "127.0.0.1", a[record.AttrSourceAddress])
			assert.Equal(t, "127.0.0.1", a[record.AttrDestinationAddress])
			assert.WithinDuration(t, time.Now(), lr.Timestamp().AsTime(), time.Minute)
			assert.True(t, strings.HasSuffix(lr.Body().Str(), "\r\n\r\n") || strings.Contains(lr.Body().Str(), "\r\n\r\nv=0"),
				"the whole SIP message is the body")
		}
	}
}

func mustStr(m pcommon.Map, k string) string {
	v, _ := m.Get(k)
	return v.Str()
}

// capture is one line of the sipcapture event route's log.
type capture struct {
	Version, Type, Capt, Src, Dst, CID, Len, MD5 string
}

var captureLine = regexp.MustCompile(`HEPCAP version=(\S*) type=(\S*) capt=(\S*) src=(\S*) dst=(\S*) cid=(\S*) len=(\S*) md5=(\S*) end`)

// TestHomerExporterToKamailioSipcapture sends SIP messages and a CDR with
// the homer exporter to Kamailio's sipcapture module (Homer's classic
// capture node), over UDP and over TCP. Kamailio logs each decapsulated
// packet's HEP fields and its payload's MD5: every message must arrive
// intact.
func TestHomerExporterToKamailioSipcapture(t *testing.T) {
	for _, transport := range []string{homerexporter.TransportUDP, homerexporter.TransportTCP} {
		t.Run(transport, func(t *testing.T) {
			capPort := ports.Port(t)
			kam := kamailio.Start(t, "testdata/kamailio-sipcapture.cfg", capPort, map[string]any{})

			f := homerexporter.NewFactory()
			cfg := f.CreateDefaultConfig().(*homerexporter.Config)
			cfg.Endpoint, cfg.Transport, cfg.CaptureID = fmt.Sprintf("127.0.0.1:%d", capPort), transport, 2001
			cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
			exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
			require.NoError(t, err)
			require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
			defer func() { require.NoError(t, exp.Shutdown(context.Background())) }()

			ld := plog.NewLogs()
			recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
			var want []capture
			for i := range 20 {
				msg := fmt.Sprintf("INVITE sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK%d\r\n"+
					"From: <sip:alice@10.0.0.1>;tag=%d\r\nTo: <sip:bob@10.0.0.2>\r\nCall-ID: interop-%d@10.0.0.1\r\n"+
					"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", i, i, i)
				if i%2 == 1 {
					msg = strings.Replace(msg, "INVITE sip:bob@10.0.0.2 SIP/2.0", "SIP/2.0 180 Ringing", 1)
				}
				p := hep.Packet{
					Family: hep.FamilyIPv4, Protocol: hep.ProtoUDP,
					SrcIP: netip.MustParseAddr("10.0.0.1"), DstIP: netip.MustParseAddr("10.0.0.2"),
					SrcPort: 5060, DstPort: uint16(5070 + i), ProtoType: hep.TypeSIP, CaptureID: 3000 + uint32(i),
					Payload: []byte(msg), CorrelationID: []byte(fmt.Sprintf("interop-%d@10.0.0.1", i)),
					Fields: hep.HasFamily | hep.HasProtocol | hep.HasSrcIP | hep.HasDstIP | hep.HasSrcPort |
						hep.HasDstPort | hep.HasProtoType | hep.HasCaptureID,
				}
				p.SetTime(time.Now())
				heprecord.FromHEP(&p, p.Payload, false, time.Now(), recs.AppendEmpty())
				want = append(want, capture{"3", "1", strconv.Itoa(3000 + i), "10.0.0.1:5060",
					fmt.Sprintf("10.0.0.2:%d", 5070+i), string(p.CorrelationID), strconv.Itoa(len(msg)), md5hex(msg)})
			}
			cdrBody := string(fixture.CDR())
			cdr := recs.AppendEmpty()
			cdr.SetEventName(record.EventCDR)
			cdr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
			cdr.Body().SetStr(cdrBody)
			cdr.Attributes().PutStr(record.AttrSIPCallID, "a84b4c76e66710@192.168.1.100")
			cdr.Attributes().PutStr(record.AttrSourceAddress, "192.168.1.100")
			cdr.Attributes().PutStr(record.AttrSourcePort, "5060")
			cdr.Attributes().PutStr(record.AttrDestinationAddress, "10.0.0.1")
			cdr.Attributes().PutInt(record.AttrDestinationPort, 5060)
			want = append(want, capture{"3", "100", "2001", "192.168.1.100:5060", "10.0.0.1:5060",
				"a84b4c76e66710@192.168.1.100", strconv.Itoa(len(cdrBody)), md5hex(cdrBody)})

			require.NoError(t, exp.ConsumeLogs(context.Background(), ld))
			var got []capture
			require.Eventually(t, func() bool {
				got = got[:0]
				for _, m := range captureLine.FindAllStringSubmatch(kam.Log(), -1) {
					got = append(got, capture{m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]})
				}
				return len(got) >= len(want)
			}, waitFor, 20*time.Millisecond)
			assert.ElementsMatch(t, want, got)
		})
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
