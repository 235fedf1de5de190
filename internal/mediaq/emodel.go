package mediaq

import (
	"math"
	"strings"
)

// The ITU-T G.107 (06/2015) E-model with its default parameters (Table 3):
// SLR 8, RLR 2, STMR 15, LSTR 18, Ds 3, Dr 3, TELR 65, WEPL 110, qdu 1,
// Nc -70, Nfor -64, Ps 35, Pr 35, A 0. Only the delay (T = Ta, Tr = 2Ta:
// one echo path per direction), the codec (Ie, Bpl) and the loss (Ppl,
// BurstR) vary per stream; the rest is computed once. With every default
// (no delay, no loss) it gives R = 93.2 (Ro 94.77, Is 1.41, Id 0.15).
const (
	g107SLR  = 8.0
	g107RLR  = 2.0
	g107STMR = 15.0
	g107LSTR = 18.0
	g107Ds   = 3.0
	g107TELR = 65.0
	g107WEPL = 110.0
	g107qdu  = 1.0
	g107Nc   = -70.0
	g107Nfor = -64.0
	g107Ps   = 35.0
	g107Pr   = 35.0
	g107A    = 0.0
	g107mT   = 100.0 // ms: Idd is 0 up to mT (sT = 1)
)

// The delay-independent terms: Ro (basic signal-to-noise), Is
// (simultaneous impairments), No (total noise) at the defaults.
var g107Ro, g107Is, g107No = func() (ro, is, no float64) {
	olr := g107SLR + g107RLR
	nfo := g107Nfor + g107RLR
	pre := g107Pr + 10*math.Log10(1+math.Pow(10, (10-g107LSTR)/10))
	nor := g107RLR - 121 + pre + 0.008*(pre-35)*(pre-35)
	nos := g107Ps - g107SLR - g107Ds - 100 + 0.004*(g107Ps-olr-g107Ds-14)*(g107Ps-olr-g107Ds-14)
	no = 10 * math.Log10(math.Pow(10, g107Nc/10)+math.Pow(10, nos/10)+math.Pow(10, nor/10)+math.Pow(10, nfo/10))
	ro = 15 - 1.5*(g107SLR+no)

	xolr := olr + 0.2*(64+no-g107RLR)
	iolr := 20 * (math.Pow(1+math.Pow(xolr/8, 8), 1.0/8) - xolr/8)
	// T enters STMRo only through e^(-T/4) 10^(-TELR/10), below 1e-6 dB
	// at TELR 65: taken at T = 0.
	stmro := -10 * math.Log10(math.Pow(10, -g107STMR/10)+math.Pow(10, -g107TELR/10))
	ist := 12*math.Pow(1+math.Pow((stmro-13)/6, 8), 1.0/8) -
		28*math.Pow(1+math.Pow((stmro+1)/19.4, 35), 1.0/35) -
		13*math.Pow(1+math.Pow((stmro-3)/33, 13), 1.0/13) + 29
	q := 37 - 15*math.Log10(g107qdu)
	g := 1.07 + 0.258*q + 0.0602*q*q
	z := 46.0/30 - g/40
	y := (ro-100)/15 + 46/8.4 - g/9
	iq := 15 * math.Log10(1+math.Pow(10, y)+math.Pow(10, z))
	return ro, iolr + ist + iq, no
}()

// delayImpairment is G.107's Id = Idte + Idle + Idd for a one-way
// absolute delay ta (ms), with T = ta and Tr = 2 ta.
func delayImpairment(ta float64) float64 {
	t, tr := ta, 2*ta
	// talker echo
	roe := -1.5 * (g107No - g107RLR)
	terv := g107TELR - 40*math.Log10((1+t/10)/(1+t/150)) + 6*math.Exp(-0.3*t*t)
	re := 80 + 2.5*(terv-14)
	idte := ((roe-re)/2 + math.Sqrt((roe-re)*(roe-re)/4+100) - 1) * (1 - math.Exp(-t))
	// listener echo
	rle := 10.5 * (g107WEPL + 7) * math.Pow(tr+1, -0.25)
	idle := (g107Ro-rle)/2 + math.Sqrt((g107Ro-rle)*(g107Ro-rle)/4+169)
	// absolute delay
	var idd float64
	if ta > g107mT {
		x := math.Log10(ta/g107mT) / math.Log10(2)
		idd = 25 * (math.Pow(1+math.Pow(x, 6), 1.0/6) - 3*math.Pow(1+math.Pow(x/3, 6), 1.0/6) + 2)
	}
	return idte + idle + idd
}

