package core

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siphon-otel/siphon-otel/proxy/config"
	"github.com/siphon-otel/siphon-otel/proxy/rtpengine"
)

// media anchors calls' media through RTPEngine, as Kamailio's
// rtpengine_manage does on a proxy: the initial INVITE's SDP goes to
// "offer", each 18x/2xx SDP answering it to "answer" (one per To tag, so
// every fork has its own), a re-INVITE's SDP to "offer" again and the
// call's end to "delete". The SDP RTPEngine returns replaces the
// message's. A call is anchored from its offer to its end on the
// instance that took the offer (a session here); a call without a
// session passes through untouched.
type media struct {
	p      *Proxy
	client *rtpengine.Client
	cfg    config.RTPEngine
	ctx    context.Context // ends at Close: commands in flight give up
	stop   context.CancelFunc

	mu       sync.Mutex
	sessions map[mediaKey]*mediaSession
	closed   bool
	bg       sync.WaitGroup // deletes in flight
	warn     throttle
}

// mediaKey is a call as the call tracker keys it: Call-ID and the
// caller's From tag.
type mediaKey struct{ callID, callerTag string }

type mediaSession struct {
	instance string // holds the call
	// answers are the last SDP answered per From and To tag pair, in and
	// out: a retransmitted 2xx, or a 2xx repeating its 183's SDP, gets the
	// same rewrite without asking again. An offer clears them.
	answers map[string]answered
}

type answered struct{ in, out string }

func newMedia(p *Proxy) (*media, error) {
	cfg := p.cfg.RTPEngine
	m := p.m
	m.RTPEngineSeries()
	c, err := rtpengine.New(rtpengine.Options{Instances: cfg.Instances, Selection: rtpengine.Selection(cfg.Selection), Timeout: cfg.Timeout,
		Observe: func(command, _ string, r rtpengine.Result, took time.Duration) {
			m.RTPEngineCommands.WithLabelValues(command, string(r)).Inc()
			if r != rtpengine.Timeout {
				m.RTPEngineLatency.WithLabelValues(command).Observe(took.Seconds())
			}
		}})
	if err != nil {
		return nil, errorf("rtpengine: %v", err)
	}
	md := &media{p: p, client: c, cfg: cfg, sessions: map[mediaKey]*mediaSession{}}
	md.ctx, md.stop = context.WithCancel(context.Background())
	return md, nil
}

// close waits for the deletes in flight and closes the sockets. Calls
// still up keep their media sessions: deleting them would cut calls that
// may go on without this proxy (RTPEngine times out the rest).
func (md *media) close() {
	md.mu.Lock()
	md.closed = true
	md.mu.Unlock()
	md.bg.Wait()
	md.stop()
	_ = md.client.Close()
}

// find returns the session of a message of the call callID whose tags are
// fromTag and toTag, in either direction (a re-INVITE may come from the
// callee); md.mu is held.
func (md *media) find(callID, fromTag, toTag string) (mediaKey, *mediaSession) {
	if k := (mediaKey{callID, fromTag}); md.sessions[k] != nil {
		return k, md.sessions[k]
	}
	if toTag != "" {
		if k := (mediaKey{callID, toTag}); md.sessions[k] != nil {
			return k, md.sessions[k]
		}
	}
	return mediaKey{callID, fromTag}, nil
}

// offer runs RTPEngine's offer for an INVITE with SDP: an initial one
// when anchor says so (a new session), a re-INVITE of an anchored call.
// It returns the SDP to send on (nil: send the request as it is), or
// reject when the call must be refused (on_error: reject, initial INVITE).
func (md *media) offer(req *sip.Request, inDialog, anchor bool) (sdp []byte, reject bool) {
	if !hasSDP(req) {
		return nil, false
	}
	callID, fromTag, toTag := req.CallID().Value(), req.From().Params.GetOr("tag", ""), req.To().Params.GetOr("tag", "")
	md.mu.Lock()
	key, s := md.find(callID, fromTag, toTag)
	bound := ""
	if s != nil {
		bound = s.instance
	}
	md.mu.Unlock()
	// an initial INVITE of a call with a session is the same call
	// through this proxy again (a spiral): its SDP is RTPEngine's already
	if inDialog && s == nil || !inDialog && (!anchor || s != nil) {
		return nil, false
	}
	msg := md.message("offer", md.cfg.Offer, callID, fromTag, toTag, req.Body(), req.Source())
	reply, instance, err := md.client.Request(md.ctx, callID, bound, true, msg)
	out, err := replySDP(reply, instance, err)
	if err != nil {
		if md.cfg.OnError == "reject" && !inDialog {
			md.failed("offer", "rejected", err, callID, req.Source())
			return nil, true
		}
		md.failed("offer", "passed", err, callID, req.Source())
		return nil, false
	}
	md.mu.Lock()
	defer md.mu.Unlock()
	if !inDialog {
		md.sessions[key] = &mediaSession{instance: instance}
	} else if cur := md.sessions[key]; cur == s {
		// the call may have failed over to another instance
		s.instance, s.answers = instance, nil
	}
	return []byte(out), false
}

