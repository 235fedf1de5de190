//go:build integration

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	engine "github.com/siphon-otel/siphon-otel/internal/testenv/rtpengine"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipp"
	"github.com/siphon-otel/siphon-otel/proxy/rtpengine"
	"github.com/siphon-otel/siphon-otel/proxy/rtpengine/ngtest"
)

// Media anchoring against Debian's rtpengine (userspace, NG on loopback).
// Each engine gets its own media port range (other tests run engines on
// 30000-31199). What RTPEngine allocated is read from the SDP each side
// received (sdpReceived: the c= address and m= port, which is where a
// test sends RTP to reach that side through the engine) and from the
// engine itself (ngQuery's local ports).

// mediaConfig anchors every call through the instances, deleting at once
// (delete_delay 0s: the engine's list shows a call until its delete).
func mediaConfig(pingInterval string, instances ...string) string {
	q := make([]string, len(instances))
	for i, a := range instances {
		q[i] = strconv.Quote(a)
	}
	return fmt.Sprintf("rtpengine: {instances: [%s], ping_interval: %s, enabled: true, delete_delay: 0s, timeout: 500ms}",
		strings.Join(q, ", "), pingInterval)
}

// sippSDP runs a scenario whose <log> actions record the SDP it received
// (uac-call: the 200's; uas-answer: the INVITE's) and returns the log's
// path for sdpReceived.
func sippSDP(t *testing.T, scenario, transport string, port int, target string, args ...string) (*sipp.Sipp, string) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "sdp.log")
	return startSipp(t, scenario, transport, port, target, append([]string{"-trace_logs", "-log_file", log}, args...)...), log
}

// mediaAddr is where an SDP says to send media.
type mediaAddr struct {
	Addr string
	Port int
}

// sdpReceived reads the SDP addresses a sipp logged, in order.
func sdpReceived(t *testing.T, log string) []mediaAddr {
	t.Helper()
	f, err := os.Open(log)
	require.NoError(t, err)
	defer f.Close()
	var out []mediaAddr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[0] != "sdp" {
			continue
		}
		port, err := strconv.Atoi(fields[2])
		require.NoError(t, err, sc.Text())
		out = append(out, mediaAddr{Addr: fields[1], Port: port})
	}
	require.NoError(t, sc.Err())
	return out
}

// ngEngine talks NG to one engine, as the test's own client.
type ngEngine struct {
	addr string
	c    *rtpengine.Client
}

