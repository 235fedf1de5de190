//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/dashboards"
	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/prometheus"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipp"
	"github.com/siphon-otel/siphon-otel/proxy/metrics"
)

// value evaluates expr and returns its single value, or NaN with no result.
func value(t testing.TB, p *prometheus.Server, expr string) float64 {
	t.Helper()
	s, err := p.Query(expr)
	require.NoError(t, err, expr)
	if len(s) == 0 {
		return math.NaN()
	}
	require.Len(t, s, 1, "%s: %v", expr, s)
	return s[0].Value
}

func near(want, tol float64) func(float64) bool {
	return func(v float64) bool { return math.Abs(v-want) <= tol }
}

func between(lo, hi float64) func(float64) bool {
	return func(v float64) bool { return v >= lo && v <= hi }
}

// TestAppliance: sipp calls through sipproxy; otelcol-siphon turns HEP and
// CDRs into KPIs; Prometheus evaluates the shipped rules over them. The
// recording rules must equal what sipp did, every dashboard query must return
// data, and every CDR must be in every output exactly once.
func TestAppliance(t *testing.T) {
	a := startAppliance(t, options{})
	target := addr(a.sipPort)
	const answered, busy = 20, 10
	aliceP, bobP := ports.Port(t), ports.Port(t)
	uasA := a.sipp("uas-answer", aliceP, "-m", strconv.Itoa(answered+1))
	uasB := a.sipp("uas-busy", bobP, "-m", strconv.Itoa(busy+1))
	register := func() {
		for _, r := range []struct {
			user string
			port int
		}{{"alice", aliceP}, {"bob", bobP}} {
			a.sipp("register", ports.Port(t), "-m", "1", "-key", "user", r.user, "-key", "contact_port", strconv.Itoa(r.port),
				"-key", "expires", "300", target).Wait()
		}
	}
	register()
	busyScenario := sipp.Expect(t, "uac-fail", 486)

	// One call of each kind first: their series exist in Prometheus before
	// the wave, so rate() sees all of the wave.
	okA, _ := finish(a.sipp("uac-call", ports.Port(t), "-m", "1", "-s", "alice", "-d", "1000", target))
	okB, _ := finish(a.sipp(busyScenario, ports.Port(t), "-m", "1", "-s", "bob", target))
	require.Equal(t, 1, okA)
	require.Equal(t, 1, okB)
	a.prom.WaitValue(t, "warm-up calls in Prometheus", `sum(sip_calls_total)`, near(2, 0))
	register() // the phones refresh their registrations

	// The wave; billing refuses the first CDRs of it (they are retried).
	a.billingDown.Store(true)
	uacA := a.sipp("uac-call", ports.Port(t), "-m", strconv.Itoa(answered), "-r", "10", "-s", "alice", "-d", "1000", target)
	uacB := a.sipp(busyScenario, ports.Port(t), "-m", strconv.Itoa(busy), "-r", "10", "-s", "bob", target)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.GreaterOrEqual(c, a.billingRefused.Load(), int64(5), "billing refusals")
	}, 60*time.Second, 50*time.Millisecond)
	a.billingDown.Store(false)
	waOK, waFail := finish(uacA)
	wbOK, wbFail := finish(uacB)
	uasA.Wait()
	uasB.Wait()
	require.Equal(t, answered, waOK, "sipp: answered calls")
	require.Equal(t, busy, wbOK, "sipp: busy calls")
	require.Zero(t, waFail+wbFail)
	calls := float64(2 + answered + busy)
	a.prom.WaitValue(t, "every call in Prometheus", `sum(sip_calls_total)`, near(calls, 0))

	// The recording rules over the wave (the warm-up calls are the series'
	// first samples, so rate() counts the wave alone).
	kpis := []struct {
		rule string
		ok   func(float64) bool
	}{
		{`node:sip_asr:ratio_rate5m`, near(float64(answered)/float64(answered+busy), 1e-6)},
		{`node:sip_ner:ratio_rate5m`, near(1, 1e-9)},
		{`node:sip_ser:ratio_rate5m`, near(float64(answered)/float64(answered+busy), 1e-6)},
		{`node:sip_seer:ratio_rate5m`, near(1, 1e-9)},
		{`node:sip_isa:ratio_rate5m`, near(0, 0)},
		{`node:sip_scr:ratio_rate5m`, near(float64(answered)/float64(answered+busy), 1e-6)},
		{`node:sip_calls_5xx:ratio_rate5m`, near(0, 0)},
		{`node:sip_calls_503:ratio_rate5m`, near(0, 0)},
		{`node:sip_acd_seconds:mean5m`, near(1.0, 0.25)}, // sipp holds 1 s
		{`node:sip_calls:rate5m`, between(1e-3, 10)},
		{`max(node:sip_pdd_seconds:p50_5m)`, between(1e-6, 1)},
		{`max(node:sip_pdd_seconds:p95_5m)`, between(1e-6, 1)},
		{`node:sip_call_setup_seconds:p95_5m`, between(1e-6, 2)},
		{`max(node:sip_register_transactions:rate5m)`, between(1e-6, 10)},
		{`max(node:sip_register_failure:ratio_rate5m)`, near(0, 0)},
		{`instance:siphon_invites:rate5m`, between(1e-3, 100)},
		{`node:sip_asr:ratio_avg1d`, between(0.5, 1)},
		{`siphon:kpi_drop_floor:ratio`, near(0.8, 0)},
	}
	for _, k := range kpis {
		v := a.prom.WaitValue(t, "recording rule", k.rule, k.ok)
		t.Logf("%-45s %v", k.rule, v)
	}

	// What only a troubled network shows, so that every panel has data:
	// a scan with SIPVicious, a garbage HEP packet, a SIP message captured
	// twice (a retransmission), one without a Call-ID, a bad CDR.
	out, err := testenv.Run(t, childproc.Spec{Path: "svmap", Args: []string{"-p" + strconv.Itoa(a.sipPort), "-P", strconv.Itoa(ports.Port(t)), "-t", "1", "127.0.0.1"}})
	require.NoError(t, err, "%s", out)
	hepConn, err := net.Dial("udp", a.collectorHEP)
	require.NoError(t, err)
	defer hepConn.Close()
	_, err = hepConn.Write([]byte("not HEP at all"))
	require.NoError(t, err)
	sipPkt := func(msg string) []byte {
		p := hep.Packet{Version: 3, ProtoType: hep.TypeSIP, Payload: []byte(msg), CaptureID: 9,
			Fields: hep.HasProtoType | hep.HasCaptureID}
		p.SetTime(time.Now())
		b, err := p.AppendV3(nil)
		require.NoError(t, err)
		return b
	}
	opt := "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-e2e-retrans\r\n" +
		"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: e2e-retrans\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	for range 2 {
		_, err = hepConn.Write(sipPkt(opt))
		require.NoError(t, err)
	}
	_, err = hepConn.Write(sipPkt(strings.Replace(opt, "Call-ID: e2e-retrans\r\n", "", 1)))
	require.NoError(t, err)
	resp, err := http.Post("http://"+a.cdrHTTP+"/v1/cdr", "application/json", strings.NewReader(`{"call_id":`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	checkDashboards(t, a.prom)
	checkCDROutputs(t, a, int(calls))
	assert.Positive(t, a.billingRefused.Load(), "billing was down during the wave")
}

// checkCDROutputs: every INVITE CDR, once, in the file, HTTP, syslog and
// Kafka outputs, and as many as sipp completed.
func checkCDROutputs(t *testing.T, a *appliance, calls int) {
	t.Helper()
	var file map[string]int
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		file = a.fileCDRs().invites()
		assert.Len(c, file, calls, "file")
		assert.Len(c, a.billing.invites(), calls, "billing (HTTP)")
		assert.Len(c, a.syslog.invites(), calls, "syslog")
		assert.Len(c, a.kafka.invites(), calls, "kafka")
	}, 60*time.Second, 250*time.Millisecond)
	for name, got := range map[string]map[string]int{"billing (HTTP)": a.billing.invites(), "syslog": a.syslog.invites(), "kafka": a.kafka.invites()} {
		assert.Equal(t, file, got, "%s has the file's calls", name)
	}
	for id, n := range file {
		assert.Equal(t, 1, n, "call %s written %d times", id, n)
	}
}

