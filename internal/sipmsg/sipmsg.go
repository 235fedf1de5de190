// Package sipmsg extracts the summary of a SIP message that telemetry needs:
// method or status, Call-ID, CSeq, tags, top Via branch and User-Agent.
//
// It is not a SIP parser: it reads the start line and the header block once,
// returns substrings of the input (no copies), and accepts what real traffic
// contains (compact header forms, any header case, LF-only line ends,
// folded lines).
package sipmsg

import (
	"errors"
	"strconv"
	"strings"
)

// ErrNotSIP is returned when the start line is neither a SIP request line
// nor a SIP status line.
var ErrNotSIP = errors.New("sipmsg: start line is not SIP/2.0")

// Summary holds the fields of one message. Strings are substrings of the
// parsed message; empty means absent.
type Summary struct {
	Method     string // request method; empty for responses
	RequestURI string
	StatusCode int // response status; 0 for requests
	Reason     string
	CallID     string
	CSeqNumber uint32
	CSeqMethod string
	FromTag    string
	ToTag      string
	ViaBranch  string // branch of the top-most Via
	UserAgent  string // User-Agent, or Server for responses without one
}

// IsRequest reports whether the message is a request.
func (s *Summary) IsRequest() bool { return s.Method != "" }

// Parse summarises msg. On ErrNotSIP the summary is empty; otherwise every
// header that is present and well formed is filled in.
func Parse(msg string) (Summary, error) {
	var s Summary
	line, rest := nextLine(msg)
	if !s.startLine(line) {
		return Summary{}, ErrNotSIP
	}
	var server string
	viaSeen := false
	for rest != "" {
		line, rest = nextLine(rest)
		if line == "" {
			break // end of headers
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // folded continuation of a header we do not need whole
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := strings.TrimRight(line[:colon], " \t")
		value := strings.TrimSpace(line[colon+1:])
		switch header(name) {
		case hCallID:
			s.CallID = value
		case hCSeq:
			s.cseq(value)
		case hFrom:
			s.FromTag = tagParam(value)
		case hTo:
			s.ToTag = tagParam(value)
		case hVia:
			if !viaSeen {
				viaSeen = true
				s.ViaBranch = branchParam(value)
			}
		case hUserAgent:
			s.UserAgent = value
		case hServer:
			server = value
		}
	}
	if s.UserAgent == "" {
		s.UserAgent = server
	}
	return s, nil
}

func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return strings.TrimSuffix(s, "\r"), ""
	}
	return strings.TrimSuffix(s[:i], "\r"), s[i+1:]
}

// Headers the summary reads.
const (
	hOther = iota
	hCallID
	hCSeq
	hFrom
	hTo
	hVia
	hUserAgent
	hServer
)

// header classifies a header name, long or compact form, any case. It
// switches on the length first: most headers of a message are none of
// these, and this runs for every header of every captured message.
func header(name string) int {
	switch len(name) {
	case 1:
		switch name[0] | 0x20 { // ASCII lower case
		case 'i':
			return hCallID
		case 'f':
			return hFrom
		case 't':
			return hTo
		case 'v':
			return hVia
		}
	case 2:
		if strings.EqualFold(name, "to") {
			return hTo
		}
	case 3:
		if strings.EqualFold(name, "via") {
			return hVia
		}
	case 4:
		if strings.EqualFold(name, "cseq") {
			return hCSeq
		}
		if strings.EqualFold(name, "from") {
			return hFrom
		}
	case 6:
		if strings.EqualFold(name, "server") {
			return hServer
		}
	case 7:
		if strings.EqualFold(name, "call-id") {
			return hCallID
		}
	case 10:
		if strings.EqualFold(name, "user-agent") {
			return hUserAgent
		}
	}
	return hOther
}

// startLine parses "METHOD uri SIP/2.0" or "SIP/2.0 code reason".
func (s *Summary) startLine(line string) bool {
	const ver = "SIP/2.0"
	if strings.HasPrefix(line, ver+" ") {
		rest := line[len(ver)+1:]
		code, reason, _ := strings.Cut(rest, " ")
		n, err := strconv.Atoi(code)
		if err != nil || len(code) != 3 || n < 100 || n > 699 {
			return false
		}
		s.StatusCode, s.Reason = n, reason
		return true
	}
	method, rest, ok := strings.Cut(line, " ")
	if !ok || !IsToken(method) {
		return false
	}
	uri, v, ok := strings.Cut(rest, " ")
	if !ok || v != ver || uri == "" {
		return false
	}
	s.Method, s.RequestURI = method, uri
	return true
}

// IsToken reports whether s is an RFC 3261 token: a method, a header name.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return false
		}
	}
	return true
}

func (s *Summary) cseq(v string) {
	num, method, ok := strings.Cut(v, " ")
	if !ok {
		return
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return
	}
	s.CSeqNumber, s.CSeqMethod = uint32(n), strings.TrimSpace(method)
}

// tagParam returns the tag parameter of a From or To value. Parameters of
// the URI inside <> are not header parameters and are skipped.
func tagParam(v string) string {
	if i := strings.IndexByte(v, '>'); i >= 0 {
		v = v[i+1:]
	}
	return param(v, "tag")
}

// branchParam returns the branch of the first value of a Via header.
func branchParam(v string) string {
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return param(v, "branch")
}

// param finds ";name=value" (name case-insensitive) in the parameters that
// follow a header value's first element (a URI, a sent-by).
func param(v, name string) string {
	i := strings.IndexByte(v, ';')
	if i < 0 {
		return ""
	}
	val, _ := Param(v[i+1:], name)
	return val
}

// AddrURI returns the URI of a From, To or Contact value: what is inside
// <> when present (name-addr), else the value up to its parameters
// (addr-spec).
func AddrURI(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i+1:], '>'); j >= 0 {
			return strings.TrimSpace(v[i+1 : i+1+j])
		}
		return ""
	}
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

// methods are the RFC 3261 methods and its extensions' (PRACK, UPDATE,
// INFO, REFER, SUBSCRIBE, NOTIFY, MESSAGE, PUBLISH), each its own constant.
var methods = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE", "INFO",
		"REFER", "NOTIFY", "SUBSCRIBE", "MESSAGE", "PUBLISH"} {
		m[n] = n
	}
	return m
}()

// KnownMethod returns m as a constant when it is a method of RFC 3261 or
// of its extensions. State that outlives a message keeps the constant, not
// m: a Summary's strings are substrings of the message, and one kept
// substring keeps the whole message alive.
func KnownMethod(m string) (string, bool) {
	n, ok := methods[m]
	return n, ok
}