func newNGEngine(t *testing.T, addr string) *ngEngine {
	t.Helper()
	c, err := rtpengine.New(rtpengine.Options{Instances: []string{addr}, Timeout: 2 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &ngEngine{addr: addr, c: c}
}

// list is the engine's calls (the "list" command).
func (e *ngEngine) list() ([]string, error) {
	reply, err := e.c.Send(context.Background(), e.addr, rtpengine.Dict{"command": "list"})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, v := range reply["calls"].([]any) {
		ids = append(ids, v.(string))
	}
	return ids, nil
}

// localPorts are the media ports the engine holds for a call ("query").
func (e *ngEngine) localPorts(t *testing.T, callID string) []int {
	t.Helper()
	reply, err := e.c.Send(context.Background(), e.addr, rtpengine.Dict{"command": "query", "call-id": callID})
	require.NoError(t, err)
	var out []int
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case rtpengine.Dict:
			for k, e := range x {
				if n, ok := e.(int64); ok && k == "local port" {
					out = append(out, int(n))
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(reply)
	slices.Sort(out)
	return out
}

// waitCalls waits until the engine lists exactly want calls and returns
// them.
func (e *ngEngine) waitCalls(t *testing.T, want int) []string {
	t.Helper()
	var ids []string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var err error
		ids, err = e.list()
		if assert.NoError(c, err) {
			assert.Len(c, ids, want, "calls on the engine %s", e.addr)
		}
	}, 10*time.Second, 20*time.Millisecond)
	return ids
}

// ngDelta is how much sipproxy_rtpengine_commands_total moved.
func ngDelta(before, after exposition.Families, command, result string) float64 {
	return delta(before, after, "sipproxy_rtpengine_commands_total", labels{"command": command, "result": result})
}

// inRange checks a received SDP names the engine, on one of its ports.
func inRange(t *testing.T, m mediaAddr, lo, hi int, what string) {
	t.Helper()
	assert.Equal(t, "127.0.0.1", m.Addr, "%s: the engine's address", what)
	assert.True(t, m.Port >= lo && m.Port <= hi, "%s: port %d in the engine's range %d-%d", what, m.Port, lo, hi)
}

// TestMediaAnchoring runs calls through sipproxy anchoring media on a
// real rtpengine, over UDP and over TCP: an answered call (each side gets
// the engine's address and a port of its range, the ports the engine
// holds for the call, which it lists while the call is up and not after
// the BYE), a cancelled call, a busy callee and an unanswered call (each
// deletes its session).
func TestMediaAnchoring(t *testing.T) {
	for _, tr := range []struct {
		sipp, name string
		lo, hi     int
	}{{"u1", "udp", 31200, 31299}, {"t1", "tcp", 31300, 31399}} {
		t.Run(tr.name, func(t *testing.T) {
			e := engine.Start(t, tr.lo, tr.hi)
			ng := newNGEngine(t, e.Addr)
			p := startProxy(t, proxyOpts{Extra: mediaConfig("200ms", e.Addr)})
			p.waitGauge(t, "siphon_rtpengine_instances_up", nil, 1)
			target := "127.0.0.1:" + strconv.Itoa(p.SIPPort)
			callee := func(name string, port int) {
				startSipp(t, "register", tr.sipp, ports.Port(t), target, "-m", "1",
					"-key", "user", name, "-key", "contact_port", strconv.Itoa(port), "-key", "expires", "300").Wait()
			}

			t.Run("answered", func(t *testing.T) {
				uasPort := ports.Port(t)
				uas, uasLog := sippSDP(t, "uas-answer", tr.sipp, uasPort, "", "-m", "1")
				callee("media-answered", uasPort)
				before := p.scrape(t)
				// the caller holds the call for 3 s: the engine lists it meanwhile
				uac, uacLog := sippSDP(t, "uac-call", tr.sipp, ports.Port(t), target, "-m", "1", "-s", "media-answered", "-d", "3000")
				ids := ng.waitCalls(t, 1)
				held := ng.localPorts(t, ids[0])
				uac.Wait()
				uas.Wait()
				assert.Equal(t, uac.CallID(), ids[0], "the engine held our call")

				toCallee, toCaller := sdpReceived(t, uasLog), sdpReceived(t, uacLog)
				require.Len(t, toCallee, 1, "the INVITE's SDP at the callee")
				require.Len(t, toCaller, 1, "the 200's SDP at the caller")
				inRange(t, toCallee[0], tr.lo, tr.hi, "INVITE at the callee")
				inRange(t, toCaller[0], tr.lo, tr.hi, "200 at the caller")
				assert.NotEqual(t, toCallee[0].Port, toCaller[0].Port, "one port per side")
				assert.Contains(t, held, toCallee[0].Port, "the engine holds the callee's port")
				assert.Contains(t, held, toCaller[0].Port, "the engine holds the caller's port")

				ng.waitCalls(t, 0) // the BYE deleted it
				after := p.scrape(t)
				for _, c := range []struct {
					command string
					n       float64
				}{{"offer", 1}, {"answer", 1}, {"delete", 1}} {
					assert.Equal(t, c.n, ngDelta(before, after, c.command, "ok"), c.command)
					assert.Zero(t, ngDelta(before, after, c.command, "error"), c.command)
					assert.Zero(t, ngDelta(before, after, c.command, "timeout"), c.command)
				}
				assert.Zero(t, delta(before, after, "sipproxy_rtpengine_unanchored_total", nil))
				assert.Equal(t, 3.0, delta(before, after, "sipproxy_rtpengine_command_duration_seconds_count", nil))
			})

			for _, c := range []struct {
				name, uas, uac string
				code           int
			}{
				{"cancelled", "uas-ring", "uac-cancel", 487},
				{"busy", "uas-busy", "", 486},
				{"unanswered", "uas-ring", "", 408},
			} {
				t.Run(c.name, func(t *testing.T) {
					uasPort := ports.Port(t)
					uas := startSipp(t, c.uas, tr.sipp, uasPort, "", "-m", "1")
					callee("media-"+c.name, uasPort)
					before := p.scrape(t)
					scenario := c.uac
					if scenario == "" {
						scenario = failScenario(t, c.code)
					}
					uac := startSipp(t, scenario, tr.sipp, ports.Port(t), target, "-m", "1", "-s", "media-"+c.name)
					uac.Wait()
					uas.Wait()
					assert.EqualValues(t, c.code, p.WaitCDR(uac.CallID(), "INVITE")["response_code"])
					ng.waitCalls(t, 0)
					var after exposition.Families
					require.EventuallyWithT(t, func(ct *assert.CollectT) {
						m, err := p.Metrics()
						if assert.NoError(ct, err) {
							after = m
							assert.Equal(ct, 1.0, ngDelta(before, m, "delete", "ok"), "the delete answered")
						}
					}, 10*time.Second, 20*time.Millisecond)
					assert.Equal(t, 1.0, ngDelta(before, after, "offer", "ok"))
					assert.Zero(t, ngDelta(before, after, "answer", "ok"), "no SDP answered")
				})
			}
		})
	}
}

// TestMediaFailover runs calls with two instances, one of them down:
// gone after the health check saw it up (the first call's offer gets no
// answer there, fails over to the other and takes the dead one out of
// rotation; counted as one offer timeout), or down from the start (the
// ping health keeps every call off it). Every call is anchored on the
// live engine, a real rtpengine. The instance that dies is ngtest's NG
// endpoint, which answers the health check and then closes its port:
// internal/testenv/rtpengine cannot run two engines at once (both take
// rtpengine's default CLI port, 2224).
func TestMediaFailover(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lo, hi   int
		killed   bool
		timeouts float64
	}{
		{"killed", 31400, 31499, true, 1},
		{"down at start", 31500, 31599, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			live := engine.Start(t, tc.lo, tc.hi)
			var p *proxy
			if tc.killed {
				// up at the only health check (the interval is long), then gone
				d := ngtest.Start(t)
				p = startProxy(t, proxyOpts{Extra: mediaConfig("10m", d.Addr, live.Addr)})
				p.waitGauge(t, "siphon_rtpengine_instances_up", nil, 2)
				d.Close()
				assert.Equal(t, []string{"ping"}, d.Commands(), "the dead instance only saw the health check")
			} else {
				dead := ports.Addr(t) // nothing listens
				p = startProxy(t, proxyOpts{Extra: mediaConfig("200ms", dead, live.Addr)})
				p.waitGauge(t, "siphon_rtpengine_instance_up", labels{"address": dead}, 0)
				p.waitGauge(t, "siphon_rtpengine_instance_up", labels{"address": live.Addr}, 1)
			}
			runFailover(t, p, newNGEngine(t, live.Addr), tc.lo, tc.hi, tc.timeouts)
		})
	}
}

