package sendconn

import (
	"errors"
	"net"
	"syscall"
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

// sendDatagrams writes records 0..n-1 as one datagram each, in batches.
// On a write error other than a closed port it returns how many went out
// and the index of the first record that did not.
func (c *Conn) sendDatagrams(conn net.Conn, n int, enc Encoder) (sent, from int, err error) {
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
			w, err := d.w.write(c.buf, d.ends, k)
			sent, k = sent+w, k+w
			if w > 0 {
				refused = 0 // the count is per datagram
			}
			switch {
			case err == nil:
			case errors.Is(err, syscall.ECONNREFUSED):
				// about an earlier datagram; datagram k is not out: try it
				// again, and past three refusals drop it (nobody listens)
				if refused++; refused <= 3 {
					c.unreachable(true)
				} else {
					c.unreachable(false)
					k, refused = k+1, 0
				}
			default:
				return sent, d.records[k], err
			}
		}
	}
	return sent, n, nil
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
