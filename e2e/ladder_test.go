//go:build integration

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
	"github.com/siphon-otel/siphon-otel/internal/testenv/ports"
	"github.com/siphon-otel/siphon-otel/internal/testenv/sipp"
)

// spanFileToo makes the shipped config write the call traces to its span
// file as well as to the OTLP exporter the Jaeger overlay selects.
const spanFileToo = `service:
  pipelines:
    traces:
      exporters: [file/traces, otlp_grpc/traces]
`

// TestSipLadder: a sipp call through sipproxy into otelcol-siphon, drawn
// by sipladder in a real terminal (tmux, 100x40) from Jaeger and from the
// span file, by Call-ID and by trace id. Between the caller's column and
// the proxy's, and between the proxy's and the callee's, the screen shows
// exactly the messages each sipp logged, in its order, each one's
// retransmissions marked: the callee answers the BYE after 1.2 s, so the
// caller and the proxy retransmit it.
func TestSipLadder(t *testing.T) {
	overlay := filepath.Join(t.TempDir(), "span-file-too.yaml")
	require.NoError(t, os.WriteFile(overlay, []byte(spanFileToo), 0o600))
	r := startTraceRig(t, true, overlay)
	target := addr(r.sipPort)
	uasPort, uacPort := ports.Port(t), ports.Port(t)
	uas := sipp.Start(t, filepath.Join(testenv.RepoRoot(), "e2e", "testdata", "sipp", "uas-slow-bye.xml"), "u1", uasPort, "-m", "1")
	sipp.Start(t, "register", "u1", ports.Port(t), "-m", "1", "-key", "user", "dave", "-key", "contact_port",
		strconv.Itoa(uasPort), "-key", "expires", "300", target).Wait()
	uac := sipp.Start(t, "uac-call", "u1", uacPort, "-m", "1", "-s", "dave", "-d", "500", target)
	uac.Wait()
	uas.Wait()
	callID := uac.CallID()
	tr := r.traceOf(callID)
	t.Logf("the span tree as Jaeger returned it:\n%s", tr.Tree())
	// the capturing node: sipproxy's HEP capture id, its spans' resource
	node := fmt.Sprint(tr.Find("INVITE")[0].Resource["service.instance.id"])
	require.NotEqual(t, "<nil>", node)

	// the span file holds the call once its root was written
	spanFile := filepath.Join(r.state, "traces.jsonl")
	root := calltrace.RootSpanID(callID).String()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		b, err := os.ReadFile(spanFile)
		if assert.NoError(c, err) {
			assert.Contains(c, string(b), root, "the root span in %s", spanFile)
		}
	}, 30*time.Second, 200*time.Millisecond)

	// what each sipp logged, as arrows between two columns
	caller, proxy, callee := ":"+strconv.Itoa(uacPort), ":"+strconv.Itoa(r.sipPort), ":"+strconv.Itoa(uasPort)
	want := map[[2]string][]string{
		{caller, proxy}: sippArrows(uac.Messages(), true),
		{proxy, callee}: sippArrows(uas.Messages(), false),
	}
	for hop, arrows := range want {
		require.NotEmpty(t, arrows, "sipp logged the call on %v", hop)
	}
	assert.Contains(t, want[[2]string{caller, proxy}], "BYE rtx >", "the caller retransmitted its BYE")
	assert.Contains(t, want[[2]string{proxy, callee}], "BYE rtx >", "the proxy retransmitted its BYE")

	ladder := testenv.GoBuild(t, "./cmd/sipladder")
	for _, tt := range []struct{ name, args string }{
		{"Jaeger by Call-ID", "--jaeger " + r.jaeger.QueryURL + " " + shellQuote(callID)},
		{"Jaeger by trace id", "--jaeger " + r.jaeger.QueryURL + " " + tr.ID},
		{"span file by Call-ID", "--file " + shellQuote(spanFile) + " " + shellQuote(callID)},
		{"span file by trace id", "--file " + shellQuote(spanFile) + " " + tr.ID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			screen := inTerminal(t, shellQuote(ladder)+" "+tt.args)
			t.Logf("the screen:\n%s", screen)
			l := readScreen(t, screen)
			assert.Contains(t, screen, "Call-ID    "+callID)
			assert.Contains(t, screen, "trace      "+tr.ID)
			assert.Contains(t, screen, "outcome    answered (200 OK)")
			assert.Equal(t, node, l.names[proxy], "the proxy's column is named by its node")
			for hop, arrows := range want {
				assert.Equal(t, arrows, l.arrows[hop], "the arrows between %s and %s", hop[0], hop[1])
			}
			assert.Len(t, l.arrows, 2, "arrows between these columns only: %v", l.arrows)
		})
	}
}

