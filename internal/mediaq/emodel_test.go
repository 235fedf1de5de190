package mediaq

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

// G.107 (06/2015) 7.7: "Using the default values ... the calculation
// results in a very high quality with a rating factor of R = 93.2",
// from Ro = 94.77, Is = 1.41 and Id = 0.15 (the listener echo term Idle).
func TestEModelDefaults(t *testing.T) {
	assert.InDelta(t, 94.77, g107Ro, 0.005, "Ro")
	assert.InDelta(t, 1.41, g107Is, 0.005, "Is")
	assert.InDelta(t, 0.15, delayImpairment(0), 0.005, "Id at T = Ta = Tr = 0")
	r := EModel(EModelInput{Ie: 0, Bpl: 1})
	assert.InDelta(t, 93.2, r, 0.05, "R at the defaults")
	assert.InDelta(t, 4.41, MOSFromR(r), 0.005, "MOS at the defaults")
}

// G.107 Annex B, Table B.1: the lower R and MOS bound of each
// user-satisfaction category, the table's MOS rounded up to 0.01 (R 80
// gives 4.024, listed as 4.03).
func TestMOSFromRAnnexB(t *testing.T) {
	for _, c := range []struct{ r, mos float64 }{
		{90, 4.34}, {80, 4.03}, {70, 3.60}, {60, 3.10}, {50, 2.58},
		{93.2, 4.41},
		{0, 1}, {-5, 1}, {100, 4.5}, {120, 4.5}, {math.NaN(), 1},
		{5, 1}, // the cubic dips below 1 near 0: clamped
	} {
		assert.InDelta(t, c.mos, MOSFromR(c.r), 0.0075, "R %g", c.r)
	}
	// the class bounds are these R values, so R and MOS agree
	assert.Equal(t, ClassGood, ClassOf(MOSFromR(80)))
	assert.Equal(t, ClassFair, ClassOf(MOSFromR(79.99)))
	assert.Equal(t, ClassFair, ClassOf(MOSFromR(70)))
	assert.Equal(t, ClassPoor, ClassOf(MOSFromR(69.99)))
	assert.Equal(t, ClassPoor, ClassOf(MOSFromR(60)))
	assert.Equal(t, ClassBad, ClassOf(MOSFromR(59.99)))
	assert.Equal(t, ClassBad, ClassOf(1))
	assert.Equal(t, ClassUnknown, ClassOf(0))
	assert.Equal(t, "fair", ClassFair.String())
}

// Codec and loss: Ie and Bpl of G.113 Appendix I through G.107's
// Ie,eff = Ie + (95 - Ie) Ppl / (Ppl/BurstR + Bpl), R = 93.2 - Ie,eff at
// no delay.
func TestEModelCodecLoss(t *testing.T) {
	g711 := ImpairmentOf(Codec{Name: "PCMA"}, PLCUnspecified)
	g711NoPLC := ImpairmentOf(Codec{Name: "G.711U"}, PLCDisabled)
	g729 := ImpairmentOf(Codec{Name: "G729"}, PLCStandard)
	for _, c := range []struct {
		name string
		imp  Impairment
		loss float64
		r    float64
	}{
		{"G.711 no loss", g711, 0, 93.2},
		{"G.711 PLC 1%", g711, 0.01, 93.2 - 95.0/26.1},          // 89.56
		{"G.711 PLC 5%", g711, 0.05, 93.2 - 95*5.0/30.1},        // 77.42
		{"G.711 no PLC 1%", g711NoPLC, 0.01, 93.2 - 95.0/5.3},   // 75.28
		{"G.729A no loss", g729, 0, 93.2 - 11},                  // 82.2
		{"G.729A 2%", g729, 0.02, 93.2 - (11 + 84*2.0/21)},      // 74.2
		{"all lost", g711, 1, math.Max(0, 93.2-(95*100/125.1))}, // 17.26
	} {
		r := EModel(EModelInput{LossRatio: c.loss, Ie: c.imp.Ie, Bpl: c.imp.Bpl})
		assert.InDelta(t, c.r, r, 0.06, c.name)
	}
	assert.InDelta(t, 4.10, MOSFromR(82.2), 0.005, "G.729A's MOS at no loss")
	// bursty loss hurts more than random loss at the same rate
	random := EModel(EModelInput{LossRatio: 0.05, Ie: 0, Bpl: 25.1})
	bursty := EModel(EModelInput{LossRatio: 0.05, BurstR: 2, Ie: 0, Bpl: 25.1})
	assert.Less(t, bursty, random)
}

// Delay: Idd is 0 up to 100 ms; at Ta = 200 ms, X = 1 and G.107's
// Idd = 25{(1+X^6)^(1/6) - 3(1+(X/3)^6)^(1/6) + 2} = 3.04. With talker
// and listener echo at the defaults (TELR 65 dB, T = Ta, Tr = 2 Ta) the
// whole delay impairment follows Cole and Rosenbluth's published fit of
// the G.107 defaults ("Voice over IP performance monitoring", ACM SIGCOMM
// CCR 31(2), 2001): Id = 0.024 Ta + 0.11 (Ta - 177.3) H(Ta - 177.3), Ta in
// ms, within 1 (the fit is piecewise linear, the curve bends at its knee)
// up to 300 ms.
func TestEModelDelay(t *testing.T) {
	echo := func(ta float64) float64 { // Idte + Idle alone
		saved := delayImpairment(ta)
		if ta <= g107mT {
			return saved
		}
		x := math.Log2(ta / g107mT)
		return saved - 25*(math.Pow(1+math.Pow(x, 6), 1.0/6)-3*math.Pow(1+math.Pow(x/3, 6), 1.0/6)+2)
	}
	idd200 := delayImpairment(200) - echo(200)
	assert.InDelta(t, 3.04, idd200, 0.01)
	r0 := EModel(EModelInput{Bpl: 1})
	for ta := 0.0; ta <= 300; ta += 25 {
		fit := 0.024 * ta
		if ta > 177.3 {
			fit += 0.11 * (ta - 177.3)
		}
		assert.InDelta(t, r0-fit, EModel(EModelInput{Delay: ta / 1000, Bpl: 1}), 1, "Ta %g ms", ta)
	}
}

