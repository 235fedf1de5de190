//go:build integration

package dashboards

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
)

// mediaStream is one label set of sipkpi's media series and what ends on it
// each minute.
type mediaStream struct {
	node, codec, direction string
	classes                map[string]int // streams per minute by media_quality_class
	mos                    map[string]int // MOS observations per minute by bucket upper bound
}

var (
	mosBounds    = []string{"1", "1.5", "2", "2.5", "3", "3.1", "3.6", "4", "4.3", "4.5", "+Inf"}
	jitterBounds = []string{"0.005", "0.01", "0.02", "0.04", "0.08", "+Inf"}
	lossBounds   = []string{"0.001", "0.01", "0.03", "0.05", "0.1", "+Inf"}
	rttBounds    = []string{"0.05", "0.1", "0.2", "0.4", "+Inf"}
)

// The known mix, a minute:
//
//	sbc-1 G711 caller_to_callee: 5 good, 2 fair, 1 poor, 2 bad, 2 unknown;
//	      MOS 2 in (2.5,3], 1 in (3.1,3.6], 2 in (3.6,4], 5 in (4.3,4.5]
//	sbc-1 G729 callee_to_caller: 10 good, MOS in (4.3,4.5]
//	sbc-2 G711 caller_to_callee: 10 good, MOS in (4.3,4.5]
//
// Rated (not unknown): 30 a minute, 3 poor or bad. The 30 MOS: 2 in
// (2.5,3], 1 in (3.1,3.6], 2 in (3.6,4], 25 in (4.3,4.5]:
//
//	p5  = rank 1.5 of the 2 in (2.5,3] = 2.5 + 0.5 * 1.5/2 = 2.875
//	p50 = rank 15, 5 below (4.3,4.5], 25 in it = 4.3 + 0.2 * 10/25 = 4.38
//
// Every rated stream's jitter is in (0.01,0.02], loss in (0.001,0.01] and
// RTT in (0.05,0.1]: p95 = lower + width * 0.95.
var mediaMix = []mediaStream{
	{"sbc-1", "G711", "caller_to_callee", map[string]int{"good": 5, "fair": 2, "poor": 1, "bad": 2, "unknown": 2},
		map[string]int{"3": 2, "3.6": 1, "4": 2, "4.5": 5}},
	{"sbc-1", "G729", "callee_to_caller", map[string]int{"good": 10}, map[string]int{"4.5": 10}},
	{"sbc-2", "G711", "caller_to_callee", map[string]int{"good": 10}, map[string]int{"4.5": 10}},
}

// mediaWant is what one query of the media row gives over mediaMix with the
// variables set: a value (one series) or a number of series.
type mediaWant struct {
	node, codec string // the $node and $codec regexes
	value       *float64
	series      int
}

func val(v float64) mediaWant { return mediaWant{node: ".*", codec: ".*", value: &v} }
func series(n int) mediaWant  { return mediaWant{node: ".*", codec: ".*", series: n} }

// mediaWants, by panel title, one per query of the panel.
var mediaWants = map[string][]mediaWant{
	"Poor streams":     {val(0.1)}, // 3/30, the 2 unknown in no share
	"MOS p5":           {val(2.875)},
	"MOS p50":          {val(4.38)},
	"Jitter p95":       {val(0.0195)},
	"Packet loss p95":  {val(0.00955)},
	"Rated streams/s":  {val(0.5)},
	"MOS distribution": {series(len(mosBounds))},
	// good, fair, poor, bad, unknown
	"Streams by quality class": {series(5)},
	// sbc-2 has no poor series: 0, not nothing
	"Poor streams by node":               {series(2)},
	"MOS by node (p5, p50)":              {series(2), series(2)},
	"MOS p5 by codec and direction":      {series(2)},
	"Jitter by node (p50, p95)":          {series(2), series(2)},
	"Packet loss by node (p50, p95)":     {series(2), series(2)},
	"Round-trip time by node (p50, p95)": {series(2), series(2)},
	"Jitter p95 by codec":                {series(2)},
	"Packet loss p95 by codec":           {series(2)},
	"Round-trip time p95 by codec":       {series(2)},
}

