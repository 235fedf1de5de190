package sipkpiconnector

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/callmedia"
	"github.com/siphon-otel/siphon-otel/internal/mediaq"
	"github.com/siphon-otel/siphon-otel/internal/record"
)

// MediaConfig configures the media-quality metrics (sip.media.*): per
// stream at its end, from hep.rtcp records and the reports and SDP of SIP
// messages (internal/callmedia). sipcall's media block is the same.
type MediaConfig = callmedia.Settings

func defaultMediaConfig() MediaConfig { return callmedia.DefaultSettings() }

// The media metrics, after the others in store.metrics.
const (
	mMediaMOS = mScannerRequests + 1 + iota
	mMediaJitter
	mMediaLoss
	mMediaRTT
	mMediaStreams
)

// Labels of the media metrics.
const (
	labelMediaCodec     = "media.codec"
	labelMediaDirection = "media.direction"
	labelMediaClass     = "media.quality.class"
)

// The media histograms' bounds. MOS: the classes of mediaq.ClassOf and
// half-point steps below; the others span from unnoticeable to unusable.
var (
	mosBounds    = []float64{1, 1.5, 2, 2.5, 3, 3.1, 3.6, 4.0, 4.3, 4.5}
	jitterBounds = []float64{0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5}
	lossBounds   = []float64{0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5}
	rttBounds    = []float64{0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 1, 2}
)

func mediaMetricDefs() []*metricDef {
	streamLabels := []string{labelMediaCodec, labelMediaDirection}
	return []*metricDef{
		{name: "sip.media.mos", unit: "1", isHistogram: true, bounds: mosBounds, labels: streamLabels,
			description: "MOS of each media stream at its end: the reports' own, else the ITU-T G.107 E-model of its loss, jitter and round-trip time with the codec of the call's SDP."},
		{name: "sip.media.jitter", unit: "s", isHistogram: true, bounds: jitterBounds, labels: streamLabels,
			description: "Mean interarrival jitter (RFC 3550) of each media stream at its end."},
		{name: "sip.media.packet_loss.ratio", unit: "1", isHistogram: true, bounds: lossBounds, labels: streamLabels,
			description: "Packet loss ratio (0..1) of each media stream at its end: cumulative where a report gives it, else the mean of the RTCP interval fractions."},
		{name: "sip.media.rtt", unit: "s", isHistogram: true, bounds: rttBounds, labels: streamLabels,
			description: "Mean round-trip time of each media stream at its end."},
		{name: "sip.media.streams", unit: "{stream}", labels: []string{labelMediaCodec, labelMediaDirection, labelMediaClass},
			description: "Media streams ended, by quality class of their MOS (good, fair, poor, bad; unknown without a MOS)."},
	}
}

// media is sipkpi's side of the callmedia aggregator.
type media struct {
	agg *callmedia.Aggregator[*dimSet]
	// the record whose report may open a stream, for tag: set around
	// each Consume so that the tag function is made once
	res, attrs pcommon.Map
	tag        func() *dimSet
	// outcomes of the reports of the records consumed, counted once a
	// batch (reportMedia): a telemetry Add a record would cost more than
	// the record
	outcomes [callmedia.NumOutcomes]int64
}

func newMedia(k *kpi) *media {
	cfg := k.cfg.Media
	if !cfg.Enabled {
		return nil
	}
	m := &media{}
	m.agg = callmedia.New(cfg.Aggregator(), k.streamEnded)
	m.agg.Evicted = func(table, reason string) {
		if table == "calls" {
			k.evicted("media_calls", reason)
		} else {
			k.evicted("media_streams", reason)
		}
	}
	m.agg.Entries = func(table string, d int64) {
		if table == "calls" {
			k.entries("media_calls", d)
		} else {
			k.entries("media_streams", d)
		}
	}
	m.tag = func() *dimSet { return k.dims(m.res, m.attrs) }
	return m
}

const eventRTCP = record.EventHEPPrefix + "rtcp"

// mediaRecord gives a record to the media aggregator; a report's outcome
// is counted.
func (k *kpi) mediaRecord(res pcommon.Map, lr plog.LogRecord, at, now time.Time) {
	m := k.media
	if m == nil {
		return
	}
	k.clock, k.st.now = now, now
	m.res, m.attrs = res, lr.Attributes()
	m.outcomes[m.agg.Consume(lr, at, now, m.tag)]++
	m.res, m.attrs = pcommon.Map{}, pcommon.Map{}
}

// reportMedia counts the outcomes of the reports consumed since the last
// call.
func (k *kpi) reportMedia() {
	if k.media == nil {
		return
	}
	for o, n := range k.media.outcomes {
		if o != int(callmedia.OutcomeNone) && n > 0 {
			k.mediaReport(callmedia.Outcome(o).String(), n)
		}
	}
	k.media.outcomes = [callmedia.NumOutcomes]int64{}
}

// streamEnded observes one stream's figures; its exemplars open the call's
// trace (the root span of its correlation key).
func (k *kpi) streamEnded(s *callmedia.Stream[*dimSet]) {
	at := s.Last
	if at.IsZero() {
		at = k.clock
	}
	ref := callRef{callID: s.CallID, corr: s.CorrelationID}
	labels := []string{s.Codec, s.Direction.String()}
	for _, o := range [...]struct {
		m   int
		fig mediaq.Figure
		v   float64
	}{{mMediaMOS, mediaq.FigMOS, s.MOS}, {mMediaJitter, mediaq.FigJitter, s.Jitter},
		{mMediaLoss, mediaq.FigLossRatio, s.LossRatio}, {mMediaRTT, mediaq.FigRTT, s.RTT}} {
		if s.Has&o.fig != 0 {
			k.st.observe(o.m, s.Tag, labels, o.v, at, ref)
		}
	}
	k.st.add(mMediaStreams, s.Tag, append(labels, s.Class.String()), 1, at, ref)
}

// expireMedia ends the streams past their time.
func (k *kpi) expireMedia(now time.Time) {
	if k.media != nil {
		k.clock, k.st.now = now, now
		k.media.agg.Expire(now)
	}
}

// endMedia ends every stream (at shutdown, before the last flush).
func (k *kpi) endMedia(now time.Time) {
	if k.media != nil {
		k.clock, k.st.now = now, now
		k.media.agg.EndAll()
	}
}
