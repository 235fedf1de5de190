package sipcallconnector

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Config is the sipcall connector's configuration.
type Config struct {
	// FlushInterval is how often completed spans are looked for and
	// emitted, and state past its lifetime expired.
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// Linger is how long a completed transaction, and an ended call, waits
	// for retransmissions (and the rest of its hops) before its span
	// leaves: RFC 3261 Timer J, 64*T1.
	Linger time.Duration `mapstructure:"linger"`
	// CDRWait is how long after its end a call's root span waits for the
	// call's CDR, so as to carry its fields (never less than Linger); a CDR
	// with no SIP message yet waits as long for them. 0: no wait beyond
	// Linger.
	CDRWait time.Duration `mapstructure:"cdr_wait"`
	// IdleTimeout ends a call that is not established (no 2xx to its
	// initial INVITE) and had no message for that long, and an
	// out-of-dialog transaction without a final response: status error
	// "timeout". An established call waits for its BYE (MaxCallDuration).
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// UnansweredTimeout ends sooner a call, or an out-of-dialog
	// transaction, none of whose requests got any response (not even a
	// 100), as IdleTimeout does: by RFC 3261 Timer B (64*T1, 32 s) the
	// sender gave up. A flood of INVITEs (a scanner) would otherwise hold
	// its state, and the memory limiter's refusals, for IdleTimeout.
	UnansweredTimeout time.Duration `mapstructure:"unanswered_timeout"`
	// MaxCalls bounds the calls in flight; a new one evicts the least
	// recently active.
	MaxCalls int `mapstructure:"max_calls"`
	// MaxCallDuration evicts a call in flight for longer (a BYE never
	// captured).
	MaxCallDuration time.Duration `mapstructure:"max_call_duration"`
	// MaxSpansPerCall bounds a call's spans (root, legs, transactions); the
	// transaction beyond evicts the call.
	MaxSpansPerCall int `mapstructure:"max_spans_per_call"`
	// IncludeBody copies each SIP message onto its span event
	// (sip.message.body).
	IncludeBody bool              `mapstructure:"include_body"`
	OutOfDialog OutOfDialogConfig `mapstructure:"out_of_dialog"`
	// Nodes names addresses of capturing nodes, for span kinds (SERVER when
	// a request arrived at the node, CLIENT when it sent it) where learning
	// them from relayed requests cannot (a B2BUA, a node that answers
	// itself).
	Nodes []NodeConfig `mapstructure:"nodes"`
	// Media puts the call's media quality on its root span.
	Media MediaConfig `mapstructure:"media"`
}

// OutOfDialogConfig selects the methods traced outside an INVITE dialog,
// each transaction a trace of its own.
type OutOfDialogConfig struct {
	Methods []string `mapstructure:"methods"`
	// MaxTransactions bounds the out-of-dialog transactions in flight, in a
	// table of their own so that a REGISTER or OPTIONS flood evicts its own
	// kind, never a call; a new one evicts the least recently active.
	MaxTransactions int `mapstructure:"max_transactions"`
}

// NodeConfig lists the addresses ("10.0.0.10", "10.0.0.10:5060",
// "[2001:db8::1]:5060") of the node whose service.instance.id is Name.
type NodeConfig struct {
	Name      string   `mapstructure:"name"`
	Addresses []string `mapstructure:"addresses"`
}

// dialogMethods belong to an INVITE dialog: never a trace of their own.
var dialogMethods = []string{"INVITE", "ACK", "BYE", "CANCEL", "PRACK", "UPDATE"}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"flush_interval", c.FlushInterval}, {"linger", c.Linger}, {"idle_timeout", c.IdleTimeout}, {"unanswered_timeout", c.UnansweredTimeout}, {"max_call_duration", c.MaxCallDuration}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", d.name))
		}
	}
	if c.CDRWait < 0 {
		errs = append(errs, errors.New("cdr_wait must not be negative"))
	}
	if c.MaxCalls < 1 {
		errs = append(errs, errors.New("max_calls must be at least 1"))
	}
	if c.OutOfDialog.MaxTransactions < 1 {
		errs = append(errs, errors.New("out_of_dialog.max_transactions must be at least 1"))
	}
	if c.MaxSpansPerCall < 2 {
		errs = append(errs, errors.New("max_spans_per_call must be at least 2 (the root and one transaction)"))
	}
	for i, m := range c.OutOfDialog.Methods {
		switch {
		case m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " \t"):
			errs = append(errs, fmt.Errorf("out_of_dialog.methods[%d]: %q is not an upper-case SIP method", i, m))
		case slices.Contains(dialogMethods, m):
			errs = append(errs, fmt.Errorf("out_of_dialog.methods[%d]: %s belongs to an INVITE dialog", i, m))
		}
	}
	names := map[string]bool{}
	for i, n := range c.Nodes {
		if n.Name == "" {
			errs = append(errs, fmt.Errorf("nodes[%d]: name is empty", i))
		} else if names[n.Name] {
			errs = append(errs, fmt.Errorf("nodes[%d]: %q appears twice", i, n.Name))
		}
		names[n.Name] = true
		if len(n.Addresses) == 0 {
			errs = append(errs, fmt.Errorf("nodes[%d]: addresses is empty", i))
		}
		for j, a := range n.Addresses {
			if _, err := parseNodeAddress(a); err != nil {
				errs = append(errs, fmt.Errorf("nodes[%d].addresses[%d]: %w", i, j, err))
			}
		}
	}
	return errors.Join(errs...)
}

// parseNodeAddress reads "ip" or "ip:port" in the form captured addresses
// are compared in (the hep receiver's: netip's text; port 0 for the address
// alone).
func parseNodeAddress(s string) (endpoint, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return endpoint{addr: ap.Addr().Unmap().String(), port: int64(ap.Port())}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return endpoint{}, fmt.Errorf("%q is neither an address nor an address:port", s)
	}
	return endpoint{addr: a.Unmap().String()}, nil
}