// EModelInput is what varies per stream.
type EModelInput struct {
	LossRatio float64 // Ppl/100: packets lost or discarded, 0..1
	BurstR    float64 // burst ratio; 0 is taken as 1 (random loss)
	Delay     float64 // Ta: one-way mouth-to-ear delay, s
	Ie, Bpl   float64 // the codec's (ImpairmentOf)
}

// EModel returns the E-model rating R for in (G.107 formula (7-1):
// R = Ro - Is - Id - Ie,eff + A), between 0 and 100.
func EModel(in EModelInput) float64 {
	burstR := in.BurstR
	if !(burstR >= 1) { // also NaN
		burstR = 1
	}
	ppl := 100 * clamp(in.LossRatio, 0, 1)
	ieEff := in.Ie + (95-in.Ie)*ppl/(ppl/burstR+in.Bpl)
	ta := 1000 * clamp(in.Delay, 0, MaxDelay)
	r := g107Ro - g107Is - delayImpairment(ta) - ieEff + g107A
	return clamp(r, 0, 100)
}

// MOSFromR is G.107 Annex B's MOS (conversational quality, estimated) for
// a rating R: 1 + 0.035R + R(R-60)(100-R)7e-6, within 1..4.5.
func MOSFromR(r float64) float64 {
	switch {
	case !(r > 0): // also NaN
		return 1
	case r >= 100:
		return 4.5
	}
	return clamp(1+0.035*r+r*(r-60)*(100-r)*7e-6, 1, 4.5)
}

func clamp(v, lo, hi float64) float64 {
	switch {
	case !(v >= lo): // also NaN
		return lo
	case v > hi:
		return hi
	}
	return v
}

// PLC is a receiver's packet loss concealment, as RTCP-XR (RX config)
// and RFC 6035 (SessionDesc PLC=) report it.
type PLC uint8

// PLC values, numbered as RFC 3611 4.7.6 and RFC 6035 number them.
const (
	PLCUnspecified PLC = 0
	PLCDisabled    PLC = 1
	PLCEnhanced    PLC = 2
	PLCStandard    PLC = 3
)

// Impairment is a codec's E-model parameters.
type Impairment struct {
	Ie  float64 // equipment impairment factor
	Bpl float64 // packet-loss robustness factor
	// Tabulated is false where ITU-T G.113 Appendix I has no narrowband
	// value for the codec and G.711's (with PLC) stand in.
	Tabulated bool
}

// The provisional planning values of ITU-T G.113 (11/2007) Appendix I
// (Tables I.1 and I.3) for the codecs RTP carries: Ie, and Bpl for random
// loss. G.711 has Bpl 4.3 without PLC and 25.1 with G.711 Appendix I PLC;
// PLC is assumed unless the report says it is disabled, as today's
// endpoints conceal loss. Wideband codecs (G.722, Opus) and iLBC have no
// narrowband value there: they get G.711's, marked not Tabulated.
var (
	g711PLC   = Impairment{Ie: 0, Bpl: 25.1, Tabulated: true}
	g711NoPLC = Impairment{Ie: 0, Bpl: 4.3, Tabulated: true}
	g729A     = Impairment{Ie: 11, Bpl: 19.0, Tabulated: true} // G.729A + VAD
	g7231     = Impairment{Ie: 15, Bpl: 16.1, Tabulated: true} // G.723.1 6.3 kbit/s + VAD
	gsmEFR    = Impairment{Ie: 5, Bpl: 10.0, Tabulated: true}
	untabled  = Impairment{Ie: 0, Bpl: 25.1}
)

// ImpairmentOf returns the E-model parameters of a codec (by name; an
// unknown or empty name is G.711) and the receiver's PLC.
func ImpairmentOf(c Codec, plc PLC) Impairment {
	switch CodecFamily(c.Name) {
	case "G711", "":
		if plc == PLCDisabled {
			return g711NoPLC
		}
		return g711PLC
	case "G729":
		return g729A
	case "G723":
		return g7231
	case "GSM-EFR":
		return gsmEFR
	}
	return untabled
}

