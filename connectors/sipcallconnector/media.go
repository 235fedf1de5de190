package sipcallconnector

import (
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/siphon-otel/siphon-otel/internal/callmedia"
	"github.com/siphon-otel/siphon-otel/internal/calltrace"
	"github.com/siphon-otel/siphon-otel/internal/lru"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/record"
)

// MediaConfig puts a call's media quality on its root span: each report
// (hep.rtcp, RFC 6035 PUBLISH, X-RTP-Stat) as a span event, each stream's
// figures at its end (internal/callmedia, the figures sipkpi's sip.media.*
// metrics observe) as attributes. It is sipkpi's media block; a root with
// open streams waits for them at most Linger after its call's end plus
// the connector's linger.
type MediaConfig = callmedia.Settings

func defaultMediaConfig() MediaConfig { return callmedia.DefaultSettings() }

// Bounds of a call's media on its root span.
const (
	// maxMediaEvents is the report events a root keeps (an RTCP report
	// every 5 s each way for some 5 minutes); more are counted in its
	// dropped events.
	maxMediaEvents = 128
	// maxMediaStreams is the ended streams whose figures a call keeps (two
	// directions, their SSRC changes, phones' own reports); more are only
	// counted in media.streams.
	maxMediaStreams = 16
)

// mediaReport is one report, a span event of the root.
type mediaReport struct {
	at                     int64
	source                 mediaq.Source
	ssrc                   uint32
	hasSSRC                bool
	dir                    callmedia.Direction
	loss, jitter, rtt, mos float64
	has                    mediaq.Figure
	estimated              bool
}

// streamFigures is one stream's figures at its end.
type streamFigures struct {
	dir                    callmedia.Direction
	codec                  string
	loss, jitter, rtt, mos float64
	has                    mediaq.Figure
	estimated              bool
	class                  mediaq.Class
}

// callMedia is a call's media: nil for a call of which no report came.
type callMedia struct {
	reports []mediaReport
	dropped uint32
	streams []streamFigures
	ended   int // streams ended, also beyond maxMediaStreams
	open    int // streams opened and not yet ended
}

// mediaNames are the root's attribute names of each direction, made once.
type mediaNames struct {
	mos, estimated, jitter, loss, rtt, codec, class string
}

var mediaAttrs = func() []mediaNames {
	out := make([]mediaNames, len(callmedia.Directions()))
	for i, d := range callmedia.Directions() {
		out[i] = mediaNames{
			mos:       record.AttrMediaOf(d, record.AttrMediaMOS),
			estimated: record.AttrMediaOf(d, record.AttrMediaEstimated),
			jitter:    record.AttrMediaOf(d, record.AttrMediaJitter),
			loss:      record.AttrMediaOf(d, record.AttrMediaPacketLossRatio),
			rtt:       record.AttrMediaOf(d, record.AttrMediaRTT),
			codec:     record.AttrMediaOf(d, record.AttrMediaCodec),
			class:     record.AttrMediaOf(d, record.AttrMediaQualityClass),
		}
	}
	return out
}()

func (t *tracer) newMedia() {
	t.media = callmedia.New(t.cfg.Media.Aggregator(), t.streamEnded)
	t.media.OnReport = t.mediaReport
	t.media.Evicted = func(table, reason string) {
		switch {
		case reason != lru.ReasonCapacity: // expired: their normal end
		case table == "calls":
			t.evicted(evMediaCalls)
		default:
			t.evicted(evMediaStreams)
		}
	}
	t.media.Entries = func(table string, d int64) {
		if table == "calls" {
			t.entries(tableMediaCalls, d)
		} else {
			t.entries(tableMediaStreams, d)
		}
	}
}

func noTag() bool { return false }

// mediaRecord gives a record to the media aggregator; it returns the
// record's outcome when it is no SIP message or CDR (which message and cdr
// count).
func (t *tracer) mediaRecord(lr plog.LogRecord, now time.Time) outcome {
	if t.media == nil {
		return outIgnored
	}
	t.clock = now
	switch t.media.Consume(lr, time.Unix(0, captureTime(lr, now)), now, noTag) {
	case callmedia.OutcomeAccepted, callmedia.OutcomeUnknownCall:
		return outMediaReport
	case callmedia.OutcomeNone:
		return outIgnored
	}
	return outMediaUnusable
}

// callOf is the call in flight a report or stream of callID belongs to.
func (t *tracer) callOf(corr, callID string) (*call, bool) {
	// Peek: media is no activity of the call's SIP, its linger runs on
	c, ok := t.calls.Peek(calltrace.Key(corr, callID))
	if !ok || c.ood || c.messages == 0 {
		return nil, false
	}
	return c, true
}

