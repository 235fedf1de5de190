// Package interop holds tests against independent implementations run as
// real processes on loopback: Kamailio (siptrace as a HEP sender, sipcapture
// as a HEP capture node) and sipp driving SIP calls. `make test` installs
// them (Debian packages kamailio and sip-tester).
package interop
