package demo

// Media in the demo: when Debian's rtpengine-daemon is installed, sipproxy
// anchors every call's media on it, the call generator's phones send real
// RTP and RTCP (a share of the calls through an impaired network), and
// rtpengine sends the RTCP it relays to the collector's hep port, whose
// hep.rtcp records (in sip.jsonl) carry each report's MOS. Without the
// daemon the demo runs as it did, without media, and says so once.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/siphon-otel/siphon-otel/demo/callgen"
	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/rtpua"
	"github.com/siphon-otel/siphon-otel/proxy/rtpengine"
)

// NoRTPEngine as Options.RTPEngine runs the demo without media.
const NoRTPEngine = "off"

// DemoImpairment is the network of the impaired share of the calls (those
// the callee hangs up, a third of the answered ones in the default mix):
// 5 % random loss and up to 40 ms of jitter both ways, which the E-model
// rates about 3.9 against G.711's 4.4.
var DemoImpairment = rtpua.Impairment{LossRatio: 0.05, JitterSpread: 40 * time.Millisecond}

// rtpengineHomerID is the HEP capture id of the demo's rtpengine.
const rtpengineHomerID = 2002

// findRTPEngine returns the rtpengine binary to run, or why there is none.
func findRTPEngine(opt string) (path, why string) {
	switch opt {
	case NoRTPEngine:
		return "", "switched off"
	case "":
		opt = rtpengine.DaemonBinary
	}
	p, err := exec.LookPath(opt)
	if err != nil {
		return "", fmt.Sprintf("%s not found (apt-get install rtpengine-daemon)", opt)
	}
	return p, ""
}

// startRTPEngine runs rtpengine with its RTCP going to the collector's
// hep port, when there is one; without it, it says once that the calls
// carry no media.
func (d *Demo) startRTPEngine(ctx context.Context) error {
	path, why := findRTPEngine(d.opts.RTPEngine)
	if path == "" {
		d.noMedia = why
		d.opts.Logger.Warn("demo: no media quality figures: they need rtpengine-daemon in the media path; " + why)
		return nil
	}
	p := d.opts.Ports
	args := rtpengine.Daemon{Interface: "127.0.0.1", NG: loop(p.RTPEngineNG), CLI: loop(p.RTPEngineCLI),
		PortMin: p.MediaMin, PortMax: p.MediaMax, Homer: loop(p.HEP), HomerID: rtpengineHomerID}.Args()
	var err error
	d.rtpengine, err = start(ctx, childproc.Spec{Name: "rtpengine", Path: path, Args: args,
		Log: filepath.Join(d.opts.StateDir, "rtpengine.log")}, func() error {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		return rtpengine.Ping(pctx, loop(p.RTPEngineNG))
	})
	if err != nil {
		return err
	}
	d.media = &mediaTail{path: filepath.Join(d.opts.StateDir, "collector", "sip.jsonl")}
	return nil
}

// proxyMediaConfig is sipproxy's rtpengine block: anchor every call.
func (d *Demo) proxyMediaConfig() string {
	if d.rtpengine == nil {
		return ""
	}
	return fmt.Sprintf("rtpengine: {instances: [%q], enabled: true, ping_interval: 1s, timeout: 1s}\n", loop(d.opts.Ports.RTPEngineNG))
}

// callMedia is the call generator's media: none without rtpengine.
func (d *Demo) callMedia() *callgen.Media {
	if d.rtpengine == nil {
		return nil
	}
	return &callgen.Media{Codecs: []rtpua.Codec{rtpua.PCMU}, RTCPInterval: time.Second,
		Impair: map[callgen.Outcome]rtpua.Impairment{callgen.AnsweredCallee: DemoImpairment}}
}

// mediaWhere is the banner's line on media quality.
func (d *Demo) mediaWhere() [2]string {
	if d.rtpengine == nil {
		return [2]string{"media quality (MOS)", "none: " + d.noMedia}
	}
	return [2]string{"media quality (MOS): hep.rtcp records", d.media.path + " (rtpengine " + loop(d.opts.Ports.RTPEngineNG) + ")"}
}

