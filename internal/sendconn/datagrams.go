package sendconn

import (
	"net"
	"time"
)

// datagramBatch is how many datagrams one batch write carries at most
// (sendmmsg takes up to 1024; this bounds the encoding buffer too).
const datagramBatch = 256

// datagrams is the reusable state of batched datagram writes.
type datagrams struct {
	ends    []int // end of each encoded datagram in Conn.buf
	records []int // the record index of each encoded datagram
	w       batchWriter
	conn    net.Conn // what w writes to
}

// maxRefusals bounds the refusals in a row, with no datagram written in
// between, that a batch write takes before it gives up: each one is an
// ICMP report about an earlier datagram (counted by the ledger), after
// which the same datagram is written again; an error that persists is not
// such a report but a local one (no route, say), and fails the send.
const maxRefusals = 3

// sendDatagrams writes records 0..n-1 as one datagram each, in batches,
// each write preceded by a check of the socket for reports of loss (the
// ledger). On a write error other than such a report it returns the index
// of the first record that did not go out.
func (c *Conn) sendDatagrams(conn net.Conn, n int, enc Encoder) (from int, err error) {
	d := &c.dgrams
	if d.conn != conn {
		d.w, d.conn = newBatchWriter(conn), conn
	}
	for first := 0; first < n; {
		c.buf, d.ends, d.records = c.buf[:0], d.ends[:0], d.records[:0]
		i := first
		for ; i < n && len(d.ends) < datagramBatch; i++ {
			start := len(c.buf)
			var ok bool
			if c.buf, ok = enc(c.buf, i); !ok {
				c.buf = c.buf[:start]
				continue
			}
			d.ends, d.records = append(d.ends, len(c.buf)), append(d.records, i)
		}
		first = i
		for k, refused := 0, 0; k < len(d.ends); {
			// sendmmsg(2) consumes a pending error on a message after the first and
			// returns the count so far without it: the check before every
			// write reads the queued report instead
			c.check(time.Now())
			w, err := d.w.write(c.buf, d.ends, k)
			if w > 0 {
				c.wrote(w, time.Now())
				k, refused = k+w, 0
			}
			if err == nil {
				continue
			}
			reason, ok := lossReason(err)
			if !ok || refused == maxRefusals {
				return d.records[k], err
			}
			// a report about earlier datagrams; datagram k did not go out
			refused++
			if !c.check(time.Now()) {
				c.refused(reason) // no queued report to read (off Linux)
			}
		}
	}
	return n, nil
}

// plainWriter writes one datagram per system call.
type plainWriter struct{ conn net.Conn }

func (p plainWriter) write(buf []byte, ends []int, k int) (int, error) {
	start := 0
	if k > 0 {
		start = ends[k-1]
	}
	for i := k; i < len(ends); i++ {
		if _, err := p.conn.Write(buf[start:ends[i]]); err != nil {
			return i - k, err
		}
		start = ends[i]
	}
	return len(ends) - k, nil
}

// batchWriter writes datagrams k.. of buf (split at ends) and returns how
// many went out before an error.
type batchWriter interface {
	write(buf []byte, ends []int, k int) (int, error)
}
