package sipmsg

import (
	"iter"
	"strings"
)

// Name is a header name as Header looks it up: its long form and its
// compact form (RFC 3261 7.3.3 and later registrations), either of which
// may be empty.
type Name struct {
	long    string
	compact byte // lower case; 0 when the header has none
}

// compactForms are the registered compact header names (IANA SIP
// parameters, "Header Fields"), long form in lower case.
var compactForms = map[byte]string{
	'a': "accept-contact", 'b': "referred-by", 'c': "content-type", 'd': "request-disposition",
	'e': "content-encoding", 'f': "from", 'i': "call-id", 'j': "reject-contact", 'k': "supported",
	'l': "content-length", 'm': "contact", 'n': "identity-info", 'o': "event", 'r': "refer-to",
	's': "subject", 't': "to", 'u': "allow-events", 'v': "via", 'x': "session-expires", 'y': "identity",
}

// HeaderName returns the Name of a header given in either form, any case:
// HeaderName("Call-ID") and HeaderName("i") are the same Name.
func HeaderName(name string) Name {
	if len(name) == 1 {
		c := lower(name[0])
		if long, ok := compactForms[c]; ok {
			return Name{long: long, compact: c}
		}
		return Name{long: name}
	}
	for c, long := range compactForms {
		if strings.EqualFold(long, name) {
			return Name{long: long, compact: c}
		}
	}
	return Name{long: name}
}

// matches reports whether a header line's name is n.
func (n Name) matches(name string) bool {
	if len(name) == 1 && n.compact != 0 && lower(name[0]) == n.compact {
		return true
	}
	return strings.EqualFold(name, n.long)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Header yields the value of every header line of msg named name (any
// case, long or compact form), in message order, white space trimmed. Only
// the header block is read: the start line is skipped and the body never
// looked at. A value folded over several lines comes joined with single
// spaces (RFC 3261 7.3.1: folding means a space). Comma-separated values
// on one line come as that one line: splitting them needs the header's own
// grammar (commas inside quoted strings and URIs).
//
// A value is a substring of msg unless it was folded.
func Header(msg, name string) iter.Seq[string] { return HeaderName(name).Values(msg) }

// FirstHeader is the first value Header yields, or "" when msg has no such
// header.
func FirstHeader(msg, name string) string {
	for v := range Header(msg, name) {
		return v
	}
	return ""
}

// Values is Header for a Name made once.
func (n Name) Values(msg string) iter.Seq[string] {
	return func(yield func(string) bool) {
		_, rest := nextLine(msg) // the start line
		for rest != "" {
			var line string
			line, rest = nextLine(rest)
			if line == "" {
				return // end of headers
			}
			colon := strings.IndexByte(line, ':')
			if colon <= 0 || line[0] == ' ' || line[0] == '\t' || !n.matches(strings.TrimRight(line[:colon], " \t")) {
				continue
			}
			value := strings.TrimSpace(line[colon+1:])
			if folded(rest) {
				var b strings.Builder
				b.WriteString(value)
				for folded(rest) {
					line, rest = nextLine(rest)
					if cont := strings.TrimSpace(line); cont != "" {
						if b.Len() > 0 {
							b.WriteByte(' ')
						}
						b.WriteString(cont)
					}
				}
				value = b.String()
			}
			if !yield(value) {
				return
			}
		}
	}
}

// folded reports whether the next line continues the previous one.
func folded(rest string) bool { return rest != "" && (rest[0] == ' ' || rest[0] == '\t') }

// Param returns the value of the parameter name (any case) in a list of
// parameters separated by semicolons, "a=1;b;c=\"x;y\"", the value of a
// quoted parameter without its quotes, and whether the parameter is there
// (a parameter without a value is there with value ""). The list ends at
// a comma outside quotes (the next value of a list header).
func Param(list, name string) (string, bool) {
	for list != "" {
		end, stop := paramEnd(list)
		p := list[:end]
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), name) {
			return unquote(strings.TrimSpace(v)), true
		}
		if stop || end == len(list) {
			break
		}
		list = list[end+1:]
	}
	return "", false
}

// paramEnd returns where the first parameter of list ends (at a ';' or ','
// outside quotes, or the end) and whether a ',' ends it.
func paramEnd(list string) (int, bool) {
	quoted := false
	for i := 0; i < len(list); i++ {
		switch c := list[i]; {
		case c == '\\' && quoted:
			i++ // the escaped character
		case c == '"':
			quoted = !quoted
		case c == ';' && !quoted:
			return i, false
		case c == ',' && !quoted:
			return i, true
		}
	}
	return len(list), false
}

// unquote strips the quotes of a quoted string; escapes stay as sent (a
// value is compared, never shown unescaped).
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// Body is what follows a message's header block (CRLF CRLF, or a bare
// LF LF from a tool that wrote LF ends); "" when there is none.
func Body(msg string) string {
	if i := strings.Index(msg, "\r\n\r\n"); i >= 0 {
		return msg[i+4:]
	}
	if i := strings.Index(msg, "\n\n"); i >= 0 {
		return msg[i+2:]
	}
	return ""
}