var dashVar = regexp.MustCompile(`\$\{?(job|instance|node|transport|codec)\}?`)

// checkDashboards runs every query of every dashboard and requires data,
// except where a query reads only series that SIPhon exports and sipproxy
// does not, only the overload test provokes, or media quality: no media
// flows here (sipp sends no RTP and the proxy's RTPEngine address answers
// nothing), so no RTCP report reaches sipkpi; dashboards'
// TestMediaRowQueries and alerts/tests/media-*.test.yml evaluate those
// queries over a known mix of the media series.
func checkDashboards(t *testing.T, p *prometheus.Server) {
	t.Helper()
	ours := map[string]bool{}
	for _, n := range metrics.New().Names() {
		ours[n] = true
	}
	siphonOnly := func(expr string) bool {
		names := regexp.MustCompile(`\bsiphon_[a-z0-9_]+`).FindAllString(expr, -1)
		if len(names) == 0 {
			return false
		}
		for _, n := range names {
			if ours[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] || ours[n] {
				return false
			}
		}
		return true
	}
	// Only an overload or a refusing target shows these; TestOverload and the
	// fault tests cover them.
	faultOnly := []string{"otelcol_exporter_enqueue_failed_log_records", "otelcol_processor_memory_limiter_refused_log_records",
		"otelcol_receiver_refused_log_records", "_exporter_records_dropped", "otelcol_exporter_send_failed_log_records"}
	type q struct{ dash, panel, expr string }
	var want []q
	skipped := 0
	for file, d := range dashboards.All() {
		b, err := d.JSON()
		require.NoError(t, err)
		var m struct {
			Panels []struct {
				Title   string
				Targets []struct{ Expr string }
			}
		}
		require.NoError(t, json.Unmarshal(b, &m))
		for _, pn := range m.Panels {
			for _, tg := range pn.Targets {
				expr := dashVar.ReplaceAllString(tg.Expr, ".*")
				fault := false
				for _, f := range faultOnly {
					if strings.Contains(expr, f) {
						fault = true
					}
				}
				if siphonOnly(expr) || fault || strings.Contains(expr, "sip_media_") {
					skipped++
					continue
				}
				want = append(want, q{file, pn.Title, expr})
			}
		}
	}
	// Some data takes time: state evictions come after the 32 s linger.
	deadline := time.Now().Add(90 * time.Second)
	for {
		var missing []string
		for _, w := range want {
			s, err := p.Query(w.expr)
			require.NoError(t, err, "%s / %s: %s", w.dash, w.panel, w.expr)
			if len(s) == 0 {
				missing = append(missing, fmt.Sprintf("%s / %s: %s", w.dash, w.panel, w.expr))
			}
		}
		if len(missing) == 0 {
			t.Logf("dashboards: %d queries return data; %d skipped (SIPhon-only series, overload-only or media)", len(want), skipped)
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			t.Fatalf("%d of %d dashboard queries return no data:\n%s", len(missing), len(want), strings.Join(missing, "\n"))
		}
		time.Sleep(2 * time.Second)
	}
}