// mediaFiltered: the node and codec variables select. sbc-1's G711 streams
// alone are 3 poor or bad of 10; sbc-2 alone has none; G729 alone 10 a
// minute.
var mediaFiltered = map[string][]mediaWant{
	"Poor streams":    {{node: "sbc-1", codec: "G711", value: f(0.3)}, {node: "sbc-2", codec: ".*", value: f(0)}},
	"Rated streams/s": {{node: ".*", codec: "G729", value: f(10.0 / 60)}},
}

// TestMediaRowQueries evaluates every query of the call-quality dashboard's
// media row with promtool (Prometheus's own engine) over a known mix of
// sipkpi media series: the stats give the hand-computed values, every other
// query its series.
func TestMediaRowQueries(t *testing.T) {
	var in strings.Builder
	line := func(name, labels string, perMin int) {
		fmt.Fprintf(&in, "      - series: '%s{%s}'\n        values: '0+%dx20'\n", name, labels, perMin)
	}
	hist := func(name, labels string, bounds []string, perBucket map[string]int) {
		cum := 0
		for _, b := range bounds {
			cum += perBucket[b]
			line(name+"_bucket", labels+`,le="`+b+`"`, cum)
		}
	}
	for _, s := range mediaMix {
		labels := fmt.Sprintf(`node=%q,media_codec=%q,media_direction=%q`, s.node, s.codec, s.direction)
		rated := 0
		for class, n := range s.classes {
			line("sip_media_streams_total", labels+`,media_quality_class="`+class+`"`, n)
			if class != "unknown" {
				rated += n
			}
		}
		hist("sip_media_mos", labels, mosBounds, s.mos)
		hist("sip_media_jitter_seconds", labels, jitterBounds, map[string]int{"0.02": rated})
		hist("sip_media_packet_loss_ratio", labels, lossBounds, map[string]int{"0.01": rated})
		hist("sip_media_rtt_seconds", labels, rttBounds, map[string]int{"0.1": rated})
	}

	var exprs strings.Builder
	check := func(expr string, w mediaWant) {
		expr = strings.NewReplacer("$node", w.node, "$codec", w.codec).Replace(expr)
		if w.value != nil {
			fmt.Fprintf(&exprs, "      - expr: %s\n        eval_time: 20m\n        exp_samples: [{labels: '{}', value: %s}]\n",
				strconv.Quote("round("+expr+", 0.000001)"), strconv.FormatFloat(*w.value, 'f', 6, 64))
			return
		}
		fmt.Fprintf(&exprs, "      - expr: %s\n        eval_time: 20m\n        exp_samples: [{labels: '{}', value: %d}]\n",
			strconv.Quote("count("+expr+")"), w.series)
	}
	panels := mediaRow().Panels
	require.Len(t, panels, len(mediaWants), "every panel of the media row has its expectation")
	for _, p := range panels {
		wants, ok := mediaWants[p.Title]
		require.True(t, ok, "no expectation for %q", p.Title)
		require.Len(t, wants, len(p.Queries), p.Title)
		for i, q := range p.Queries {
			check(q.Expr, wants[i])
			for _, w := range mediaFiltered[p.Title] {
				check(q.Expr, w)
			}
		}
	}

	dir := t.TempDir()
	rules := filepath.Join(dir, "none.rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte("groups: []\n"), 0o644))
	test := filepath.Join(dir, "media-row.test.yml")
	require.NoError(t, os.WriteFile(test, []byte(`rule_files: [none.rules.yml]
evaluation_interval: 1m
tests:
  - name: the media row over a known mix
    interval: 1m
    input_series:
`+in.String()+`    promql_expr_test:
`+exprs.String()), 0o644))
	out, err := testenv.Run(t, childproc.Spec{Path: "promtool", Args: []string{"test", "rules", test}})
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, out, "FAILED")
	assert.Contains(t, out, "SUCCESS")
}
