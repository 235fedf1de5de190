package rtpengine

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Dict is a bencode dictionary, the shape of every NG message.
type Dict = map[string]any

// maxDepth bounds the nesting Decode accepts: NG messages nest three or
// four levels ("codec": {"strip": [...]}); the bound keeps a hostile reply
// from exhausting the stack.
const maxDepth = 32

// ErrSyntax wraps every decoding error.
var ErrSyntax = errors.New("bencode")

// Encode renders v as bencode. It takes string, []byte, int, int64,
// []string, []any and Dict (map[string]any), nested; dictionary keys are
// written sorted, as the format requires.
func Encode(v any) ([]byte, error) { return appendValue(nil, v) }

func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		b = strconv.AppendInt(b, int64(len(x)), 10)
		return append(append(b, ':'), x...), nil
	case []byte:
		b = strconv.AppendInt(b, int64(len(x)), 10)
		return append(append(b, ':'), x...), nil
	case int:
		return append(strconv.AppendInt(append(b, 'i'), int64(x), 10), 'e'), nil
	case int64:
		return append(strconv.AppendInt(append(b, 'i'), x, 10), 'e'), nil
	case []string:
		b = append(b, 'l')
		for _, s := range x {
			b, _ = appendValue(b, s)
		}
		return append(b, 'e'), nil
	case []any:
		b = append(b, 'l')
		for _, e := range x {
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, 'e'), nil
	case Dict:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, 'd')
		for _, k := range keys {
			b, _ = appendValue(b, k)
			var err error
			if b, err = appendValue(b, x[k]); err != nil {
				return nil, fmt.Errorf("%w: key %q: %w", ErrSyntax, k, err)
			}
		}
		return append(b, 'e'), nil
	default:
		return nil, fmt.Errorf("%w: cannot encode %T", ErrSyntax, v)
	}
}

// Decode parses one bencode value that spans all of b: byte strings come
// back as string, integers as int64, lists as []any, dictionaries as
// Dict. Malformed input (a bad length or integer, a non-string or
// repeated key, nesting deeper than maxDepth, bytes left over) is an
// error wrapping ErrSyntax.
func Decode(b []byte) (any, error) {
	d := decoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.i != len(b) {
		return nil, d.fail("%d bytes after the value", len(b)-d.i)
	}
	return v, nil
}

type decoder struct {
	b []byte
	i int
}

func (d *decoder) fail(format string, a ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrSyntax, d.i, fmt.Sprintf(format, a...))
}

func (d *decoder) value(depth int) (any, error) {
	if d.i >= len(d.b) {
		return nil, d.fail("unexpected end")
	}
	switch c := d.b[d.i]; {
	case c == 'i':
		d.i++
		return d.integer('e')
	case c == 'l':
		if depth >= maxDepth {
			return nil, d.fail("nested deeper than %d", maxDepth)
		}
		d.i++
		list := []any{}
		for {
			if d.i >= len(d.b) {
				return nil, d.fail("unterminated list")
			}
			if d.b[d.i] == 'e' {
				d.i++
				return list, nil
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
	case c == 'd':
		if depth >= maxDepth {
			return nil, d.fail("nested deeper than %d", maxDepth)
		}
		d.i++
		dict := Dict{}
		for {
			if d.i >= len(d.b) {
				return nil, d.fail("unterminated dictionary")
			}
			if d.b[d.i] == 'e' {
				d.i++
				return dict, nil
			}
			if c := d.b[d.i]; c < '0' || c > '9' {
				return nil, d.fail("dictionary key is not a string")
			}
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			if _, dup := dict[k]; dup {
				return nil, d.fail("key %q repeated", k)
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			dict[k] = v
		}
	case c >= '0' && c <= '9':
		return d.str()
	default:
		return nil, d.fail("unexpected byte %q", c)
	}
}

// integer reads digits up to end; bencode forbids leading zeros and -0.
func (d *decoder) integer(end byte) (int64, error) {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] != end {
		d.i++
	}
	if d.i >= len(d.b) {
		return 0, d.fail("unterminated integer")
	}
	digits := string(d.b[start:d.i])
	d.i++
	n, err := strconv.ParseInt(digits, 10, 64)
	unsigned := digits
	if len(unsigned) > 0 && unsigned[0] == '-' {
		unsigned = unsigned[1:]
	}
	if err != nil || unsigned == "" || unsigned[0] == '+' || (len(unsigned) > 1 && unsigned[0] == '0') || digits == "-0" {
		return 0, d.fail("bad integer %q", digits)
	}
	return n, nil
}

func (d *decoder) str() (string, error) {
	n, err := d.integer(':')
	if err != nil {
		return "", err
	}
	if n < 0 || n > int64(len(d.b)-d.i) {
		return "", d.fail("string of %d bytes, %d left", n, len(d.b)-d.i)
	}
	s := string(d.b[d.i : d.i+int(n)])
	d.i += int(n)
	return s, nil
}
