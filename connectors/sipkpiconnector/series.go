package sipkpiconnector

import (
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/siphon-otel/siphon-otel/internal/calltrace"
)

// Labels the connector sets itself; dimensions may not reuse them.
const (
	labelResult        = "sip.call.result"
	labelStatusCode    = "sip.response.status_code"
	labelInitiator     = "sip.call.disconnect_initiator"
	labelMethod        = "sip.request.method"
	labelMessageType   = "sip.message.type"
	labelScannerReason = "sip.scanner.reason"
	labelRegEvent      = "sip.registration.event"
	labelOverflow      = "otel.metric.overflow"
	// attrExemplarCallID names the Call-ID on exemplars. Not "sip.call_id":
	// the remote-write exporter passes exemplar attribute names through
	// untranslated, and a dotted name is not a legal Prometheus label.
	attrExemplarCallID  = "sip_call_id"
	valueNone           = "none"
	maxLabelValueLength = 128
)

var fixedLabels = []string{labelResult, labelStatusCode, labelInitiator, labelMethod, labelMessageType,
	labelScannerReason, labelRegEvent, labelOverflow, labelMediaCodec, labelMediaDirection, labelMediaClass}

// metricDef describes one output metric.
type metricDef struct {
	name, description, unit string
	labels                  []string // the connector's own labels, in this order
	bounds                  []float64
	isHistogram             bool
}

// dimSet is one resolved set of dimension values. overflow replaces the
// values once max_dimension_sets is reached.
type dimSet struct {
	key      string
	values   []string
	present  []bool
	overflow bool
	// scannerSeries is set once the scanner series of this set exist
	scannerSeries bool
}

// exemplar is one recent measurement and its call. It keeps its own
// copies of the call's strings, in buffers the slot reuses: a record's
// strings are slices of its whole message, which a kept one would keep
// alive as long as the point lives (a KiB or more per slot).
type exemplar struct {
	at                       time.Time
	value                    float64
	set                      bool
	cseq                     uint32
	callID, corr, cseqMethod []byte
}

// store records a measurement: no allocation once the slot's buffers have
// grown to the call's strings.
func (e *exemplar) store(at time.Time, v float64, ref callRef) {
	e.at, e.value, e.set, e.cseq = at, v, true, ref.cseq
	e.callID = reuse(e.callID, ref.callID)
	e.corr = reuse(e.corr, ref.corr)
	e.cseqMethod = reuse(e.cseqMethod, ref.cseqMethod)
}

// maxReused is the largest buffer a slot keeps for the next measurement:
// one long Call-ID (a message may be 64 KiB) must not stay in every slot
// it passed through.
const maxReused = 256

func reuse(buf []byte, s string) []byte {
	if cap(buf) > maxReused && len(s) <= maxReused {
		buf = nil
	}
	return append(buf[:0], s...)
}

// callRef names the call (or out-of-dialog transaction) of a record, for
// its exemplar: the Call-ID, and what the trace and root span ids derive
// from (calltrace.IDs), computed only for the exemplars that leave (most
// are replaced by a later record first).
type callRef struct {
	callID, corr string // corr: sip.correlation_id, "" when none
	cseq         uint32
	cseqMethod   string // "" for a CDR
}

// point is one series: a counter or a histogram.
type point struct {
	dims   *dimSet
	labels []string
	start  time.Time

	count     uint64 // counter value, or histogram count
	sum       float64
	min, max  float64
	buckets   []uint64
	exemplars []exemplar // counters: one; histograms: one per bucket
}

// series holds every point of one metric.
type series struct {
	def    *metricDef
	points map[string]*point
}

// store keeps the cumulative state of every metric and enforces the cap on
// dimension sets.
type store struct {
	dims      []Dimension
	maxSets   int
	sets      map[string]*dimSet
	overflow  *dimSet
	metrics   []*series
	exemplars bool
	// now is the processing time of the record being counted: a new
	// series starts then (record times can be old).
	now time.Time
	// scratch of the keys of resolve and point
	keyBuf, pointBuf []byte
}

func newStore(cfg *Config, defs []*metricDef) *store {
	s := &store{dims: cfg.Dimensions, maxSets: cfg.MaxDimensionSets, sets: map[string]*dimSet{},
		overflow: &dimSet{key: "\x01overflow", overflow: true}, exemplars: cfg.Exemplars.Enabled}
	for _, d := range defs {
		s.metrics = append(s.metrics, &series{def: d, points: map[string]*point{}})
	}
	return s
}

// resolve finds the dimension values of a record. It reports overflow when
// the set is new and the cap is reached. A known set costs no allocation:
// the key is built in a reused buffer, the values kept only for a new one.
func (s *store) resolve(res, attrs pcommon.Map) (set *dimSet, overflowed bool) {
	b := s.keyBuf[:0]
	for i := range s.dims {
		if v, ok := s.dimValue(i, res, attrs); ok {
			b = append(append(b, '='), v...)
		} else {
			b = append(b, '!')
		}
		b = append(b, 0)
	}
	s.keyBuf = b
	if set, ok := s.sets[string(b)]; ok {
		return set, false
	}
	if len(s.sets) >= s.maxSets {
		return s.overflow, true
	}
	set = &dimSet{key: string(b), values: make([]string, len(s.dims)), present: make([]bool, len(s.dims))}
	for i := range s.dims {
		v, ok := s.dimValue(i, res, attrs)
		set.values[i], set.present[i] = strings.Clone(v), ok
	}
	s.sets[set.key] = set
	return set, false
}