// CodecFamily normalises the names reports and SDP give a codec: PCMU,
// PCMA, G711U, G.711A, G711 -> G711; G729, G.729a, G729AB -> G729; G723,
// G.723.1 -> G723; GSM-EFR; others upper-cased without dots ("" stays "").
func CodecFamily(name string) string {
	n := strings.ToUpper(strings.ReplaceAll(name, ".", ""))
	if i := strings.IndexByte(n, '/'); i >= 0 { // PCMU/8000
		n = n[:i]
	}
	switch {
	case n == "PCMU" || n == "PCMA" || strings.HasPrefix(n, "G711"):
		return "G711"
	case strings.HasPrefix(n, "G729"):
		return "G729"
	case strings.HasPrefix(n, "G723"):
		return "G723"
	case n == "GSM-EFR" || n == "GSMEFR":
		return "GSM-EFR"
	}
	return n
}

// Estimate fills a stream's MOS (and R) where the report gave none: from
// a given R, else from its loss through the E-model. The E-model's
// one-way delay Ta is the report's, else half the round-trip time plus
// the jitter buffer: the nominal one when given, else twice the jitter
// (an adaptive buffer's usual target). What a report lacks counts as 0,
// so a report without delay figures is rated on its loss alone. Loss is
// the network loss plus the jitter-buffer discards (Ppl of G.107 is all
// the packets the decoder did not get).
func (s *Stream) Estimate() {
	switch {
	case s.Has(FigMOS):
		return
	case s.Has(FigRFactor):
		s.MOS = MOSFromR(s.RFactor)
		s.Computed |= FigMOS
		return
	case !s.Has(FigLossRatio):
		return
	}
	delay, estimated := s.delay()
	imp := ImpairmentOf(s.Codec, s.PLC)
	loss := s.LossRatio
	if s.Has(FigDiscardRatio) {
		loss += s.DiscardRatio
	}
	s.RFactor = EModel(EModelInput{LossRatio: loss, Delay: delay, Ie: imp.Ie, Bpl: imp.Bpl})
	s.MOS = MOSFromR(s.RFactor)
	s.Computed |= FigRFactor | FigMOS
	if estimated {
		s.OneWayDelay = delay
		s.Computed |= FigOneWayDelay
	}
}

// setEndSystemDelay derives the one-way delay from a round-trip time and
// an end system delay (s). RFC 3611 4.7 defines the end system delay as
// the reporter's internal round trip (jitter buffer, coding, playout);
// with the far end's taken to be alike, mouth-to-ear is half the
// network's round trip plus it.
func (s *Stream) setEndSystemDelay(rtt, esd float64) {
	s.OneWayDelay = rtt/2 + esd
	s.Computed |= FigOneWayDelay
}

// delay is the one-way delay the E-model takes, and whether it was
// estimated here rather than given.
func (s *Stream) delay() (float64, bool) {
	if s.Has(FigOneWayDelay) {
		return s.OneWayDelay, false
	}
	var d float64
	if s.Has(FigRTT) {
		d += s.RTT / 2
	}
	switch {
	case s.Has(FigJitterBuffer):
		d += s.JitterBuffer
	case s.Has(FigJitter):
		d += 2 * s.Jitter
	}
	return d, true
}

// Class is a quality class.
type Class uint8

// Classes.
const (
	ClassUnknown Class = iota
	ClassGood
	ClassFair
	ClassPoor
	ClassBad
)

var classNames = [...]string{"unknown", "good", "fair", "poor", "bad"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return classNames[0]
}

// The class bounds are the user-satisfaction categories of ITU-T G.107
// Annex B (Table B.1; G.109's speech transmission quality categories):
// R >= 80 users satisfied (MOS 4.03 and up: good), R >= 70 some users
// dissatisfied (3.60: fair), R >= 60 many users dissatisfied (3.10: poor),
// below that nearly all (bad). The MOS bounds are MOSFromR of those R
// values, so that a stream's R and MOS give the same class.
var (
	MOSGood = MOSFromR(80)
	MOSFair = MOSFromR(70)
	MOSPoor = MOSFromR(60)
)

// ClassOf returns the class of a MOS.
func ClassOf(mos float64) Class {
	switch {
	case mos >= MOSGood:
		return ClassGood
	case mos >= MOSFair:
		return ClassFair
	case mos >= MOSPoor:
		return ClassPoor
	case mos >= 1:
		return ClassBad
	}
	return ClassUnknown
}
