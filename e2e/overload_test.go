//go:build integration

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/procstat"
)

// The nominal load is what 100 calls/s make (about ten HEP messages and
// one CDR per call); TestOverload offers ten times that.
const (
	overloadHEPPerSec = 10_000 // 8,000 over TCP, 2,000 over UDP
	overloadCDRPerSec = 1_000
	overloadFor       = 60 * time.Second
	limitMiB          = 200
	spikeMiB          = 80
)

// slowSink is a HEP-over-TCP Homer that reads at bytesPerSec until fast.
type slowSink struct {
	ln    net.Listener
	fast  atomic.Bool
	bytes atomic.Int64
}

func newSlowSink(t *testing.T, bytesPerSec int) *slowSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &slowSink{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 16<<10)
				for {
					n, err := c.Read(buf)
					s.bytes.Add(int64(n))
					if err != nil {
						return
					}
					if !s.fast.Load() {
						time.Sleep(time.Duration(float64(n) / float64(bytesPerSec) * float64(time.Second)))
					}
				}
			}()
		}
	}()
	return s
}

// paced runs fn n times per second for d, or until ctx ends.
func paced(ctx context.Context, perSec int, d time.Duration, fn func() bool) {
	const tick = 10 * time.Millisecond
	per := perSec / int(time.Second/tick)
	t := time.NewTicker(tick)
	defer t.Stop()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for range per {
			if !fn() {
				return
			}
		}
	}
}

func rssMiB(pid int) float64 {
	rss, err := procstat.RSS(pid)
	if err != nil {
		return 0
	}
	return float64(rss) / (1 << 20)
}