// runFailover places three answered calls, one at a time, and checks each
// was anchored on the live engine (its port range) and the counters.
func runFailover(t *testing.T, p *proxy, live *ngEngine, lo, hi int, timeouts float64) {
	t.Helper()
	const n = 3
	target := "127.0.0.1:" + strconv.Itoa(p.SIPPort)
	uasPort := ports.Port(t)
	uas, uasLog := sippSDP(t, "uas-answer", "u1", uasPort, "", "-m", strconv.Itoa(n))
	startSipp(t, "register", "u1", ports.Port(t), target, "-m", "1",
		"-key", "user", "media-failover", "-key", "contact_port", strconv.Itoa(uasPort), "-key", "expires", "300").Wait()
	before := p.scrape(t)
	uac, uacLog := sippSDP(t, "uac-call", "u1", ports.Port(t), target, "-m", strconv.Itoa(n), "-l", "1", "-s", "media-failover", "-d", "200")
	uac.Wait()
	uas.Wait()
	ok, failed := uac.Stats()
	assert.Equal(t, n, ok)
	assert.Zero(t, failed)
	toCallee, toCaller := sdpReceived(t, uasLog), sdpReceived(t, uacLog)
	require.Len(t, toCallee, n)
	require.Len(t, toCaller, n)
	for i := range n {
		inRange(t, toCallee[i], lo, hi, fmt.Sprintf("call %d at the callee", i+1))
		inRange(t, toCaller[i], lo, hi, fmt.Sprintf("call %d at the caller", i+1))
	}
	live.waitCalls(t, 0)
	var after exposition.Families
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m, err := p.Metrics()
		if assert.NoError(c, err) {
			after = m
			assert.Equal(c, float64(n), ngDelta(before, m, "delete", "ok"), "every call deleted")
		}
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, float64(n), ngDelta(before, after, "offer", "ok"))
	assert.Equal(t, timeouts, ngDelta(before, after, "offer", "timeout"), "offers the dead engine did not answer")
	assert.Equal(t, float64(n), ngDelta(before, after, "answer", "ok"))
	assert.Zero(t, ngDelta(before, after, "answer", "timeout"), "a call's answer goes where its offer went")
	assert.Zero(t, ngDelta(before, after, "delete", "timeout"))
	assert.Zero(t, delta(before, after, "sipproxy_rtpengine_unanchored_total", nil), "every call anchored")
}
