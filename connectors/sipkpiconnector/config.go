package sipkpiconnector

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Config is the sipkpi connector's configuration.
type Config struct {
	// Dimensions are the labels every KPI series carries besides its own
	// (result, code, method ...). Each takes the first attribute present
	// on the record, then on its resource.
	Dimensions []Dimension `mapstructure:"dimensions"`
	// MaxDimensionSets caps the distinct dimension value sets; measurements
	// of further sets go to one overflow series (otel.metric.overflow=true).
	MaxDimensionSets int `mapstructure:"max_dimension_sets"`
	// FlushInterval is how often the cumulative metrics are emitted.
	FlushInterval time.Duration      `mapstructure:"metrics_flush_interval"`
	Exemplars     ExemplarsConfig    `mapstructure:"exemplars"`
	Histograms    HistogramsConfig   `mapstructure:"histograms"`
	Transactions  TransactionsConfig `mapstructure:"transactions"`
	Scanner       ScannerConfig      `mapstructure:"scanner"`
	Duplicates    DuplicatesConfig   `mapstructure:"duplicates"`
	Media         MediaConfig        `mapstructure:"media"`
}

// DuplicatesConfig drops a copy of a CDR counted within Window: delivery
// between collector tiers is at least once, and a CDR sent again must not
// count twice. A copy has the same time and fields, whatever its body (see
// kpi.appendCDRKey). MaxEntries 0 turns it off.
type DuplicatesConfig struct {
	MaxEntries int           `mapstructure:"max_entries"`
	Window     time.Duration `mapstructure:"window"`
}

// Dimension is one configurable label.
type Dimension struct {
	Name string `mapstructure:"name"`
	// Attributes are looked up in order, on the record and then on its
	// resource; empty means [Name].
	Attributes []string `mapstructure:"attributes"`
	// Default is used when no attribute is present; without it the label is
	// left out.
	Default *string `mapstructure:"default"`
}

// ExemplarsConfig controls exemplars (a recent record's call: its trace and
// root span ids, its Call-ID).
type ExemplarsConfig struct {
	Enabled bool `mapstructure:"enabled"`
}

// HistogramsConfig holds explicit bucket bounds, in seconds.
type HistogramsConfig struct {
	CallDuration []float64 `mapstructure:"call_duration"`
	Setup        []float64 `mapstructure:"setup"`
}

// TransactionsConfig bounds the state kept to recognise retransmissions and
// measure post-dial delay.
type TransactionsConfig struct {
	MaxEntries int `mapstructure:"max_entries"`
	// Timeout is how long a transaction without a final response is kept;
	// then it counts with code "none".
	Timeout time.Duration `mapstructure:"timeout"`
	// UnansweredTimeout is Timeout, sooner, for a transaction that got no
	// response at all, not even a 100: by RFC 3261 Timer B/F (64*T1, 32 s)
	// its sender has given up. An INVITE flood (a scanner) then holds
	// state for 40 s rather than 5 minutes.
	UnansweredTimeout time.Duration `mapstructure:"unanswered_timeout"`
	// Linger keeps a completed transaction to absorb retransmissions
	// (RFC 3261 Timer J/H: 64*T1).
	Linger time.Duration `mapstructure:"linger"`
}

// ScannerConfig tunes SIP scanner detection.
type ScannerConfig struct {
	// UserAgents are case-insensitive substrings of known scanner tools.
	UserAgents []string    `mapstructure:"user_agents"`
	Flood      FloodConfig `mapstructure:"flood"`
	// MaxSources bounds the per-source state.
	MaxSources int `mapstructure:"max_sources"`
}

// FloodConfig flags a source sending Threshold or more new requests of
// Methods within Window.
type FloodConfig struct {
	Methods   []string      `mapstructure:"methods"`
	Threshold int           `mapstructure:"threshold"`
	Window    time.Duration `mapstructure:"window"`
	// ExcludeSources are addresses or prefixes never flagged for floods
	// (the proxies' own OPTIONS pings, trunks).
	ExcludeSources []string `mapstructure:"exclude_sources"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, d := range c.Dimensions {
		switch {
		case d.Name == "":
			errs = append(errs, fmt.Errorf("dimensions[%d]: name is empty", i))
		case seen[d.Name]:
			errs = append(errs, fmt.Errorf("dimensions[%d]: %q appears twice", i, d.Name))
		case slices.Contains(fixedLabels, d.Name):
			errs = append(errs, fmt.Errorf("dimensions[%d]: %q is a label the connector sets itself", i, d.Name))
		}
		seen[d.Name] = true
		for j, a := range d.Attributes {
			if a == "" {
				errs = append(errs, fmt.Errorf("dimensions[%d].attributes[%d] is empty", i, j))
			}
		}
	}
	if c.MaxDimensionSets < 1 {
		errs = append(errs, errors.New("max_dimension_sets must be at least 1"))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, errors.New("metrics_flush_interval must be positive"))
	}
	errs = append(errs, validBounds("histograms.call_duration", c.Histograms.CallDuration))
	errs = append(errs, validBounds("histograms.setup", c.Histograms.Setup))
	if c.Transactions.MaxEntries < 1 {
		errs = append(errs, errors.New("transactions.max_entries must be at least 1"))
	}
	if c.Transactions.Timeout <= 0 || c.Transactions.Linger <= 0 || c.Transactions.UnansweredTimeout <= 0 {
		errs = append(errs, errors.New("transactions.timeout, transactions.unanswered_timeout and transactions.linger must be positive"))
	}
	if c.Transactions.UnansweredTimeout > c.Transactions.Timeout {
		errs = append(errs, fmt.Errorf("transactions.unanswered_timeout (%s) must not exceed transactions.timeout (%s)",
			c.Transactions.UnansweredTimeout, c.Transactions.Timeout))
	}
	if c.Duplicates.MaxEntries < 0 {
		errs = append(errs, errors.New("duplicates.max_entries must not be negative"))
	}
	if c.Duplicates.MaxEntries > 0 && c.Duplicates.Window <= 0 {
		errs = append(errs, errors.New("duplicates.window must be positive"))
	}
	if c.Scanner.MaxSources < 1 {
		errs = append(errs, errors.New("scanner.max_sources must be at least 1"))
	}
	for i, ua := range c.Scanner.UserAgents {
		if strings.TrimSpace(ua) == "" {
			errs = append(errs, fmt.Errorf("scanner.user_agents[%d] is empty", i))
		}
	}
	f := c.Scanner.Flood
	if f.Threshold < 1 {
		errs = append(errs, errors.New("scanner.flood.threshold must be at least 1"))
	}
	if f.Window <= 0 {
		errs = append(errs, errors.New("scanner.flood.window must be positive"))
	}
	for i, m := range f.Methods {
		if m == "" || strings.ToUpper(m) != m {
			errs = append(errs, fmt.Errorf("scanner.flood.methods[%d]: %q is not an upper-case SIP method", i, m))
		}
	}
	if _, err := parsePrefixes(f.ExcludeSources); err != nil {
		errs = append(errs, fmt.Errorf("scanner.flood.exclude_sources: %w", err))
	}
	return errors.Join(errs...)
}

func validBounds(name string, b []float64) error {
	if len(b) == 0 {
		return fmt.Errorf("%s: needs at least one bound", name)
	}
	for i, v := range b {
		if v <= 0 || (i > 0 && v <= b[i-1]) {
			return fmt.Errorf("%s: bounds must be positive and increasing (%v)", name, b)
		}
	}
	return nil
}

// parsePrefixes accepts "10.0.0.1" and "10.0.0.0/8" forms.
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a prefix", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