// mediaReport puts one report on its call's root: a span event.
func (t *tracer) mediaReport(r *callmedia.Report[bool]) {
	c, ok := t.callOf(r.CorrelationID, r.CallID)
	if !ok {
		if t.isEnded(calltrace.Key(r.CorrelationID, r.CallID), false, t.clock) {
			t.mediaReports(mediaLate)
		} else {
			t.mediaReports(mediaNoCall)
		}
		return
	}
	if c.media == nil {
		c.media = &callMedia{}
	}
	m := c.media
	if r.NewStream {
		*r.Tag = true // its end is awaited
		m.open++
	}
	if len(m.reports) >= maxMediaEvents {
		m.dropped++
		t.mediaReports(mediaDropped)
		return
	}
	m.reports = append(m.reports, mediaReport{at: r.At.UnixNano(), source: r.Source, ssrc: r.SSRC, hasSSRC: r.HasSSRC,
		dir: r.Direction, loss: r.LossRatio, jitter: r.Jitter, rtt: r.RTT, mos: r.MOS, has: r.Has,
		estimated: r.MOSEstimated})
	t.mediaReports(mediaAttached)
}

// streamEnded puts a stream's figures on its call's root.
func (t *tracer) streamEnded(s *callmedia.Stream[bool]) {
	c, ok := t.callOf(s.CorrelationID, s.CallID)
	if !ok || c.media == nil {
		if s.Tag { // it opened on a call in flight, which has left
			t.mediaStreams(mediaLate)
		} else {
			t.mediaStreams(mediaNoCall)
		}
		return
	}
	m := c.media
	if s.Tag && m.open > 0 {
		m.open--
	}
	m.ended++
	if len(m.streams) >= maxMediaStreams {
		t.mediaStreams(mediaDropped)
		return
	}
	m.streams = append(m.streams, streamFigures{dir: s.Direction, codec: strings.Clone(s.Codec), loss: s.LossRatio,
		jitter: s.Jitter, rtt: s.RTT, mos: s.MOS, has: s.Has, estimated: s.MOSEstimated, class: s.Class})
	t.mediaStreams(mediaAttached)
}

// awaitsMedia tells whether an ended call's root waits for its streams'
// ends: it has open streams, and not for longer than media linger (plus
// linger, the BYE's transaction) after its end.
func (t *tracer) awaitsMedia(c *call, now time.Time) bool {
	return c.media != nil && c.media.open > 0 && now.Sub(c.endedAt) < t.cfg.Media.Linger+t.cfg.Linger
}

// putMedia writes a call's media on its root span: per direction, the
// figures of its worst stream (the lowest MOS: a call sounded as bad as
// its worst stream), media.streams, and each report as an event.
func putMedia(sp ptrace.Span, m *callMedia) {
	if m == nil {
		return
	}
	a := sp.Attributes()
	if m.ended > 0 {
		a.PutInt(record.AttrMediaStreams, int64(m.ended))
	}
	var worst [3]*streamFigures
	for i := range m.streams {
		s := &m.streams[i]
		w := worst[s.dir]
		if w == nil || s.has&mediaq.FigMOS != 0 && (w.has&mediaq.FigMOS == 0 || s.mos < w.mos) {
			worst[s.dir] = s
		}
	}
	for d, s := range worst {
		if s == nil {
			continue
		}
		n := &mediaAttrs[d]
		a.PutStr(n.codec, s.codec)
		if s.has&mediaq.FigMOS != 0 {
			a.PutDouble(n.mos, s.mos)
			a.PutBool(n.estimated, s.estimated)
			a.PutStr(n.class, s.class.String())
		}
		if s.has&mediaq.FigJitter != 0 {
			a.PutDouble(n.jitter, s.jitter)
		}
		if s.has&mediaq.FigLossRatio != 0 {
			a.PutDouble(n.loss, s.loss)
		}
		if s.has&mediaq.FigRTT != 0 {
			a.PutDouble(n.rtt, s.rtt)
		}
	}
	evs := sp.Events()
	evs.EnsureCapacity(evs.Len() + len(m.reports))
	for i := range m.reports {
		r := &m.reports[i]
		ev := evs.AppendEmpty()
		ev.SetName(record.EventMediaReport)
		ev.SetTimestamp(pcommon.Timestamp(r.at))
		ea := ev.Attributes()
		ea.PutStr(record.AttrMediaSource, r.source.String())
		if r.hasSSRC {
			ea.PutInt(record.AttrMediaSSRC, int64(r.ssrc))
		}
		ea.PutStr(record.AttrMediaDirection, r.dir.String())
		if r.has&mediaq.FigLossRatio != 0 {
			ea.PutDouble(record.AttrMediaPacketLossRatio, r.loss)
		}
		if r.has&mediaq.FigJitter != 0 {
			ea.PutDouble(record.AttrMediaJitter, r.jitter)
		}
		if r.has&mediaq.FigRTT != 0 {
			ea.PutDouble(record.AttrMediaRTT, r.rtt)
		}
		if r.has&mediaq.FigMOS != 0 {
			ea.PutDouble(record.AttrMediaMOS, r.mos)
			ea.PutBool(record.AttrMediaEstimated, r.estimated)
		}
	}
	sp.SetDroppedEventsCount(sp.DroppedEventsCount() + m.dropped)
}
