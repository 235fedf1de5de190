package mediaq

import (
	"strconv"
)

// jscan walks one JSON text without building it: the caller reads the
// keys it knows and skips the rest. It allocates nothing on the way
// (numbers with a fraction or exponent aside) and refuses what
// encoding/json refuses, nesting deeper than maxJSONDepth too.
type jscan struct {
	b   []byte
	i   int
	src Source
}

// maxJSONDepth bounds nesting: RTCP JSON is three levels deep.
const maxJSONDepth = 16

func (s *jscan) malformed(format string, args ...any) *Error {
	return errorf(s.src, ReasonMalformed, "", "offset "+strconv.Itoa(s.i)+": "+format, args...)
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, 0 at the end.
func (s *jscan) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// end checks that only space (and the NUL a C sender may leave) follows.
func (s *jscan) end() error {
	for ; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r', 0:
		default:
			return s.malformed("data after the JSON value")
		}
	}
	return nil
}

// object reads an object, calling fn with each key; fn consumes the value.
func (s *jscan) object(depth int, fn func(key []byte, depth int) error) error {
	if depth > maxJSONDepth {
		return errorf(s.src, ReasonTooLarge, "", "nested deeper than %d", maxJSONDepth)
	}
	if s.peek() != '{' {
		return s.malformed("want an object")
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.malformed("want a key")
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		if s.peek() != ':' {
			return s.malformed("want ':'")
		}
		s.i++
		if err := fn(key, depth+1); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.malformed("want ',' or '}'")
		}
	}
}

// array reads an array, calling fn for each element; fn consumes it.
func (s *jscan) array(depth int, fn func(depth int) error) error {
	if depth > maxJSONDepth {
		return errorf(s.src, ReasonTooLarge, "", "nested deeper than %d", maxJSONDepth)
	}
	if s.peek() != '[' {
		return s.malformed("want an array")
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := fn(depth + 1); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.malformed("want ',' or ']'")
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// str reads a string and returns its raw contents (escapes kept).
func (s *jscan) str() ([]byte, error) {
	if s.peek() != '"' {
		return nil, s.malformed("want a string")
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, nil
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return nil, s.malformed("unterminated string")
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) || !isHex(s.b[s.i+2]) || !isHex(s.b[s.i+3]) || !isHex(s.b[s.i+4]) || !isHex(s.b[s.i+5]) {
					return nil, s.malformed("bad \\u escape")
				}
				s.i += 6
			default:
				return nil, s.malformed("bad escape")
			}
		case c < 0x20:
			return nil, s.malformed("control character in a string")
		default:
			s.i++
		}
	}
	return nil, s.malformed("unterminated string")
}

// number reads a number, or a string holding one (hepgen.js quotes NTP
// times), or null (ok false).
func (s *jscan) number() (v float64, ok bool, err error) {
	switch s.peek() {
	case '"':
		raw, err := s.str()
		if err != nil {
			return 0, false, err
		}
		v, n, ok := parseNumber(raw)
		if !ok || n != len(raw) {
			return 0, false, s.malformed("string %.32q is not a number", raw)
		}
		return v, true, nil
	case 'n':
		return 0, false, s.literal("null")
	}
	v, n, ok := parseNumber(s.b[s.i:])
	if !ok {
		return 0, false, s.malformed("want a number")
	}
	s.i += n
	return v, true, nil
}

// parseNumber reads a JSON number at the start of b: its value, its
// length, and whether there was one.
func parseNumber(b []byte) (float64, int, bool) {
	i := 0
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	digits := i
	var n uint64
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			if i-digits < 18 {
				n = n*10 + uint64(b[i]-'0')
			}
			i++
		}
	default:
		return 0, 0, false
	}
	exact := i-digits <= 18
	if i < len(b) && b[i] == '.' {
		i++
		frac := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == frac {
			return 0, 0, false
		}
		exact = false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		exp := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == exp {
			return 0, 0, false
		}
		exact = false
	}
	if exact {
		v := float64(n)
		if neg {
			v = -v
		}
		return v, i, true
	}
	v, err := strconv.ParseFloat(string(b[:i]), 64)
	if err != nil { // out of float64's range
		return 0, 0, false
	}
	return v, i, true
}

func (s *jscan) literal(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return s.malformed("want a value")
	}
	s.i += len(word)
	return nil
}

// skip consumes one value of any kind.
func (s *jscan) skip(depth int) error {
	switch s.peek() {
	case '{':
		return s.object(depth, func(_ []byte, d int) error { return s.skip(d) })
	case '[':
		return s.array(depth, s.skip)
	case '"':
		_, err := s.str()
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	_, n, ok := parseNumber(s.b[s.i:])
	if !ok {
		return s.malformed("want a value")
	}
	s.i += n
	return nil
}