// sippArrows turns what a sipp logged into arrows between its column and
// the proxy's, as "METHOD-or-code [rtx ]>" (left to right) or "<": a
// message sipp sent or received again (the same first line and CSeq, the
// same way) is a retransmission. selfLeft: sipp's column is the left one.
func sippArrows(msgs []sipp.Msg, selfLeft bool) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range msgs {
		key := fmt.Sprint(m.Sent, m.First, m.CSeq)
		dir := "<"
		if m.Sent == selfLeft {
			dir = ">"
		}
		out = append(out, arrowText(m.First, seen[key], dir))
		seen[key] = true
	}
	return out
}

func arrowText(first string, rtx bool, dir string) string {
	if rtx {
		return first + " rtx " + dir
	}
	return first + " " + dir
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// inTerminal runs command in a new tmux server's 100x40 pane and returns
// the screen once the command has exited (it prints its exit status and
// waits for input, so that the pane stays).
func inTerminal(t *testing.T, command string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-S", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := tmux("new-session", "-d", "-x", "100", "-y", "40", command+"; echo sipladder exited $?; read line")
	require.NoError(t, err, "tmux: %s", out)
	t.Cleanup(func() { _, _ = tmux("kill-server") })
	var screen string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var err error
		screen, err = tmux("capture-pane", "-p")
		if assert.NoError(c, err, "capture-pane: %s", screen) {
			assert.Contains(c, screen, "sipladder exited")
		}
	}, 60*time.Second, 100*time.Millisecond)
	require.Contains(t, screen, "sipladder exited 0", "sipladder's exit status")
	return screen
}

// screenLadder is what a screen shows: each column's node name by its
// port, and the arrows between each pair of columns (the left one first),
// in order, as sippArrows writes them.
type screenLadder struct {
	names  map[string]string
	arrows map[[2]string][]string
}

// readScreen reads the ladder back: the line of ports (all columns on one
// host, so ":port") gives each column's centre, the line above it the
// nodes; an arrow line runs from one centre to another, its head at one
// end, its label in the middle.
func readScreen(t *testing.T, screen string) screenLadder {
	t.Helper()
	l := screenLadder{names: map[string]string{}, arrows: map[[2]string][]string{}}
	lines := strings.Split(screen, "\n")
	centre := map[int]string{} // rune index -> port
	hdr := -1
	for i, line := range lines {
		rs := []rune(line)
		if !strings.HasPrefix(strings.TrimSpace(line), ":") || strings.ContainsAny(line, "│") {
			continue
		}
		for x := 0; x < len(rs); x++ {
			if rs[x] != ':' {
				continue
			}
			end := x + 1
			for end < len(rs) && rs[end] != ' ' {
				end++
			}
			port := string(rs[x:end])
			c := x + (end-x)/2
			centre[c] = port
			if i > 0 { // the node's name, centred on the column a line up
				l.names[port] = tokenAt([]rune(lines[i-1]), c)
			}
			x = end
		}
		hdr = i
		break
	}
	require.NotEqual(t, -1, hdr, "a line of column ports on the screen")
	for _, line := range lines[hdr+1:] {
		rs := []rune(line)
		lo, hi := -1, -1
		for x, r := range rs {
			if strings.ContainsRune("─╌◀▶", r) {
				if lo < 0 {
					lo = x
				}
				hi = x
			}
		}
		if lo < 0 {
			continue
		}
		a, okA := centre[lo-1]
		b, okB := centre[hi+1]
		if !assert.True(t, okA && okB, "arrow %q runs between two columns", line) {
			continue
		}
		label := strings.TrimSpace(strings.Trim(string(rs[lo:hi+1]), "─╌◀▶ "))
		first, _, _ := strings.Cut(label, " ")
		dir := ">"
		if rs[lo] == '◀' {
			dir = "<"
		}
		l.arrows[[2]string{a, b}] = append(l.arrows[[2]string{a, b}], arrowText(first, strings.Contains(label, "rtx"), dir))
	}
	return l
}

// tokenAt is the run of non-blanks of line that covers x.
func tokenAt(line []rune, x int) string {
	if x >= len(line) || line[x] == ' ' {
		return ""
	}
	a, b := x, x
	for a > 0 && line[a-1] != ' ' {
		a--
	}
	for b < len(line) && line[b] != ' ' {
		b++
	}
	return string(line[a:b])
}
