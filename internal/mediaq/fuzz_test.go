package mediaq

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

// checkErr holds a refusal to its contract: an *Error with a known reason.
func checkErr(t *testing.T, src Source, err error) {
	t.Helper()
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Contains(t, []Reason{ReasonMalformed, ReasonTooLarge, ReasonOutOfRange, ReasonEmpty}, e.Reason)
	assert.Equal(t, src, e.Source)
	assert.True(t, strings.HasPrefix(err.Error(), "mediaq: "+src.String()+": "), err.Error())
}

// FuzzRTCPJSON: no input panics; what is accepted is JSON (the scanner
// is no laxer than encoding/json) and within the documented ranges; a
// Report parsed into again gives what a new one does.
func FuzzRTCPJSON(f *testing.F) {
	for _, name := range fixture.MediaFiles("rtcp-json/*.json") {
		f.Add(fixture.Media(name))
	}
	for _, p := range rtpengineCapture(f) {
		f.Add(p.Payload)
	}
	for _, c := range badRTCP {
		if len(c.in) < 1000 {
			f.Add([]byte(c.in))
		}
	}
	arrival := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	var reused Report
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRTCPJSON(b, Options{Arrival: arrival})
		err2 := reused.ParseRTCPJSON(b, Options{Arrival: arrival})
		assert.Equal(t, err, err2)
		if err != nil {
			checkErr(t, SourceRTCP, err)
			return
		}
		assert.True(t, json.Valid(bytes.TrimRight(b, " \t\r\n\x00")), "accepted invalid JSON %q", b)
		checkReport(t, &r)
		if len(r.Streams)+len(reused.Streams) > 0 {
			assert.Equal(t, r.Streams, reused.Streams)
		}
	})
}

func FuzzXRVoIPMetrics(f *testing.F) {
	f.Add(xrSample(f))
	f.Add(make([]byte, XRVoIPMetricsSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseXRVoIPMetrics(b, Codec{})
		if err != nil {
			checkErr(t, SourceRTCPXR, err)
			return
		}
		checkReport(t, &Report{Streams: []Stream{st}})
	})
}

func FuzzVQReport(f *testing.F) {
	for _, name := range fixture.MediaFiles("vq/*.txt") {
		f.Add(string(fixture.Media(name)))
	}
	f.Add("VQSessionReport\nLocalMetrics:\nPacketLoss: NLR=150\n")
	f.Add("VQAlertReport: Type=MOSLQ\nRemoteMetrics:\nSessionDesc: FMTP=\"a b\" PT=0\nDelay: RTD=10 ESD=20\n")
	f.Fuzz(func(t *testing.T, body string) {
		r, err := ParseVQReport(body, Codec{})
		if err != nil {
			checkErr(t, SourceVQReport, err)
			return
		}
		checkReport(t, &r)
		assert.LessOrEqual(t, len(r.Streams), 2)
	})
}

func FuzzRTPStat(f *testing.F) {
	for _, line := range fixture.MediaLines("rtp-stat.txt") {
		name, value, _ := strings.Cut(line, ":")
		f.Add(name, strings.TrimSpace(value))
	}
	f.Add(HeaderXRTPStat, "PR=100;PL=-3;JI=-;MOS=0")
	f.Fuzz(func(t *testing.T, header, value string) {
		r, err := ParseRTPStat(header, value, Codec{})
		if err != nil {
			checkErr(t, SourceRTPStat, err)
			return
		}
		checkReport(t, &r)
		require.Len(t, r.Streams, 1)
	})
}

// FuzzFromSIP covers the message-level lookup and the SDP reader.
func FuzzFromSIP(f *testing.F) {
	f.Add(string(fixture.Invite()))
	f.Add("PUBLISH sip:c SIP/2.0\r\nCall-ID: p\r\nContent-Type: application/vq-rtcpxr\r\n\r\n" + string(fixture.Media("vq/rfc6035-session.txt")))
	f.Add("BYE sip:a SIP/2.0\r\nCall-ID: b\r\nP-RTP-Stat: PS=1,PR=2,PL=0,JI=3,LA=4\r\n\r\n")
	f.Fuzz(func(t *testing.T, msg string) {
		r, ok, err := FromSIP(msg, Codec{})
		if err != nil {
			assert.True(t, ok)
			checkErr(t, r.Source, err)
		} else if ok {
			checkReport(t, &r)
		}
		if rtp, _, ok := SDPAudioEndpoint(msg); ok {
			assert.True(t, rtp.IsValid() && rtp.Port() != 0)
		}
		codecs, _ := SDPCodecs(msg)
		assert.LessOrEqual(t, len(codecs), MaxSDPPayloads)
		for _, c := range codecs {
			assert.LessOrEqual(t, len(c.Name), MaxIDLength)
			assert.True(t, c.PayloadType >= 0 && c.PayloadType <= 127)
		}
	})
}
