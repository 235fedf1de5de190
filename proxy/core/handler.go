package core

import (
	"context"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/siphon-otel/siphon-otel/proxy/config"
	"github.com/siphon-otel/siphon-otel/proxy/digest"
	"github.com/siphon-otel/siphon-otel/proxy/registrar"
)

// Request is what a routing handler sees: an out-of-dialog request (other
// than REGISTER and OPTIONS to the proxy, which the core answers itself).
type Request struct {
	*sip.Request
	Source    string // host:port it came from
	Transport string // udp, tcp, tls
	AuthUser  string // the authenticated user, when digest auth is on
	// Local is true when the Request-URI's domain is one this proxy serves.
	Local bool
}

// Target is where to send a request: a SIP URI and the transport to use.
type Target struct {
	URI       sip.Uri
	Transport string
}

// Action is what a handler decided.
type Action int

// Actions.
const (
	Forward Action = iota // to Targets, in order, failing over on 408/5xx/no answer
	Reply                 // answer with Status and Reason
)

// Media says whether a forwarded call's media goes through RTPEngine.
type Media int

// Media modes.
const (
	MediaDefault Media = iota // rtpengine.enabled decides
	MediaAnchor               // through RTPEngine (needs rtpengine.instances)
	MediaDirect               // end to end, not anchored
)

// Decision is a handler's answer.
type Decision struct {
	Action  Action
	Targets []Target
	Status  int
	Reason  string
	// Media applies to a forwarded INVITE with SDP.
	Media Media
}

// Handler decides where out-of-dialog requests go. It runs on the handler
// pool (SIPhon's script executor): it may block, but a slow handler fills
// the pool, which then sheds requests (siphon_pyexec_jobs_shed_total).
type Handler interface {
	OnRequest(ctx context.Context, r *Request) Decision
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, r *Request) Decision

// OnRequest calls f.
func (f HandlerFunc) OnRequest(ctx context.Context, r *Request) Decision { return f(ctx, r) }

// Router is the default handler, configured from YAML: requests for local
// users go to their registered contacts (highest q first), then to a route
// matching the user; other domains go to a route matching the domain or
// "*". Local users without contacts get 480 when they are known (have
// credentials, or were registered within registrar.KnownFor) and 404
// otherwise.
type Router struct {
	Routes []config.Route
	Reg    *registrar.Registrar
	Auth   *digest.Authenticator // may be nil
}

// OnRequest implements Handler.
func (rt *Router) OnRequest(_ context.Context, r *Request) Decision {
	user := r.Recipient.User
	if r.Local {
		if user == "" {
			return Decision{Action: Reply, Status: 404, Reason: "Not Found"}
		}
		contacts := rt.Reg.Lookup(registrar.AoR(r.Recipient.String()))
		if len(contacts) > 0 {
			var ts []Target
			for _, c := range contacts {
				var u sip.Uri
				if err := sip.ParseUri(c.URI, &u); err != nil {
					continue
				}
				ts = append(ts, Target{URI: u, Transport: transportOf(u, c.Transport)})
			}
			if len(ts) > 0 {
				return Decision{Action: Forward, Targets: ts}
			}
		}
		if ts, media := rt.match(func(m string) bool { return strings.HasPrefix(user, m) }, r.Recipient); ts != nil {
			return Decision{Action: Forward, Targets: ts, Media: media}
		}
		if rt.Reg.Known(registrar.AoR(r.Recipient.String())) || (rt.Auth != nil && rt.Auth.Known(user)) {
			return Decision{Action: Reply, Status: 480, Reason: "Temporarily Unavailable"}
		}
		return Decision{Action: Reply, Status: 404, Reason: "Not Found"}
	}
	host := strings.ToLower(r.Recipient.Host)
	if ts, media := rt.match(func(m string) bool { return strings.EqualFold(m, host) || m == "*" }, r.Recipient); ts != nil {
		return Decision{Action: Forward, Targets: ts, Media: media}
	}
	return Decision{Action: Reply, Status: 404, Reason: "Not Found"}
}

// match returns the targets of the first route whose match accepts, and
// its media mode; the target URIs keep the request's user.
func (rt *Router) match(accept func(string) bool, ruri sip.Uri) ([]Target, Media) {
	for _, route := range rt.Routes {
		if !accept(route.Match) {
			continue
		}
		var ts []Target
		for _, t := range route.Targets {
			var u sip.Uri
			if err := sip.ParseUri(t, &u); err != nil {
				continue
			}
			if u.User == "" {
				u.User = ruri.User
			}
			ts = append(ts, Target{URI: u, Transport: transportOf(u, "udp")})
		}
		return ts, routeMedia[route.Media]
	}
	return nil, MediaDefault
}

var routeMedia = map[string]Media{"": MediaDefault, config.MediaAnchor: MediaAnchor, config.MediaDirect: MediaDirect}

// transportOf reads a URI's transport parameter, else def.
func transportOf(u sip.Uri, def string) string {
	if t, ok := u.UriParams.Get("transport"); ok && t != "" {
		return strings.ToLower(t)
	}
	if u.Scheme == "sips" {
		return "tls"
	}
	if def == "" {
		return "udp"
	}
	return strings.ToLower(def)
}