// TestOverload offers ten times the nominal HEP and CDR load for 60 s to a
// collector whose Homer is slow: the memory limiter keeps it under its
// limit, it does not crash, every refusal is counted (HTTP 503s match the
// receiver's refused records, UDP packets sent match received plus kernel
// drops, received match accepted plus refused), and it recovers after.
func TestOverload(t *testing.T) {
	dir := t.TempDir()
	sink := newSlowSink(t, 512<<10)
	hepAddr, cdrAddr, health := addr(ports.Port(t)), addr(ports.Port(t)), addr(ports.Port(t))
	telemetry := strconv.Itoa(ports.Port(t))
	overlay, err := filepath.Abs("testdata/overload.yaml")
	require.NoError(t, err)
	col := collector.Start(t, collector.Options{
		Config: "siphon:config.yaml", Overlays: []string{overlay},
		Env: map[string]string{
			"SIPHON_HEP_ENDPOINT": hepAddr, "SIPHON_CDR_HTTP_ENDPOINT": cdrAddr,
			"SIPHON_CDR_SYSLOG_ENDPOINT": addr(ports.Port(t)), "SIPHON_HEALTH_ENDPOINT": health,
			"SIPHON_TELEMETRY_PORT": telemetry, "SIPHON_STATE_DIR": filepath.Join(dir, "state"),
			"SIPHON_KPI_ENDPOINT": addr(ports.Port(t)), "E2E_SLOW_HOMER": sink.ln.Addr().String(),
			"E2E_LIMIT_MIB": strconv.Itoa(limitMiB), "E2E_SPIKE_MIB": strconv.Itoa(spikeMiB),
			// as the memory_limiter documentation advises: the Go runtime's
			// soft limit below the limiter's (70%)
			"GOMEMLIMIT": strconv.Itoa(limitMiB*7/10) + "MiB",
		},
		HealthAddr: health, TelemetryPort: telemetry,
	})
	pid := col.Pid()
	time.Sleep(2 * time.Second) // settled: what it takes idle
	idleRSS := rssMiB(pid)

	invite := fixture.Invite()
	packet := func(i int64) []byte {
		msg := bytes.Replace(invite, []byte("a84b4c76e66710@pc33.atlanta.example.com"), []byte(fmt.Sprintf("load-%d@e2e", i)), 1)
		p := hep.Packet{Version: 3, ProtoType: hep.TypeSIP, Payload: msg, CaptureID: 7, Fields: hep.HasProtoType | hep.HasCaptureID}
		p.SetTime(time.Now())
		b, _ := p.AppendV3(nil)
		return b
	}
	cdrBody := fixture.CDR()

	var (
		seq                         atomic.Int64
		tcpSent, udpSent            atomic.Int64
		cdrOK, cdrRefused, cdrOther atomic.Int64
		maxRSS                      atomic.Int64 // KiB
		maxHeap                     atomic.Int64 // bytes
		wg                          sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), overloadFor+30*time.Second)
	defer cancel()
	sampler := make(chan struct{})
	go func() {
		defer close(sampler)
		for ctx.Err() == nil {
			if r := int64(rssMiB(pid) * 1024); r > maxRSS.Load() {
				maxRSS.Store(r)
			}
			if h, err := col.Value("otelcol_process_runtime_heap_alloc_bytes", nil); err == nil && int64(h) > maxHeap.Load() {
				maxHeap.Store(int64(h))
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	for range 2 { // HEP over TCP: the receiver pushes back by not reading
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", hepAddr)
			if !assert.NoError(t, err) {
				return
			}
			defer c.Close()
			paced(ctx, 4000, overloadFor, func() bool {
				c.SetWriteDeadline(time.Now().Add(90 * time.Second)) // held back, not for ever
				if _, err := c.Write(packet(seq.Add(1))); err != nil {
					t.Errorf("HEP over TCP: %v", err)
					return false
				}
				tcpSent.Add(1)
				return true
			})
		}()
	}
	wg.Add(1)
	go func() { // HEP over UDP: what cannot be taken is dropped and counted
		defer wg.Done()
		c, err := net.Dial("udp", hepAddr)
		if !assert.NoError(t, err) {
			return
		}
		defer c.Close()
		paced(ctx, 2000, overloadFor, func() bool {
			if _, err := c.Write(packet(seq.Add(1))); err == nil {
				udpSent.Add(1)
			}
			return true
		})
	}()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for range 4 { // CDRs over HTTP: 503 + Retry-After when refused
		wg.Add(1)
		go func() {
			defer wg.Done()
			paced(ctx, overloadCDRPerSec/4, overloadFor, func() bool {
				resp, err := client.Post("http://"+cdrAddr+"/v1/cdr", "application/json", bytes.NewReader(cdrBody))
				if err != nil {
					cdrOther.Add(1)
					return true
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					cdrOK.Add(1)
				case 503:
					cdrRefused.Add(1)
				default:
					cdrOther.Add(1)
				}
				return true
			})
		}()
	}
	wg.Wait()
	loadEnd := time.Now()
	t.Logf("offered for %s: HEP %d over TCP, %d over UDP; CDRs %d accepted, %d refused (503), %d other; max heap %.0f MiB, max RSS %.0f MiB (idle %.0f MiB; limit %d MiB)",
		overloadFor, tcpSent.Load(), udpSent.Load(), cdrOK.Load(), cdrRefused.Load(), cdrOther.Load(),
		float64(maxHeap.Load())/(1<<20), float64(maxRSS.Load())/1024, idleRSS, limitMiB)

	// no crash, under the limit
	select {
	case <-col.Done():
		t.Fatalf("the collector exited under load:\n%s", col.Log())
	default:
	}
	// The limiter bounds the Go heap; the process adds its idle footprint
	// (the mapped binary, runtime) on top.
	assert.LessOrEqual(t, float64(maxHeap.Load())/(1<<20), float64(limitMiB), "the heap stays under the memory limiter's limit")
	assert.LessOrEqual(t, float64(maxRSS.Load())/1024, idleRSS+limitMiB, "RSS stays under idle + the limit")
	assert.Zero(t, cdrOther.Load(), "every CDR request was answered 200 or 503")

	// Every reading below is of counters that may never have been
	// incremented (no series): those read 0.
	m, err := col.Metrics()
	require.NoError(t, err)
	// the overload was real: the limiter refused data
	assert.Positive(t, count(m, "otelcol_processor_memory_limiter_refused_log_records", nil), "the memory limiter refused data")
	// every refusal counted: HTTP
	cdrIn := labels{"receiver": "siphon_cdr"}
	assert.Equal(t, float64(cdrRefused.Load()), count(m, "otelcol_receiver_refused_log_records", cdrIn), "503s = refused CDRs")
	assert.Equal(t, float64(cdrOK.Load()), count(m, "otelcol_receiver_accepted_log_records", cdrIn), "200s = accepted CDRs")
	// UDP: sent = received + kernel drops; received = accepted + refused
	udp := labels{"transport": "udp"}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m, err = col.Metrics()
		if !assert.NoError(c, err) {
			return
		}
		assert.Equal(c, float64(udpSent.Load()), count(m, "otelcol_hep_receiver_packets_received", udp)+
			count(m, "otelcol_hep_receiver_packets_dropped", labels{"transport": "udp", "reason": "socket_overflow"}),
			"UDP: sent = received + socket drops")
	}, 30*time.Second, 500*time.Millisecond)
	assert.Equal(t, count(m, "otelcol_hep_receiver_packets_received", udp),
		count(m, "otelcol_receiver_accepted_log_records", labels{"receiver": "hep", "transport": "udp"})+
			count(m, "otelcol_hep_receiver_packets_dropped", labels{"transport": "udp", "reason": "pipeline_refused"}),
		"UDP received = accepted + refused")

	// recovery: Homer catches up, a new CDR is taken at once
	sink.fast.Store(true)
	require.Eventually(t, func() bool {
		resp, err := client.Post("http://"+cdrAddr+"/v1/cdr", "application/json", bytes.NewReader(cdrBody))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 120*time.Second, time.Second, "CDRs accepted again")
	t.Logf("accepting again %s after the load ended; Homer read %d MiB", time.Since(loadEnd).Round(time.Second), sink.bytes.Load()>>20)
	// TCP: nothing lost, the senders were held back; what sat in the
	// socket buffers comes in now
	tcp := labels{"transport": "tcp"}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m, err = col.Metrics()
		if assert.NoError(c, err) {
			assert.Equal(c, float64(tcpSent.Load()), count(m, "otelcol_hep_receiver_packets_received", tcp), "TCP: sent = received")
		}
	}, 60*time.Second, 500*time.Millisecond)
	assert.Zero(t, count(m, "otelcol_hep_receiver_packets_dropped", tcp))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		v, err := col.Value("otelcol_exporter_queue_size", labels{"exporter": "homer/slow"})
		if assert.NoError(c, err) {
			assert.Zero(c, v, "the Homer backlog")
		}
	}, 180*time.Second, time.Second, "the Homer backlog drains")
	assert.NoError(t, col.Stop(60*time.Second), "a clean stop after the overload")
}

// labels select series of the collector's own metrics.
type labels = exposition.Labels

// count reads a counter that may never have been incremented (no series
// yet): 0 then.
func count(m exposition.Families, name string, l labels) float64 {
	v, _ := m.Sum(name, l)
	return v
}