// answer rewrites the SDP of a response (a clone on its way upstream)
// answering an anchored call's INVITE: 18x (early media) and 2xx.
func (md *media) answer(res *sip.Response) {
	if cseq := res.CSeq(); cseq == nil || cseq.MethodName != sip.INVITE || res.StatusCode <= 100 || res.StatusCode >= 300 || !hasSDP(res) {
		return
	}
	if res.CallID() == nil || res.From() == nil || res.To() == nil {
		return
	}
	callID, fromTag, toTag := res.CallID().Value(), res.From().Params.GetOr("tag", ""), res.To().Params.GetOr("tag", "")
	in := string(res.Body())
	pair := fromTag + "\x00" + toTag
	md.mu.Lock()
	key, s := md.find(callID, fromTag, toTag)
	if s == nil {
		md.mu.Unlock()
		return
	}
	if a, ok := s.answers[pair]; ok && a.in == in {
		md.mu.Unlock()
		res.SetBody([]byte(a.out))
		return
	}
	bound := s.instance
	md.mu.Unlock()
	msg := md.message("answer", md.cfg.Answer, callID, fromTag, toTag, res.Body(), res.Source())
	out, err := replySDP(md.client.Request(md.ctx, callID, bound, false, msg))
	if err != nil {
		md.failed("answer", "passed", err, callID, res.Source())
		return
	}
	md.mu.Lock()
	if md.sessions[key] == s {
		if s.answers == nil {
			s.answers = map[string]answered{}
		}
		s.answers[pair] = answered{in: in, out: out}
	}
	md.mu.Unlock()
	res.SetBody([]byte(out))
}

// ended deletes the media session of a call that ended (calls.Tracker's
// OnEnd: it must not block). The delete names the call and the caller's
// tag only, which ends the whole call in RTPEngine, with every fork's
// branch; a To tag would end one branch and leave the others.
func (md *media) ended(callID, callerTag string) {
	md.mu.Lock()
	defer md.mu.Unlock()
	k := mediaKey{callID, callerTag}
	s := md.sessions[k]
	if s == nil || md.closed {
		return
	}
	delete(md.sessions, k)
	msg := rtpengine.Dict{"command": "delete", "call-id": callID, "from-tag": callerTag}
	if d := md.cfg.DeleteDelay; d != nil {
		msg["delete-delay"] = int(*d / time.Second)
	}
	md.bg.Add(1)
	go func() {
		defer md.bg.Done()
		_, _, err := md.client.Request(md.ctx, callID, s.instance, false, msg)
		if err != nil && !unknownCall(err) {
			md.p.warn(&md.warn, "RTPEngine delete failed", "call_id", callID, "instance", s.instance, "error", err)
		}
	}()
}

// count is the number of calls anchored now.
func (md *media) count() int {
	md.mu.Lock()
	defer md.mu.Unlock()
	return len(md.sessions)
}

// failed counts an offer or answer RTPEngine did not do and warns (at
// most every warnEvery).
func (md *media) failed(command, action string, err error, callID, source string) {
	md.p.m.RTPEngineUnanchored.WithLabelValues(command, action).Inc()
	md.p.warn(&md.warn, "RTPEngine "+command+" failed, media not anchored", "action", action, "call_id", callID,
		"source", source, "error", err)
}

// message builds an offer or answer with the configured options.
func (md *media) message(command string, f config.NGFlags, callID, fromTag, toTag string, sdp []byte, source string) rtpengine.Dict {
	m := rtpengine.Dict{"command": command, "call-id": callID, "from-tag": fromTag, "sdp": string(sdp)}
	if toTag != "" {
		m["to-tag"] = toTag
	}
	if len(f.Flags) > 0 {
		m["flags"] = f.Flags
	}
	if len(f.Replace) > 0 {
		m["replace"] = f.Replace
	}
	if len(f.Direction) > 0 {
		m["direction"] = f.Direction
	}
	if f.ICE != "" {
		m["ICE"] = f.ICE
	}
	if f.TransportProtocol != "" {
		m["transport-protocol"] = f.TransportProtocol
	}
	if ip := net.ParseIP(hostOf(source)); f.ReceivedFrom && ip != nil {
		family := "IP4"
		if ip.To4() == nil {
			family = "IP6"
		}
		m["received-from"] = []string{family, ip.String()}
	}
	return m
}

var errNoSDP = errors.New("rtpengine: answer without sdp")

// unknownCall is RTPEngine not knowing the call (it ended it first, after
// its media timeout say): for a delete, the session is gone as wanted.
func unknownCall(err error) bool {
	var e *rtpengine.EngineError
	return errors.As(err, &e) && strings.Contains(strings.ToLower(e.Reason), "unknown call")
}

// replySDP is the SDP of an offer's or answer's reply.
func replySDP(reply rtpengine.Dict, _ string, err error) (string, error) {
	if err != nil {
		return "", err
	}
	sdp := rtpengine.String(reply, "sdp")
	if sdp == "" {
		return "", errNoSDP
	}
	return sdp, nil
}

// hasSDP reports whether a message carries an SDP body (Content-Type, or
// its compact form c, application/sdp; multipart bodies are not looked
// into).
func hasSDP(m interface {
	Body() []byte
	ContentType() *sip.ContentTypeHeader
}) bool {
	ct := m.ContentType()
	if len(m.Body()) == 0 || ct == nil {
		return false
	}
	mt, _, _ := strings.Cut(ct.Value(), ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/sdp")
}

// anchors says whether a new call routed with mode goes through
// RTPEngine.
func (p *Proxy) anchors(mode Media) bool {
	if p.media == nil {
		return false
	}
	switch mode {
	case MediaAnchor:
		return true
	case MediaDirect:
		return false
	}
	return p.cfg.RTPEngine.Enabled
}

// RTPEngineHealth takes the ping checker's report: instances reported
// down get no new calls until reported up again.
func (p *Proxy) RTPEngineHealth(up map[string]bool) {
	if p.media != nil {
		p.media.client.SetHealth(up)
	}
}
