package siphoncdrreceiver

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// tinyElements is a block of a JSON array of tiny elements: "1,1,1,...".
var tinyElements = bytes.Repeat([]byte("1,"), 32<<10)

// upload is an attacker's POST on a raw socket: it sends size bytes of a
// body it never finishes (a Content-Length one byte larger, or chunks
// without the last one), then holds the connection until released.
type upload struct {
	conn   net.Conn
	wrote  atomic.Bool  // it sent all it meant to, or sending failed
	closed atomic.Bool  // the server answered or closed the connection
	status atomic.Int32 // the answer's status code, if one was read
}

func startUpload(t *testing.T, wg *sync.WaitGroup, addr string, size int, chunked bool, stop <-chan struct{}) *upload {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	u := &upload{conn: c}
	framing := fmt.Sprintf("Content-Length: %d", size+1)
	if chunked {
		framing = "Transfer-Encoding: chunked"
	}
	head := "POST /v1/cdr HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n" + framing + "\r\n\r\n"
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer u.wrote.Store(true)
		_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
		first := "["
		if chunked {
			first = "1\r\n[\r\n"
		}
		if _, err := c.Write([]byte(head + first)); err != nil {
			return
		}
		for sent := 1; sent < size; {
			select {
			case <-stop:
				return
			default:
			}
			block := tinyElements[:min(len(tinyElements), size-sent)]
			var err error
			if chunked {
				_, err = fmt.Fprintf(c, "%x\r\n%s\r\n", len(block), block)
			} else {
				_, err = c.Write(block)
			}
			if err != nil {
				return
			}
			sent += len(block)
		}
	}()
	go func() {
		defer wg.Done()
		defer u.closed.Store(true)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			u.status.Store(int32(resp.StatusCode))
			resp.Body.Close()
		}
	}()
	return u
}

// held reports whether the server is done with the upload: it answered or
// closed it, or it read everything the upload sent.
func (u *upload) held() bool {
	if u.closed.Load() {
		return true
	}
	if !u.wrote.Load() {
		return false
	}
	n, err := unread(u.conn)
	return err == nil && n == 0
}

// heldUploadsBound is what 48 held uploads may add to the heap: twice the
// default in-flight cap (64 MiB: the bodies held and the GC's headroom over
// them) plus 32 MiB for the connections, their goroutines and buffers. Before
// the cap every held upload cost ~28 MiB: 48 of 19 MiB took the heap past
// 1.3 GiB.
const heldUploadsBound = 2*64*mib + 32*mib

// TestHTTPHeldUploadsBoundedMemory holds 48 uploads open at once, as an
// attacker on loopback would against the default configuration: bodies of
// 19 MiB declared by Content-Length or chunked, and chunked bodies just
// under the body limit, each left unfinished. The heap must stay within
// heldUploadsBound; every upload is refused and counted (413 over the body
// limit, 503 past the in-flight cap, or, once the attacker lets go, an
// incomplete body); then a SIPhon post goes through.
func TestHTTPHeldUploadsBoundedMemory(t *testing.T) {
	const uploads = 48
	tests := []struct {
		name    string
		size    func(limit int) int
		chunked bool
	}{
		{"19 MiB declared", func(int) int { return 19 * mib }, false},
		{"19 MiB chunked", func(int) int { return 19 * mib }, true},
		{"just under the body limit, chunked", func(limit int) int { return limit - 64<<10 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			cfg, h := testConfig(t)
			start(t, cfg, h, sink)
			limit := int(cfg.HTTP.Get().MaxRequestBodySize)
			if limit <= 0 {
				limit = 20 * mib // confighttp's default
			}
			size := tt.size(limit)

			mem := watchMemory(t, heldUploadsBound)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var all []*upload
			release := func() {
				select {
				case <-stop:
					return
				default:
				}
				close(stop)
				for _, u := range all {
					_ = u.conn.Close()
				}
				wg.Wait()
			}
			defer release()
			for range uploads {
				all = append(all, startUpload(t, &wg, h.http, size, tt.chunked, stop))
			}
			go func() {
				select {
				case <-mem.over:
					release() // the heap passed the bound: stop the attack, fail below
				case <-stop:
				}
			}()
			require.Eventually(t, func() bool {
				for _, u := range all {
					if !u.held() {
						return false
					}
				}
				return true
			}, 2*time.Minute, 5*time.Millisecond, "every upload answered, closed or read to its last byte")
			growth := mem.growth()
			answered := 0
			for _, u := range all {
				if u.closed.Load() {
					answered++
				}
			}
			t.Logf("%d uploads of %.2f MiB: %s; %d answered or closed, %d held", uploads, float64(size)/mib, mem.report(), answered, uploads-answered)
			assert.LessOrEqual(t, growth, uint64(heldUploadsBound), "heap growth under %d held uploads", uploads)

			release()
			refused := func(c assert.TestingT, why string) int64 {
				return h.sum(c, "siphon_cdr_receiver_requests_refused", tr("http"), reason(why))
			}
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				total := refused(c, "too_large") + refused(c, "in_flight_limit") + refused(c, "incomplete")
				assert.Equal(c, int64(uploads), total, "every upload refused and counted")
			}, waitFor, time.Millisecond)
			if size > limit {
				assert.Zero(t, refused(t, "incomplete"), "over the body limit: refused before its end")
			}
			status, _, body := rawPOST(t, h.http, "/v1/cdr", "", sample)
			assert.Equal(t, http.StatusOK, status, body)
			assert.Equal(t, 1, sink.LogRecordCount())
		})
	}
}