// dimValue is dimension i's value for a record: its first attribute the
// record or its resource has, else the default.
func (s *store) dimValue(i int, res, attrs pcommon.Map) (string, bool) {
	d := &s.dims[i]
	names := d.Attributes
	if len(names) == 0 {
		names = []string{d.Name}
	}
	for _, n := range names {
		v, ok := attrs.Get(n)
		if !ok {
			v, ok = res.Get(n)
		}
		if ok {
			if v.Type() == pcommon.ValueTypeStr { // no copy: only a new set keeps it (cloned)
				return truncate(v.Str()), true
			}
			return truncate(v.AsString()), true
		}
	}
	if d.Default != nil {
		return *d.Default, true
	}
	return "", false
}

func truncate(v string) string {
	if len(v) > maxLabelValueLength {
		return v[:maxLabelValueLength]
	}
	return v
}

func (s *store) point(m int, set *dimSet, labels []string) *point {
	sr := s.metrics[m]
	// the key in a reused buffer: only a new point allocates
	b := append(append(s.pointBuf[:0], set.key...), 2)
	for i, l := range labels {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, l...)
	}
	s.pointBuf = b
	p, ok := sr.points[string(b)]
	if !ok {
		// the labels' own copies: a record's value (a REGISTER CDR's
		// event) is a slice of its whole message
		p = &point{dims: set, labels: make([]string, len(labels)), start: s.now}
		for i, l := range labels {
			p.labels[i] = strings.Clone(l)
		}
		if sr.def.isHistogram {
			p.buckets = make([]uint64, len(sr.def.bounds)+1)
			p.exemplars = make([]exemplar, len(sr.def.bounds)+1)
		} else {
			p.exemplars = make([]exemplar, 1)
		}
		sr.points[string(b)] = p
	}
	return p
}

// add increments counter m.
func (s *store) add(m int, set *dimSet, labels []string, n uint64, at time.Time, ref callRef) {
	p := s.point(m, set, labels)
	p.count += n
	if s.exemplars && ref.callID != "" {
		p.exemplars[0].store(at, float64(n), ref)
	}
}

// observe records v (seconds) in histogram m.
func (s *store) observe(m int, set *dimSet, labels []string, v float64, at time.Time, ref callRef) {
	p := s.point(m, set, labels)
	bounds := s.metrics[m].def.bounds
	i := sort.SearchFloat64s(bounds, v) // first bound >= v: buckets are (lower, upper]
	p.buckets[i]++
	if p.count == 0 || v < p.min {
		p.min = v
	}
	if p.count == 0 || v > p.max {
		p.max = v
	}
	p.count++
	p.sum += v
	if s.exemplars && ref.callID != "" {
		p.exemplars[i].store(at, v, ref)
	}
}

// emit appends every metric with at least one point to sm, as cumulative
// data stamped now.
func (s *store) emit(sm pmetric.ScopeMetrics, now time.Time) {
	ts := pcommon.NewTimestampFromTime(now)
	for _, sr := range s.metrics {
		if len(sr.points) == 0 {
			continue
		}
		m := sm.Metrics().AppendEmpty()
		m.SetName(sr.def.name)
		m.SetDescription(sr.def.description)
		m.SetUnit(sr.def.unit)
		keys := make([]string, 0, len(sr.points))
		for k := range sr.points {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if sr.def.isHistogram {
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			for _, k := range keys {
				p := sr.points[k]
				dp := h.DataPoints().AppendEmpty()
				s.fillAttrs(dp.Attributes(), sr.def, p)
				dp.SetStartTimestamp(pcommon.NewTimestampFromTime(p.start))
				dp.SetTimestamp(ts)
				dp.SetCount(p.count)
				dp.SetSum(p.sum)
				dp.SetMin(p.min)
				dp.SetMax(p.max)
				dp.ExplicitBounds().FromRaw(sr.def.bounds)
				dp.BucketCounts().FromRaw(p.buckets)
				appendExemplars(dp.Exemplars(), p.exemplars)
			}
			continue
		}
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for _, k := range keys {
			p := sr.points[k]
			dp := sum.DataPoints().AppendEmpty()
			s.fillAttrs(dp.Attributes(), sr.def, p)
			dp.SetStartTimestamp(pcommon.NewTimestampFromTime(p.start))
			dp.SetTimestamp(ts)
			dp.SetIntValue(int64(p.count))
			appendExemplars(dp.Exemplars(), p.exemplars)
		}
	}
}

func (s *store) fillAttrs(m pcommon.Map, def *metricDef, p *point) {
	if p.dims.overflow {
		m.PutBool(labelOverflow, true)
	} else {
		for i, d := range s.dims {
			if p.dims.present[i] {
				m.PutStr(d.Name, p.dims.values[i])
			}
		}
	}
	for i, l := range def.labels {
		m.PutStr(l, p.labels[i])
	}
}

// appendExemplars emits each exemplar once and forgets it, as the OTel SDK
// does: a backend that stores exemplars (Prometheus) refuses a repeated one
// as out of order. An exemplar carries its call's trace and root span ids
// (the sipcall connector's trace; served as OpenMetrics exemplars on the
// scrape path) and its Call-ID (kept by remote write, for Homer).
func appendExemplars(dst pmetric.ExemplarSlice, ex []exemplar) {
	for i := range ex {
		e := &ex[i]
		if !e.set {
			continue
		}
		x := dst.AppendEmpty()
		x.SetTimestamp(pcommon.NewTimestampFromTime(e.at))
		x.SetDoubleValue(e.value)
		callID := string(e.callID)
		trace, span := calltrace.IDs(string(e.corr), callID, e.cseq, string(e.cseqMethod))
		x.SetTraceID(trace)
		x.SetSpanID(span)
		x.FilteredAttributes().PutStr(attrExemplarCallID, callID)
		e.set = false
	}
}
