package rtpengine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// The NG control protocol: a datagram is "<cookie> <bencoded dictionary>";
// the reply repeats the cookie. A request's dictionary names the command
// ("command": "offer"); a reply carries "result" ("ok", "pong", "error"
// with "error-reason").

// maxDatagram is the largest NG datagram read.
const maxDatagram = 65535

// newCookie returns a random cookie: it tells apart the replies of
// requests in flight on one socket, and RTPEngine answers a retransmitted
// request (same cookie) from its cache instead of running it again.
func newCookie() string {
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	return hex.EncodeToString(raw[:])
}

// encodeRequest renders one request datagram.
func encodeRequest(cookie string, msg Dict) ([]byte, error) {
	body, err := Encode(msg)
	if err != nil {
		return nil, fmt.Errorf("rtpengine: %w", err)
	}
	return append([]byte(cookie+" "), body...), nil
}

// ParseDatagram splits a datagram (a request or a reply) into its cookie
// and dictionary.
func ParseDatagram(b []byte) (cookie string, reply Dict, err error) {
	c, body, ok := cutCookie(b)
	if !ok {
		return "", nil, fmt.Errorf("rtpengine: datagram without a cookie: %q", truncate(b))
	}
	v, err := Decode(body)
	if err != nil {
		return c, nil, fmt.Errorf("rtpengine: datagram: %w", err)
	}
	d, ok := v.(Dict)
	if !ok {
		return c, nil, fmt.Errorf("rtpengine: datagram is not a dictionary: %q", truncate(body))
	}
	return c, d, nil
}

// EngineError is a reply whose result is not the one expected: RTPEngine
// refused the command ("result": "error" with its "error-reason").
type EngineError struct {
	Result, Reason string
}

func (e *EngineError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("rtpengine: %s: %s", e.Result, e.Reason)
	}
	return "rtpengine: result " + e.Result
}

// checkResult requires "result" to be want ("ok", or "pong" for ping).
func checkResult(reply Dict, want string) error {
	result, _ := reply["result"].(string)
	if result == want {
		return nil
	}
	reason, _ := reply["error-reason"].(string)
	if result == "" {
		result = "missing"
	}
	return &EngineError{Result: result, Reason: reason}
}

// IsEngineError reports whether err is RTPEngine refusing a command (as
// opposed to not answering it).
func IsEngineError(err error) bool {
	var e *EngineError
	return errors.As(err, &e)
}

// String returns a reply's string value of key ("" when absent or not a
// string).
func String(d Dict, key string) string {
	s, _ := d[key].(string)
	return s
}

// cutCookie splits a datagram at its first space.
func cutCookie(b []byte) (cookie string, body []byte, ok bool) {
	for i, c := range b {
		if c == ' ' {
			return string(b[:i]), b[i+1:], i > 0
		}
	}
	return "", nil, false
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
