package mediaq

import (
	"encoding/binary"
	"math"
)

// The fields of an RTCP-XR VoIP metrics report block (RFC 3611 4.7).
type xrField uint8

const (
	xrType xrField = iota
	xrSSRC
	xrLoss           // 1/256
	xrDiscard        // 1/256
	xrBurstDensity   // 1/256
	xrGapDensity     // 1/256
	xrBurstDuration  // ms
	xrGapDuration    // ms
	xrRoundTrip      // ms, 0: not measured
	xrEndSystemDelay // ms, 0: not measured
	xrSignal         // dBm0, signed, 127: unavailable
	xrNoise          // dBm0, signed, 127: unavailable
	xrRERL           // dB, 127: unavailable
	xrGmin
	xrRFactor   // 0..120, 127: unavailable
	xrExtR      // 0..120, 127: unavailable
	xrMOSLQ     // MOS x10, 127: unavailable
	xrMOSCQ     // MOS x10, 127: unavailable
	xrRXConfig  // PLC(2) JBA(2) JB rate(4)
	xrPLC       // captagent's RX_conf split out
	xrJBNominal // ms
	xrJBMaximum // ms
	xrJBAbsMax  // ms
	xrFields
)

var xrNames = [xrFields]string{"type", "ssrc", "loss_rate", "discard_rate", "burst_density", "gap_density",
	"burst_duration", "gap_duration", "round_trip_delay", "end_system_delay", "signal_level", "noise_level",
	"rerl", "gmin", "r_factor", "ext_r_factor", "mos_lq", "mos_cq", "rx_config", "plc",
	"jb_nominal", "jb_maximum", "jb_abs_max"}

// xrMin and xrMax bound each field as its wire width does; signed levels
// may come as their unsigned byte (captagent prints %u).
var xrMin, xrMax = func() (lo, hi [xrFields]float64) {
	for f := range xrFields {
		hi[f] = math.MaxUint8
	}
	hi[xrSSRC] = math.MaxUint32
	for _, f := range []xrField{xrBurstDuration, xrGapDuration, xrJBMaximum, xrJBAbsMax} {
		hi[f] = math.MaxUint16
	}
	// the delays the figures use: a minute is already absurd
	for _, f := range []xrField{xrRoundTrip, xrEndSystemDelay, xrJBNominal} {
		hi[f] = MaxDelay * 1000
	}
	lo[xrSignal], lo[xrNoise] = math.MinInt8, math.MinInt8
	hi[xrPLC] = 3
	return lo, hi
}()

// xrJSONKeys maps the keys of heplify's "report_blocks_xr" and of
// captagent's decoder's "extended_report_information" to the fields.
var xrJSONKeys = map[string]xrField{
	"type": xrType,
	// heplify (protos/rtcp.go RTCP_report_block_xr)
	"id": xrSSRC, "fraction_lost": xrLoss, "fraction_discard": xrDiscard, "burst_density": xrBurstDensity,
	"gap_density": xrGapDensity, "burst_duration": xrBurstDuration, "gap_duration": xrGapDuration,
	"round_trip_delay": xrRoundTrip, "end_system_delay": xrEndSystemDelay,
	// captagent's decoder (EXTENDED_REPORT_JSON)
	"identifier": xrSSRC, "loss_rate": xrLoss, "discard_rate": xrDiscard, "burst_rate": xrBurstDensity,
	"gap_rate": xrGapDensity, "end_sys_delay": xrEndSystemDelay, "signal_lev": xrSignal, "noise_lev": xrNoise,
	"RERL": xrRERL, "Gmin": xrGmin, "R_fact": xrRFactor, "ext_R_fact": xrExtR, "MOS_LQ": xrMOSLQ, "MOS_CQ": xrMOSCQ,
	"JB_nom": xrJBNominal, "JB_max": xrJBMaximum, "JB_abs_max": xrJBAbsMax,
}

// xrVoIPMetrics is the block type of the VoIP metrics block.
const xrVoIPMetrics = 7

// XRVoIPMetricsSize is the size of a VoIP metrics block, header included.
const XRVoIPMetricsSize = 36

type xrRaw struct {
	v         [xrFields]float64
	has       uint32 // 1 << xrField
	blockType float64
}

func (x *xrRaw) set(f xrField, v float64) {
	x.v[f] = v
	x.has |= 1 << f
	if f == xrType {
		x.blockType = v
	}
}

func (x *xrRaw) get(f xrField) (float64, bool) { return x.v[f], x.has&(1<<f) != 0 }

func (x *xrRaw) readJSON(s *jscan, depth int) error {
	return s.object(depth, func(key []byte, depth int) error {
		if string(key) == "RX_conf" { // [{"PLC":..,"JB_adapt":..,"JB_rate":..}]
			return s.array(depth, func(depth int) error {
				return s.object(depth, func(key []byte, depth int) error {
					if string(key) != "PLC" {
						return s.skip(depth)
					}
					v, ok, err := s.number()
					if ok {
						x.set(xrPLC, v)
					}
					return err
				})
			})
		}
		f, known := xrJSONKeys[string(key)]
		if !known {
			return s.skip(depth)
		}
		v, ok, err := s.number()
		if ok {
			x.set(f, v)
		}
		return err
	})
}

