package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rtcpLine is a hep.rtcp record as recordjson writes it.
func rtcpLine(mos, class string) string {
	return `{"timestamp":"2026-11-30T10:00:00.000Z","event":"hep.rtcp","attributes":{"hep.correlation_id":"c1","media.mos":` + mos +
		`,"media.quality.class":"` + class + `"},"body":"{}"}` + "\n"
}

const sipLine = `{"timestamp":"2026-11-30T10:00:00.000Z","event":"sip.message","call_id":"c1","message":"INVITE sip:a@b SIP/2.0"}` + "\n"

// The status follows the records file as the collector writes it: each
// step appends (or rotates) and the figures are those of every complete
// hep.rtcp line so far, a line still being written counted once it ends.
func TestMediaTail(t *testing.T) {
	type step struct {
		write   string
		rotate  bool // the file is renamed away and a new one written
		trunc   bool // the file is truncated and written anew
		reports int64
		mean    float64
		min     float64
		max     float64
		classes map[string]int64
		bad     int64
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"appends", []step{
			{write: sipLine + rtcpLine("4.4", "good") + sipLine, reports: 1, mean: 4.4, min: 4.4, max: 4.4, classes: map[string]int64{"good": 1}},
			{write: rtcpLine("3.8", "fair"), reports: 2, mean: 4.1, min: 3.8, max: 4.4, classes: map[string]int64{"good": 1, "fair": 1}},
			{write: sipLine, reports: 2, mean: 4.1, min: 3.8, max: 4.4, classes: map[string]int64{"good": 1, "fair": 1}},
		}},
		{"a line being written", func() []step {
			l := rtcpLine("4.0", "poor")
			return []step{
				{write: rtcpLine("4.4", "good") + l[:20], reports: 1, mean: 4.4, min: 4.4, max: 4.4, classes: map[string]int64{"good": 1}},
				{write: l[20:], reports: 2, mean: 4.2, min: 4.0, max: 4.4, classes: map[string]int64{"good": 1, "poor": 1}},
			}
		}()},
		{"no MOS, unreadable", []step{
			{write: `{"event":"hep.rtcp","attributes":{"media.ssrc":1}}` + "\n" + `{"event":"hep.rtcp",` + "\n" + rtcpLine("4.4", "good"),
				reports: 1, mean: 4.4, min: 4.4, max: 4.4, classes: map[string]int64{"good": 1}, bad: 1},
		}},
		{"rotated", []step{
			{write: rtcpLine("4.4", "good") + sipLine + sipLine, reports: 1, mean: 4.4, min: 4.4, max: 4.4, classes: map[string]int64{"good": 1}},
			// longer than what was read of the old one
			{write: rtcpLine("3.0", "bad") + sipLine + sipLine + sipLine, rotate: true, reports: 2, mean: 3.7, min: 3.0, max: 4.4,
				classes: map[string]int64{"good": 1, "bad": 1}},
		}},
		{"truncated", []step{
			{write: rtcpLine("4.4", "good") + sipLine + sipLine, reports: 1, mean: 4.4, min: 4.4, max: 4.4, classes: map[string]int64{"good": 1}},
			{write: rtcpLine("3.0", "bad"), trunc: true, reports: 2, mean: 3.7, min: 3.0, max: 4.4, classes: map[string]int64{"good": 1, "bad": 1}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sip.jsonl")
			m := &mediaTail{path: path}
			s := m.read()
			assert.True(t, s.On)
			assert.Zero(t, s.Reports, "no file yet")
			assert.Equal(t, "MOS: no report yet", s.String())
			for i, st := range tc.steps {
				flag := os.O_APPEND | os.O_CREATE | os.O_WRONLY
				switch {
				case st.rotate:
					require.NoError(t, os.Rename(path, path+".1"))
				case st.trunc:
					flag = os.O_TRUNC | os.O_CREATE | os.O_WRONLY
				}
				f, err := os.OpenFile(path, flag, 0o644)
				require.NoError(t, err)
				_, err = f.WriteString(st.write)
				require.NoError(t, err)
				require.NoError(t, f.Close())
				s := m.read()
				assert.Equal(t, st.reports, s.Reports, "step %d", i)
				assert.InDelta(t, st.mean, s.MOSMean, 1e-9, "step %d", i)
				assert.InDelta(t, st.min, s.MOSMin, 1e-9, "step %d", i)
				assert.InDelta(t, st.max, s.MOSMax, 1e-9, "step %d", i)
				assert.Equal(t, st.classes, s.Classes, "step %d", i)
				assert.Equal(t, st.bad, s.Unreadable, "step %d", i)
			}
		})
	}
}

// A line longer than one reading is passed over without holding up the
// lines after it.
func TestMediaTailLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sip.jsonl")
	long := `{"event":"sip.message","message":"` + strings.Repeat("x", maxTailRead) + `"}` + "\n"
	require.NoError(t, os.WriteFile(path, []byte(long+rtcpLine("4.4", "good")), 0o644))
	m := &mediaTail{path: path}
	var s MediaStatus
	for range 3 { // a reading at a time
		s = m.read()
	}
	assert.Equal(t, int64(1), s.Reports)
	assert.Equal(t, "MOS 4.40 (4.40-4.40) over 1 RTCP reports: good 1, fair 0, poor 0, bad 0", s.String())
}

func TestMediaStatusOff(t *testing.T) {
	var d Demo
	assert.Equal(t, "no media", d.mediaStatus().String())
}