// MOS never rises as loss, jitter, round-trip time or one-way delay grow.
func TestEstimateMonotonic(t *testing.T) {
	losses := []float64{0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1}
	delays := []float64{0, 0.01, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 5, 30}
	for _, codec := range []Codec{{Name: "PCMU"}, {Name: "G729"}, {Name: "opus"}} {
		for _, plc := range []PLC{PLCUnspecified, PLCDisabled} {
			est := func(loss, jitter, rtt float64) float64 {
				s := Stream{Codec: codec, PLC: plc, LossRatio: loss, Jitter: jitter, RTT: rtt,
					Given: FigLossRatio | FigJitter | FigRTT}
				s.Estimate()
				assert.True(t, s.Has(FigMOS|FigRFactor|FigOneWayDelay))
				assert.Equal(t, FigMOS|FigRFactor|FigOneWayDelay, s.Computed)
				assert.True(t, s.MOS >= 1 && s.MOS <= 4.5, "MOS %g", s.MOS)
				return s.MOS
			}
			name := fmt.Sprintf("%s plc %d", codec.Name, plc)
			for _, d := range delays {
				for i := 1; i < len(losses); i++ {
					assert.LessOrEqual(t, est(losses[i], d, d), est(losses[i-1], d, d), "%s: loss %g, delay %g", name, losses[i], d)
				}
			}
			for _, l := range losses {
				for i := 1; i < len(delays); i++ {
					assert.LessOrEqual(t, est(l, delays[i], 0), est(l, delays[i-1], 0), "%s: jitter %g", name, delays[i])
					assert.LessOrEqual(t, est(l, 0, delays[i]), est(l, 0, delays[i-1]), "%s: rtt %g", name, delays[i])
				}
			}
		}
	}
}

func TestEstimate(t *testing.T) {
	// a given MOS stays; nothing is computed
	s := Stream{MOS: 3.9, LossRatio: 0.5, Given: FigMOS | FigLossRatio}
	s.Estimate()
	assert.Equal(t, 3.9, s.MOS)
	assert.Zero(t, s.Computed)

	// a given R gives the MOS
	s = Stream{RFactor: 80, Given: FigRFactor}
	s.Estimate()
	assert.InDelta(t, 4.03, s.MOS, 0.01)
	assert.Equal(t, FigMOS, s.Computed)

	// no loss figure: no estimate
	s = Stream{Jitter: 0.02, Given: FigJitter}
	s.Estimate()
	assert.False(t, s.Has(FigMOS))

	// Ta = RTT/2 + 2 x jitter without a jitter buffer figure; with one, the buffer
	s = Stream{LossRatio: 0, RTT: 0.2, Jitter: 0.01, Given: FigLossRatio | FigRTT | FigJitter}
	s.Estimate()
	assert.InDelta(t, 0.12, s.OneWayDelay, 1e-9)
	s = Stream{LossRatio: 0, RTT: 0.2, Jitter: 0.01, JitterBuffer: 0.06, Given: FigLossRatio | FigRTT | FigJitter | FigJitterBuffer}
	s.Estimate()
	assert.InDelta(t, 0.16, s.OneWayDelay, 1e-9)

	// jitter-buffer discards count as loss
	a := Stream{LossRatio: 0.01, Given: FigLossRatio}
	b := Stream{LossRatio: 0.01, DiscardRatio: 0.02, Given: FigLossRatio | FigDiscardRatio}
	a.Estimate()
	b.Estimate()
	assert.InDelta(t, EModel(EModelInput{LossRatio: 0.03, Bpl: 25.1}), b.RFactor, 1e-9)
	assert.Less(t, b.MOS, a.MOS)
}

func TestCodecFamily(t *testing.T) {
	for in, want := range map[string]string{
		"PCMU": "G711", "pcma": "G711", "G.711U": "G711", "G711A": "G711", "PCMU/8000": "G711",
		"G729": "G729", "G.729a": "G729", "G729AB": "G729", "G723": "G723", "G.723.1": "G723",
		"opus": "OPUS", "iLBC": "ILBC", "": "",
	} {
		assert.Equal(t, want, CodecFamily(in), in)
	}
	assert.Equal(t, Impairment{Ie: 0, Bpl: 25.1, Tabulated: true}, ImpairmentOf(Codec{}, PLCUnspecified), "unknown is G.711 with PLC")
	assert.Equal(t, 4.3, ImpairmentOf(Codec{Name: "PCMU"}, PLCDisabled).Bpl)
	assert.False(t, ImpairmentOf(Codec{Name: "opus"}, PLCStandard).Tabulated)
	assert.Equal(t, 15.0, ImpairmentOf(Codec{Name: "G723"}, PLCStandard).Ie)
}
