package siphoncdrreceiver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
)

const postHead = "POST /v1/cdr HTTP/1.1\r\nHost: cdr\r\nContent-Type: application/json\r\n"

// TestHTTPRequestsThatNeverEnd opens connections whose request never ends,
// as an attacker holding connections would: a chunked body without its
// last chunk, fewer bytes than the Content-Length, headers without their
// end. Each is closed by the server once read_timeout (or
// read_header_timeout) has passed, the bodies answered 408, and every one
// is counted as a timeout. Before, nothing bounded a body's read: 500 such
// connections were all still open after 55 s.
func TestHTTPRequestsThatNeverEnd(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	hc := cfg.HTTP.Get()
	hc.ReadHeaderTimeout, hc.ReadTimeout = 200*time.Millisecond, 500*time.Millisecond
	start(t, cfg, h, sink)
	const each = 20
	kinds := []struct {
		name, req string
		status    int
	}{
		{"chunked body without its last chunk", postHead + "Transfer-Encoding: chunked\r\n\r\n5\r\n[1,2,\r\n", http.StatusRequestTimeout},
		{"fewer bytes than the Content-Length", postHead + "Content-Length: 1000\r\n\r\n" + sample[:100], http.StatusRequestTimeout},
		{"headers without their end", postHead + "Content-", http.StatusBadRequest}, // net/http answers
	}
	type result struct {
		kind   int
		status int
		err    error
	}
	results := make(chan result, each*len(kinds))
	var wg sync.WaitGroup
	for k, kind := range kinds {
		for range each {
			c, err := net.Dial("tcp", h.http)
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write([]byte(kind.req))
			require.NoError(t, err)
			wg.Go(func() {
				// the connection is held open: only the server ends it
				_ = c.SetReadDeadline(time.Now().Add(waitFor))
				br := bufio.NewReader(c)
				r := result{kind: k}
				resp, err := http.ReadResponse(br, nil)
				if err == nil {
					r.status = resp.StatusCode
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					_, err = br.ReadByte() // then the server closes it
				}
				r.err = err
				results <- r
			})
		}
	}
	wg.Wait()
	close(results)
	for r := range results {
		kind := kinds[r.kind]
		assert.Equal(t, kind.status, r.status, kind.name)
		assert.ErrorIs(t, r.err, io.EOF, "%s: closed by the server, not by the test's deadline", kind.name)
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, int64(each*len(kinds)), h.sum(c, "siphon_cdr_receiver_requests_refused", tr("http"), reason("timeout")))
	}, waitFor, time.Millisecond)
	assert.Equal(t, int64(each*len(kinds)), h.sum(t, "siphon_cdr_receiver_requests_refused", tr("http")), "all of them timeouts")
	assert.Zero(t, h.sum(t, "siphon_cdr_receiver_bytes_in_flight", tr("http")), "what they held is given back")
	assert.Zero(t, sink.LogRecordCount())
}

// TestHTTPInFlightCap holds uploads open until max_in_flight_bytes is taken:
// the next request is refused with 503 and Retry-After and counted, the
// gauge shows what is held; once the uploads are let go everything held is
// given back and SIPhon's post goes through.
func TestHTTPInFlightCap(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg, h := testConfig(t)
	hc := cfg.HTTP.Get()
	hc.MaxRequestBodySize, hc.MaxRecordsPerRequest = 4096, 2
	hc.MaxInFlightBytes = hc.largestRequest() // 11,264: two held bodies of 4 KiB fit, not three
	start(t, cfg, h, sink)
	inFlight := func(c assert.TestingT) int64 { return h.sum(c, "siphon_cdr_receiver_bytes_in_flight", tr("http")) }
	refused := func(c assert.TestingT, why string) int64 {
		return h.sum(c, "siphon_cdr_receiver_requests_refused", tr("http"), reason(why))
	}

	var held []net.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	hold := func() net.Conn {
		c, err := net.Dial("tcp", h.http)
		require.NoError(t, err)
		_, err = fmt.Fprintf(c, "%sTransfer-Encoding: chunked\r\n\r\nbb8\r\n%s\r\n", postHead, strings.Repeat(" ", 3000))
		require.NoError(t, err)
		require.Eventually(t, func() bool { n, err := unread(c); return err == nil && n == 0 }, waitFor, time.Millisecond, "the server read the upload")
		return c
	}
	for i := range 2 {
		held = append(held, hold())
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Equal(c, int64(4096*(i+1)), inFlight(c), "a held upload holds its buffer")
		}, waitFor, time.Millisecond)
	}
	third := hold()
	defer third.Close()
	_ = third.SetReadDeadline(time.Now().Add(waitFor))
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "5", resp.Header.Get("Retry-After"))
	assert.Equal(t, int64(1), refused(t, "in_flight_limit"))
	assert.Equal(t, int64(8192), inFlight(t))

	for _, c := range held {
		require.NoError(t, c.Close())
	}
	held = nil
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, int64(2), refused(c, "incomplete"), "the uploads let go")
		assert.Zero(c, inFlight(c))
	}, waitFor, time.Millisecond)
	status, _, body := rawPOST(t, h.http, "/v1/cdr", "", sample)
	assert.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, 1, sink.LogRecordCount())
	assert.Zero(t, inFlight(t))
}

// permanent refuses every batch with a permanent error.
type permanent struct{ consumertest.LogsSink }

func (*permanent) ConsumeLogs(context.Context, plog.Logs) error {
	return consumererror.NewPermanent(errors.New("no such tenant"))
}

func TestHTTPPipelinePermanentErrorIs400(t *testing.T) {
	cfg, h := testConfig(t)
	start(t, cfg, h, &permanent{})
	status, _, body := rawPOST(t, h.http, "/v1/cdr", "", sample)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.JSONEq(t, `{"error":"refused by the pipeline: Permanent error: no such tenant"}`, body)
	assert.Equal(t, int64(1), h.sum(t, "siphon_cdr_receiver_requests_refused", tr("http"), reason("permanent_error")))
}
