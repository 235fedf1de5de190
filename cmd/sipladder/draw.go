package main

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// style is what a cell is coloured as on a terminal.
type style uint8

const (
	plain style = iota
	request
	success // 1xx, 2xx
	failure // 3xx-6xx
	retrans
	bold
)

var ansi = map[style]string{request: "\x1b[36m", success: "\x1b[32m", failure: "\x1b[31m", retrans: "\x1b[33m", bold: "\x1b[1m"}

// canvas is one line of cells.
type canvas struct {
	r []rune
	s []style
}

func newCanvas(w int) *canvas {
	c := &canvas{r: make([]rune, w), s: make([]style, w)}
	for i := range c.r {
		c.r[i] = ' '
	}
	return c
}

func (c *canvas) put(x int, r rune, s style) {
	if x >= 0 && x < len(c.r) {
		c.r[x], c.s[x] = r, s
	}
}

func (c *canvas) text(x int, t string, s style) {
	for _, r := range t {
		c.put(x, r, s)
		x++
	}
}

func (c *canvas) String(color bool) string {
	var b strings.Builder
	cur := plain
	for i, r := range c.r {
		if color && c.s[i] != cur {
			if cur != plain {
				b.WriteString("\x1b[0m")
			}
			if c.s[i] != plain {
				b.WriteString(ansi[c.s[i]])
			}
			cur = c.s[i]
		}
		b.WriteRune(r)
	}
	if color && cur != plain {
		b.WriteString("\x1b[0m")
	}
	return strings.TrimRight(b.String(), " ")
}

// fit shortens s to n runes, marking the cut with an ellipsis at the start
// (keepEnd: an address's port is what tells columns apart) or at the end.
func fit(s string, n int, keepEnd bool) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n == 1 {
		return "…"
	}
	if keepEnd {
		return "…" + string(r[len(r)-n+1:])
	}
	return string(r[:n-1]) + "…"
}

// minLane is the narrowest lane that still shows a method between two
// columns; below it the absolute times are left out to make room.
const minLane = 12

// draw renders the ladder in width columns: the header (trace, outcome,
// Call-IDs, legs), the columns (node and address), then one line per
// message: time since the first message, capture time (UTC), the
// transaction's tag, the arrow with the method or the code and reason,
// retransmissions dashed and marked "(rtx)".
func draw(l *ladder, width int, color bool) string {
	var out []string
	line := func(c *canvas) { out = append(out, c.String(color)) }
	head := func(key, val string) {
		c := newCanvas(width)
		c.text(0, fit(key, 10, false), bold)
		c.text(11, fit(val, width-11, false), plain)
		line(c)
	}
	t0 := l.msgs[0].at
	head("trace", l.traceID)
	head("outcome", l.outcome())
	head("started", t0.UTC().Format("2006-01-02 15:04:05.000 UTC"))
	for _, lg := range l.legs {
		key := "Call-ID"
		if lg.letter != "" {
			key = "leg " + lg.letter
		}
		head(key, lg.callID)
	}
	if l.from != "" || l.to != "" {
		head("from", l.from)
		head("to", l.to)
	}
	if len(l.others) > 0 {
		head("note", fmt.Sprintf("%d earlier traces of this Call-ID: %s", len(l.others), strings.Join(l.others, " ")))
	}
	// one host for every column: say it once, show the ports
	host, _ := hostPort(l.cols[0].addr)
	for _, c := range l.cols {
		if h, _ := hostPort(c.addr); h != host {
			host = ""
			break
		}
	}
	if host != "" {
		head("host", host+" (every column)")
	}
	out = append(out, "")

	// the gutter: relative time, absolute time, transaction tag
	rel := make([]string, len(l.msgs))
	relW, tagW := 0, 0
	for i, m := range l.msgs {
		rel[i] = fmt.Sprintf("+%.3f", m.at.Sub(t0).Truncate(time.Millisecond).Seconds()) // as the capture time shows it
		relW = max(relW, len(rel[i]))
		tagW = max(tagW, len(m.tx))
	}
	const absW = len("15:04:05.000")
	n := len(l.cols)
	withAbs := true
	gutter := relW + 1 + absW + 1 + tagW + 1
	if (width-gutter)/n < minLane {
		withAbs = false
		gutter = relW + 1 + tagW + 1
	}
	lane := max((width-gutter)/n, 3)
	center := func(i int) int { return gutter + i*lane + lane/2 }

	// column headers: the node (when known), the address
	names, addrs := newCanvas(width), newCanvas(width)
	for i, c := range l.cols {
		a := c.addr
		if host != "" {
			_, p := hostPort(a)
			a = ":" + p
		}
		for _, t := range []struct {
			cv   *canvas
			s    string
			keep bool
		}{{names, c.node, false}, {addrs, a, true}} {
			s := fit(t.s, lane-1, t.keep)
			t.cv.text(center(i)-utf8.RuneCountInString(s)/2, s, bold)
		}
	}
	if strings.TrimSpace(names.String(false)) != "" { // no node known: no line for it
		line(names)
	}
	line(addrs)

	for i, m := range l.msgs {
		c := newCanvas(width)
		x := 0
		c.text(x+relW-len(rel[i]), rel[i], plain)
		x += relW + 1
		if withAbs {
			c.text(x, absTime(m.at), plain)
			x += absW + 1
		}
		c.text(x, m.tx, plain)
		for j := range l.cols {
			c.put(center(j), '│', plain)
		}
		st := request
		switch {
		case m.retrans:
			st = retrans
		case m.code >= 300:
			st = failure
		case m.code > 0:
			st = success
		}
		arrow(c, center(m.src), center(m.dst), m, st)
		line(c)
	}
	return strings.Join(out, "\n") + "\n"
}

// arrow draws one message from column x a to column x b with its label.
func arrow(c *canvas, a, b int, m message, st style) {
	fill := '─'
	if m.retrans {
		fill = '╌'
	}
	if a == b { // a node that sent a message to itself
		c.text(a+1, "◀▶ "+m.label, st)
		return
	}
	lo, hi := min(a, b), max(a, b)
	for x := lo + 1; x < hi; x++ {
		c.put(x, fill, st)
	}
	if a < b {
		c.put(hi-1, '▶', st)
	} else {
		c.put(lo+1, '◀', st)
	}
	room := hi - lo - 5 // a fill and a space each side, the head
	// the longest that fits: the retransmission mark outlasts the reason
	// phrase
	main, _, _ := strings.Cut(m.label, " ")
	candidates := []string{m.label, main}
	if m.retrans {
		candidates = []string{m.label + " (rtx)", main + " (rtx)", main + " rtx", main + "*"}
	}
	label := candidates[len(candidates)-1]
	for _, c := range candidates {
		if utf8.RuneCountInString(c) <= room {
			label = c
			break
		}
	}
	label = " " + fit(label, room, false) + " "
	w := utf8.RuneCountInString(label)
	c.text(lo+1+(hi-lo-1-w)/2, label, st)
}

// absTime is the capture time as the gutter shows it.
func absTime(t time.Time) string { return t.UTC().Format("15:04:05.000") }