// ParseXRVoIPMetrics parses a binary RTCP-XR VoIP metrics report block
// (RFC 3611 4.7: block type 7, length 8, 36 bytes with its header) into a
// Stream of the reporter's reception. Its MOS is the block's MOS-CQ, else
// its R-factor's, else the E-model's from its loss and delays. codec is
// the stream's when known (zero: DefaultCodec).
func ParseXRVoIPMetrics(block []byte, codec Codec) (Stream, error) {
	if len(block) < XRVoIPMetricsSize {
		return Stream{}, errorf(SourceRTCPXR, ReasonMalformed, "", "%d bytes (a VoIP metrics block has %d)", len(block), XRVoIPMetricsSize)
	}
	if block[0] != xrVoIPMetrics {
		return Stream{}, errorf(SourceRTCPXR, ReasonMalformed, "block_type", "%d, not 7 (VoIP metrics)", block[0])
	}
	if n := binary.BigEndian.Uint16(block[2:]); n != 8 {
		return Stream{}, errorf(SourceRTCPXR, ReasonMalformed, "block_length", "%d, not 8", n)
	}
	var x xrRaw
	x.set(xrType, xrVoIPMetrics)
	x.set(xrSSRC, float64(binary.BigEndian.Uint32(block[4:])))
	for i, f := range [...]xrField{xrLoss, xrDiscard, xrBurstDensity, xrGapDensity} {
		x.set(f, float64(block[8+i]))
	}
	for i, f := range [...]xrField{xrBurstDuration, xrGapDuration, xrRoundTrip, xrEndSystemDelay} {
		x.set(f, float64(binary.BigEndian.Uint16(block[12+2*i:])))
	}
	x.set(xrSignal, float64(int8(block[20])))
	x.set(xrNoise, float64(int8(block[21])))
	for i, f := range [...]xrField{xrRERL, xrGmin, xrRFactor, xrExtR, xrMOSLQ, xrMOSCQ, xrRXConfig} {
		x.set(f, float64(block[22+i]))
	}
	for i, f := range [...]xrField{xrJBNominal, xrJBMaximum, xrJBAbsMax} {
		x.set(f, float64(binary.BigEndian.Uint16(block[30+2*i:])))
	}
	st, err := x.stream(SourceRTCPXR)
	if err != nil {
		return st, err
	}
	opt := Options{Codec: codec}
	st.Codec, st.CodecAssumed = opt.codec()
	st.Estimate()
	return st, nil
}

// stream checks the fields and converts them to SI units. 0 counts as
// "not measured" for the delays and, besides the RFC's 127, for R and
// MOS too: JSON senders fill the fields they lack with 0, and an R or
// MOS of 0 is no score.
func (x *xrRaw) stream(src Source) (Stream, error) {
	st := Stream{Direction: DirReceived}
	for f := range xrFields {
		v, ok := x.get(f)
		if !ok {
			continue
		}
		if v < xrMin[f] || v > xrMax[f] || v != math.Trunc(v) {
			return st, errorf(src, ReasonOutOfRange, xrNames[f], "%g (%g..%g)", v, xrMin[f], xrMax[f])
		}
	}
	if v, ok := x.get(xrSSRC); ok {
		st.SSRC = uint32(v)
		st.give(FigSSRC)
	}
	if v, ok := x.get(xrLoss); ok {
		st.LossRatio = v / 256
		st.give(FigLossRatio)
	}
	if v, ok := x.get(xrDiscard); ok {
		st.DiscardRatio = v / 256
		st.give(FigDiscardRatio)
	}
	rtd, _ := x.get(xrRoundTrip)
	if rtd > 0 {
		st.RTT = rtd / 1000
		st.give(FigRTT)
	}
	if esd, _ := x.get(xrEndSystemDelay); esd > 0 {
		st.setEndSystemDelay(rtd/1000, esd/1000)
	}
	if v, _ := x.get(xrJBNominal); v > 0 {
		st.JitterBuffer = v / 1000
		st.give(FigJitterBuffer)
	}
	if v, ok := x.get(xrRXConfig); ok {
		st.PLC = PLC(uint8(v) >> 6)
	}
	if v, ok := x.get(xrPLC); ok {
		st.PLC = PLC(v)
	}
	score := func(f xrField, lo, hi, scale float64, dst *float64, fig Figure) error {
		v, ok := x.get(f)
		if !ok || v == 127 || v == 0 {
			return nil
		}
		if v < lo || v > hi {
			return errorf(src, ReasonOutOfRange, xrNames[f], "%g (%g..%g, 127: unavailable)", v, lo, hi)
		}
		*dst = v / scale
		st.give(fig)
		return nil
	}
	if err := score(xrRFactor, 0, 120, 1, &st.RFactor, FigRFactor); err != nil {
		return st, err
	}
	if err := score(xrMOSLQ, 10, 50, 10, &st.MOSLQ, FigMOSLQ); err != nil {
		return st, err
	}
	if err := score(xrMOSCQ, 10, 50, 10, &st.MOS, FigMOS); err != nil {
		return st, err
	}
	return st, nil
}
