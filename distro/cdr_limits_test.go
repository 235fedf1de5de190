//go:build integration

package distro_test

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/exposition"
	"github.com/siphon-otel/siphon-otel/internal/syslogmsg"
	"github.com/siphon-otel/siphon-otel/internal/testenv/collector"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
	"github.com/siphon-otel/siphon-otel/internal/testenv/hepsink"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
)

// TestCDRDefaultConfigClosesRequestsThatNeverEnd holds CDR posts that never
// end open against the appliance on its default config, which sets none of
// the siphon_cdr receiver's timeouts: a chunked body without its last chunk,
// fewer bytes than the Content-Length, headers without their end. The
// receiver's defaults (read_timeout 30 s, read_header_timeout 10 s) close
// every one of them, counted as timeouts. Before, 500 such connections
// were all still open after 55 s.
func TestCDRDefaultConfigClosesRequestsThatNeverEnd(t *testing.T) {
	t.Parallel()
	c := startConfig(t, "config.yaml", "", nil)
	const each = 10
	head := "POST /v1/cdr HTTP/1.1\r\nHost: cdr\r\nContent-Type: application/json\r\n"
	kinds := []string{
		head + "Transfer-Encoding: chunked\r\n\r\n5\r\n[1,2,\r\n",
		head + "Content-Length: 1000\r\n\r\n" + string(cdrFixture[:100]),
		head + "Content-",
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, each*len(kinds))
	for k, req := range kinds {
		for i := range each {
			conn, err := net.Dial("tcp", c.httpAddr)
			require.NoError(t, err)
			defer conn.Close()
			_, err = conn.Write([]byte(req))
			require.NoError(t, err)
			wg.Go(func() {
				// held open: only the collector ends it; the test's own
				// deadline is far beyond the receiver's timeouts
				_ = conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
				br := bufio.NewReader(conn)
				resp, err := http.ReadResponse(br, nil)
				if err == nil {
					resp.Body.Close()
					_, err = br.ReadByte()
				}
				errs[k*each+i] = err
			})
		}
	}
	wg.Wait()
	t.Logf("%d requests that never end: the last ended after %s", len(errs), time.Since(start).Round(time.Second))
	for i, err := range errs {
		var ne net.Error
		assert.False(t, errors.As(err, &ne) && ne.Timeout(), "request %d (kind %d) still open after 2 minutes", i, i/each)
	}
	c.WaitMetric(30*time.Second, float64(len(errs)), "otelcol_siphon_cdr_receiver_requests_refused",
		exposition.Labels{"transport": "http", "reason": "timeout"})
	code, err := siphonPOST(c.httpAddr, cdrWithID("after-the-attack"))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
}

// TestFleetSyslogAllowList runs siphon-fleet.yaml with its syslog opened to
// one sender (SIPHON_CDR_SYSLOG_ALLOWED_SOURCES=127.0.0.2): that sender's
// CDRs over UDP and TCP reach the CDR file, another loopback address's are
// refused unread and counted.
func TestFleetSyslogAllowList(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets.yaml")
	require.NoError(t, os.WriteFile(targets, []byte("[]\n"), 0o600))
	homer := hepsink.NewStream(t, "127.0.0.1:0", nil)
	listen := map[string]string{}
	for _, k := range []string{"SIPHON_HEP_PORT", "SIPHON_CDR_HTTP_PORT", "SIPHON_CDR_SYSLOG_PORT", "SIPHON_KPI_PORT",
		"SIPHON_HEALTH_PORT", "SIPHON_TELEMETRY_PORT"} {
		listen[k] = strconv.Itoa(ports.Port(t))
	}
	env := map[string]string{"SIPHON_LISTEN_ADDRESS": "127.0.0.1", "SIPHON_TARGETS_FILE": targets,
		"SIPHON_HOMER_ENDPOINT": homer.Addr(), "SIPHON_STATE_DIR": filepath.Join(dir, "state"),
		"SIPHON_CDR_SYSLOG_ALLOWED_SOURCES": "127.0.0.2"}
	for k, v := range listen {
		env[k] = v
	}
	p := collector.Start(t, collector.Options{Config: "siphon:siphon-fleet.yaml", Env: env,
		HealthAddr: "127.0.0.1:" + listen["SIPHON_HEALTH_PORT"], TelemetryPort: listen["SIPHON_TELEMETRY_PORT"]})
	syslogAddr := "127.0.0.1:" + listen["SIPHON_CDR_SYSLOG_PORT"]
	line := func(id string) []byte {
		return []byte("<134>1 2026-03-06T14:23:01.042Z siphon cdr - - - " + string(fixture.CDRWithID(id)))
	}
	send := func(src, network, id string) {
		d := net.Dialer{Timeout: 5 * time.Second}
		if network == "udp" {
			d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(src)}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
		}
		conn, err := d.Dial(network, syslogAddr)
		if errors.Is(err, syscall.ECONNRESET) {
			return // refused so fast that the connect failed
		}
		require.NoError(t, err)
		defer conn.Close()
		msg := line(id)
		if network == "tcp" {
			msg = syslogmsg.AppendOctetCounted(nil, msg)
		}
		_, _ = conn.Write(msg) // a refused TCP connection may already be closed
	}
	send("127.0.0.1", "udp", "stranger-udp")
	send("127.0.0.1", "tcp", "stranger-tcp")
	p.WaitMetric(30*time.Second, 1, "otelcol_siphon_cdr_receiver_datagrams_refused", exposition.Labels{"reason": "not_allowed"})
	p.WaitMetric(30*time.Second, 1, "otelcol_siphon_cdr_receiver_connections_rejected",
		exposition.Labels{"transport": "syslog_tcp", "reason": "not_allowed"})
	send("127.0.0.2", "udp", "node-udp")
	send("127.0.0.2", "tcp", "node-tcp")
	lines := fileLines(t, filepath.Join(dir, "state", "cdr.jsonl"), 2, 30*time.Second)
	assert.Equal(t, map[string]int{"node-udp": 1, "node-tcp": 1}, callIDCounts(t, lines), "the allowed node's CDRs, and only those")
}
