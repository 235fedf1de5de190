package core

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/siphon-otel/siphon-otel/proxy/calls"
	"github.com/siphon-otel/siphon-otel/proxy/digest"
	"github.com/siphon-otel/siphon-otel/proxy/registrar"
)

// challenge checks digest credentials in header (Authorization for
// REGISTER, Proxy-Authorization for INVITE). Without valid ones it answers
// and returns false: a wrong answer (or an unknown user: the same answer)
// gets 403, a digest-uri that is not the Request-URI 400 (RFC 2617
// 3.2.2.5), anything else a new challenge, stale=true when the answer was
// right but its nonce expired or was used already.
func (p *Proxy) challenge(req *sip.Request, tx sip.ServerTransaction, header string, code int, challengeHeader string) (string, bool) {
	value := ""
	if h := req.GetHeader(header); h != nil {
		value = h.Value()
	}
	source := hostOf(req.Source())
	user, err := p.auth.Verify(digest.Attempt{Header: value, Method: req.Method.String(), URI: req.Recipient,
		Source: source, OneTime: req.Method == sip.REGISTER})
	if err == nil {
		return user, true
	}
	if !errors.Is(err, digest.ErrNoCredentials) {
		p.m.AuthFailures.Inc()
		p.log.Debug("digest authentication failed", "method", req.Method, "source", source, "error", err)
	}
	if errors.Is(err, digest.ErrTooManyNonces) {
		p.warn(&p.nonceWarn, "digest nonces in use at their limit: new ones are challenged again", "limit", p.auth.MaxTracked)
	}
	switch {
	case errors.Is(err, digest.ErrBadResponse):
		p.reply(tx, req, 403, "Forbidden")
		return "", false
	case errors.Is(err, digest.ErrURIMismatch):
		p.reply(tx, req, 400, "Bad Request")
		return "", false
	}
	reason := "Unauthorized"
	if code == 407 {
		reason = "Proxy Authentication Required"
	}
	stale := errors.Is(err, digest.ErrStaleNonce) || errors.Is(err, digest.ErrReplayed) || errors.Is(err, digest.ErrTooManyNonces)
	p.reply(tx, req, code, reason, challengeHeader, p.auth.Challenge(source, stale))
	return "", false
}

// register handles REGISTER for a local domain (RFC 3261 10.3).
func (p *Proxy) register(req *sip.Request, tx sip.ServerTransaction) {
	authUser := ""
	if p.auth != nil {
		user, ok := p.challenge(req, tx, "Authorization", 401, "WWW-Authenticate")
		if !ok {
			return
		}
		if user != req.To().Address.User {
			p.reply(tx, req, 403, "Forbidden")
			return
		}
		authUser = user
	}
	aor := registrar.AoR(req.To().Address.String())
	defExpires := p.cfg.Registrar.DefaultExpires
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n >= 0 {
			defExpires = n
		}
	}
	var bindings []registrar.Binding
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		if c.Address.Wildcard || c.Address.Host == "*" {
			bindings = append(bindings, registrar.Binding{URI: "*", Expires: defExpires})
			continue
		}
		expires := defExpires
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				expires = n
			}
		}
		if expires > 0 && expires < p.cfg.Registrar.MinExpires {
			p.reply(tx, req, 423, "Interval Too Brief", "Min-Expires", strconv.Itoa(p.cfg.Registrar.MinExpires))
			return
		}
		expires = min(expires, p.cfg.Registrar.MaxExpires)
		q := 1.0
		if v, ok := c.Params.Get("q"); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 1 {
				q = f
			}
		}
		bindings = append(bindings, registrar.Binding{URI: contactURI(c), Expires: expires, Q: q})
	}
	ua := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = h.Value()
	}
	contacts, event := p.Reg.Update(aor, bindings, req.CallID().Value(), req.CSeq().SeqNo, req.Source(), strings.ToLower(req.Transport()), ua)
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	now := time.Now()
	for _, c := range contacts {
		left := int(math.Ceil(c.Expires.Sub(now).Seconds()))
		res.AppendHeader(sip.NewHeader("Contact", "<"+c.URI+">;expires="+strconv.Itoa(left)+qParam(c.Q)))
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	p.respond(tx, res)
	if len(bindings) > 0 {
		p.registerCDR(calls.Register{
			CallID: req.CallID().Value(), FromURI: req.From().Address.String(), ToURI: req.To().Address.String(),
			RURI: req.Recipient.String(), SourceIP: hostOf(req.Source()), DestinationIP: p.host,
			Transport: strings.ToLower(req.Transport()), UserAgent: ua, AuthUser: authUser, Code: 200,
			Event: string(event), Time: now,
		})
	}
}

func qParam(q float64) string {
	if q == 1 {
		return ""
	}
	return ";q=" + strconv.FormatFloat(q, 'f', -1, 64)
}

// contactURI is the binding's URI as registered (without header params).
func contactURI(c *sip.ContactHeader) string {
	u := c.Address
	return u.String()
}

// registerCDR emits a REGISTER CDR when cdr.include_register is on.
func (p *Proxy) registerCDR(r calls.Register) {
	if p.cdr == nil || !p.cfg.CDR.Enabled || !p.cfg.CDR.IncludeRegister {
		return
	}
	p.cdr.Emit(calls.RegisterRecord(r))
}

// limiter is a token bucket per source IP for out-of-dialog requests.
type limiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[string]*bucket
	swept   time.Time
	now     func() time.Time // time.Now; tests step it
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), buckets: map[string]*bucket{}, swept: time.Now(), now: time.Now}
}

func (l *limiter) allow(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.swept) > time.Minute {
		// forget sources that have been quiet long enough to be full again
		for k, b := range l.buckets {
			if now.Sub(b.last).Seconds()*l.rate >= l.burst {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[ip]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[ip] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
