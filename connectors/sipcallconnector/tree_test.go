package sipcallconnector

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// tree renders spans as the trees their parent ids make, one per trace,
// children by start time: name, kind, node, start (after the trace's
// first), duration, status and events. A span whose parent is not among
// them is a root here.
func tree(spans []span) string {
	byTrace := map[pcommon.TraceID][]span{}
	var traces []pcommon.TraceID
	for _, s := range spans {
		if _, ok := byTrace[s.trace]; !ok {
			traces = append(traces, s.trace)
		}
		byTrace[s.trace] = append(byTrace[s.trace], s)
	}
	var b strings.Builder
	for _, id := range traces {
		ss := byTrace[id]
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].start.Before(ss[j].start) })
		first := ss[0].start
		ids := map[pcommon.SpanID]bool{}
		for _, s := range ss {
			ids[s.id] = true
		}
		fmt.Fprintf(&b, "trace %s\n", id)
		var walk func(parent pcommon.SpanID, depth int)
		walk = func(parent pcommon.SpanID, depth int) {
			for _, s := range ss {
				isRoot := !ids[s.parent] && depth == 0 && parent.IsEmpty()
				if s.parent != parent && !isRoot {
					continue
				}
				if isRoot && s.parent != parent && !s.parent.IsEmpty() {
					fmt.Fprintf(&b, "%s(parent %s not here)\n", strings.Repeat("  ", depth), s.parent)
				}
				fmt.Fprintf(&b, "%s%s %s", strings.Repeat("  ", depth), s.name, kindName(s.kind))
				if s.node != "" {
					fmt.Fprintf(&b, " @%s", s.node)
				}
				fmt.Fprintf(&b, " +%s %s", s.start.Sub(first), s.duration())
				if s.status == ptrace.StatusCodeError {
					fmt.Fprintf(&b, " ERROR %q", s.statusMessage)
				}
				if src, ok := s.attrs["source.address"]; ok && s.name != nameCDR {
					fmt.Fprintf(&b, " %v->%v", src, s.attrs["destination.address"])
				}
				if evs := eventNames(s); len(evs) > 0 {
					fmt.Fprintf(&b, " [%s]", strings.Join(evs, " "))
				}
				b.WriteString("\n")
				if s.id != parent {
					walk(s.id, depth+1)
				}
			}
		}
		walk(pcommon.SpanID{}, 0)
	}
	return b.String()
}

func kindName(k ptrace.SpanKind) string {
	return strings.ToUpper(strings.TrimPrefix(k.String(), "Span_Kind_"))
}

// at is base+seconds, to the microsecond.
func at(base time.Time, s float64) time.Time {
	return base.Add(time.Duration(s*1e6+0.5) * time.Microsecond)
}