// MediaStatus is what the RTCP reports said so far: rtpengine's hep.rtcp
// records that carry a MOS, as the collector wrote them.
type MediaStatus struct {
	On      bool // rtpengine is in the media path
	Reports int64
	// MOS over the reports (NaN before the first)
	MOSMean, MOSMin, MOSMax float64
	// Classes counts the reports by media.quality.class (good, fair, poor,
	// bad: mediaq.ClassOf's bounds).
	Classes map[string]int64
	// Unreadable counts the lines of hep.rtcp records that did not parse.
	Unreadable int64
}

func (m MediaStatus) String() string {
	if !m.On {
		return "no media"
	}
	if m.Reports == 0 {
		return "MOS: no report yet"
	}
	return fmt.Sprintf("MOS %.2f (%.2f-%.2f) over %d RTCP reports: good %d, fair %d, poor %d, bad %d",
		m.MOSMean, m.MOSMin, m.MOSMax, m.Reports, m.Classes[mediaq.ClassGood.String()], m.Classes[mediaq.ClassFair.String()],
		m.Classes[mediaq.ClassPoor.String()], m.Classes[mediaq.ClassBad.String()])
}

// suffix is the status line's media part: none without media (the
// banner said why, once).
func (m MediaStatus) suffix() string {
	if !m.On {
		return ""
	}
	return " | " + m.String()
}

// mediaStatus reads the records written since the last reading.
func (d *Demo) mediaStatus() MediaStatus {
	if d.media == nil {
		return MediaStatus{}
	}
	return d.media.read()
}

// mediaTail follows the collector's records file and keeps running
// figures of its hep.rtcp records, reading each byte once: the file grows
// with every SIP message, so the status must not read it whole each time.
type mediaTail struct {
	path string

	mu      sync.Mutex
	file    os.FileInfo // the file read so far
	off     int64
	reports int64
	sum     float64
	min     float64
	max     float64
	classes map[string]int64
	bad     int64
}

// maxTailRead bounds one reading; the rest waits for the next.
const maxTailRead = 8 << 20

var rtcpEvent = []byte(`"event":"hep.rtcp"`)

func (m *mediaTail) read() MediaStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.classes == nil {
		m.classes = map[string]int64{}
		m.min, m.max = math.Inf(1), math.Inf(-1)
	}
	m.readNew()
	s := MediaStatus{On: true, Reports: m.reports, MOSMean: math.NaN(), MOSMin: math.NaN(), MOSMax: math.NaN(),
		Classes: make(map[string]int64, len(m.classes)), Unreadable: m.bad}
	for k, v := range m.classes {
		s.Classes[k] = v
	}
	if m.reports > 0 {
		s.MOSMean, s.MOSMin, s.MOSMax = m.sum/float64(m.reports), m.min, m.max
	}
	return s
}

// readNew reads the complete lines added since the last call, m.mu held.
// Another file at the path (rotated), or one shorter than what was read
// (truncated), is read from its start.
func (m *mediaTail) readNew() {
	f, err := os.Open(m.path)
	if err != nil {
		return // not written yet
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return
	}
	if m.file != nil && !os.SameFile(m.file, st) || st.Size() < m.off {
		m.off = 0
	}
	m.file = st
	buf, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, m.off, maxTailRead), maxTailRead))
	if err != nil {
		return
	}
	end := bytes.LastIndexByte(buf, '\n')
	if end < 0 {
		if len(buf) == maxTailRead { // one line longer than a reading: not a record of ours
			m.off += int64(len(buf))
		}
		return
	}
	m.off += int64(end + 1)
	for line := range bytes.Lines(buf[:end+1]) {
		if bytes.Contains(line, rtcpEvent) {
			m.take(line)
		}
	}
}

// take counts one hep.rtcp line.
func (m *mediaTail) take(line []byte) {
	var rec struct {
		Attributes map[string]any `json:"attributes"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		m.bad++
		return
	}
	mos, ok := rec.Attributes[record.AttrMediaMOS].(float64)
	if !ok {
		return // a report without the figures for one (an SR without blocks)
	}
	m.reports++
	m.sum += mos
	m.min, m.max = min(m.min, mos), max(m.max, mos)
	if c, ok := rec.Attributes[record.AttrMediaQualityClass].(string); ok {
		m.classes[c]++
	}
}