// TestHTTPArrayOfTinyElementsBoundedMemory posts 19 MiB JSON arrays of
// tiny elements ([1,1,...]) under a body limit that lets them in: one, then
// four at once. Each is refused with 413 as soon as max_records_per_request
// is passed, without slicing the rest: the heap grows by at most three
// times the bodies (read into a buffer that doubles) plus 16 MiB. Before,
// every element was sliced first: +749 MiB of RSS for one request.
func TestHTTPArrayOfTinyElementsBoundedMemory(t *testing.T) {
	const size = 19 * mib
	body := make([]byte, 0, size)
	body = append(body, '[')
	for len(body) < size-len(tinyElements) {
		body = append(body, tinyElements...)
	}
	body = append(body, '1', ']')
	for _, concurrent := range []int{1, 4} {
		t.Run(fmt.Sprint(concurrent), func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			cfg, h := testConfig(t)
			hc := cfg.HTTP.Get()
			hc.MaxRequestBodySize = 20 * mib
			start(t, cfg, h, sink)
			req := siphonRequest(h.http, "/v1/cdr", "", body)
			bound := uint64(concurrent*3*size + 16*mib)
			mem := watchMemory(t, 2*bound)
			var wg sync.WaitGroup
			statuses := make([]int, concurrent)
			answers := make([]string, concurrent)
			errs := make([]error, concurrent)
			for i := range concurrent {
				wg.Go(func() { statuses[i], _, answers[i], errs[i] = post(h.http, req) })
			}
			wg.Wait()
			t.Logf("%d × %d MiB array: %s", concurrent, size/mib, mem.report())
			assert.LessOrEqual(t, mem.growth(), bound)
			// under the default in-flight cap four bodies of 19 MiB do not
			// all fit: the ones past it are refused with 503 while they are
			// still being sent, and their client may see the connection
			// reset before the answer
			tooMany := 0
			for i := range concurrent {
				if errs[i] == nil && statuses[i] == http.StatusRequestEntityTooLarge {
					tooMany++
					assert.Contains(t, answers[i], fmt.Sprintf("more than %d", hc.MaxRecordsPerRequest))
				} else if errs[i] == nil {
					assert.Equal(t, http.StatusServiceUnavailable, statuses[i], answers[i])
				}
			}
			assert.Positive(t, tooMany)
			assert.Equal(t, int64(tooMany), h.sum(t, "siphon_cdr_receiver_requests_refused", tr("http"), reason("too_many_records")))
			assert.Equal(t, int64(concurrent-tooMany), h.sum(t, "siphon_cdr_receiver_requests_refused", tr("http"), reason("in_flight_limit")))
			assert.Zero(t, sink.LogRecordCount())
		})
	}
}
