package siphoncdrreceiver

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"

	"github.com/siphon-otel/siphon-otel/distro"
)

// envDefaults serves ${env:NAME:-default} with its default, as the
// collector resolves a shipped config where nothing is set.
type envDefaults struct{}

func (envDefaults) Retrieve(_ context.Context, uri string, _ confmap.WatcherFunc) (*confmap.Retrieved, error) {
	_, def, _ := strings.Cut(strings.TrimPrefix(uri, "env:"), ":-")
	return confmap.NewRetrievedFromYAML([]byte(def))
}

func (envDefaults) Scheme() string                 { return "env" }
func (envDefaults) Shutdown(context.Context) error { return nil }

// TestShippedConfigsKeepTheLimits resolves every shipped config (distro/*.yaml,
// as embedded in the binary) with its defaults: each siphon_cdr receiver in
// it keeps the receiver's limits and timeouts (none is turned off), and a
// syslog listener beyond loopback is bound by allowed_sources.
func TestShippedConfigsKeepTheLimits(t *testing.T) {
	defaults := createDefaultConfig().(*Config)
	wantHTTP := defaults.HTTP.GetOrInsertDefault()
	wantStream := defaults.Syslog.GetOrInsertDefault().TCP.GetOrInsertDefault()
	seen := 0
	for _, name := range distro.Names() {
		t.Run(name, func(t *testing.T) {
			resolver, err := confmap.NewResolver(confmap.ResolverSettings{
				URIs: []string{distro.Scheme + ":" + name},
				ProviderFactories: []confmap.ProviderFactory{
					distro.NewFactory(),
					confmap.NewProviderFactory(func(confmap.ProviderSettings) confmap.Provider { return envDefaults{} }),
				},
				DefaultScheme: "env",
			})
			require.NoError(t, err)
			conf, err := resolver.Resolve(context.Background())
			require.NoError(t, err)
			receivers, err := conf.Sub("receivers")
			require.NoError(t, err)
			for id := range receivers.ToStringMap() {
				if id != "siphon_cdr" && !strings.HasPrefix(id, "siphon_cdr/") {
					continue
				}
				seen++
				sub, err := receivers.Sub(id)
				require.NoError(t, err)
				cfg := createDefaultConfig().(*Config)
				require.NoError(t, sub.Unmarshal(cfg))
				require.NoError(t, confmap.Validate(cfg), id)
				if h := cfg.HTTP.Get(); h != nil {
					want := wantHTTP
					assert.Equal(t, want.ReadHeaderTimeout, h.ReadHeaderTimeout, id)
					assert.Equal(t, want.ReadTimeout, h.ReadTimeout, id)
					assert.Equal(t, want.WriteTimeout, h.WriteTimeout, id)
					assert.Equal(t, want.IdleTimeout, h.IdleTimeout, id)
					assert.Equal(t, want.MaxRequestBodySize, h.MaxRequestBodySize, id)
					assert.Equal(t, want.MaxInFlightBytes, h.MaxInFlightBytes, id)
					assert.Equal(t, want.MaxRecordsPerRequest, h.MaxRecordsPerRequest, id)
					assert.Equal(t, want.CompressionAlgorithms, h.CompressionAlgorithms, id)
				}
				s := cfg.Syslog.Get()
				if s == nil {
					continue
				}
				for transport, stream := range map[string]*SyslogTCPConfig{"tcp": s.TCP.Get(), "tls": tlsStream(s)} {
					if stream != nil {
						assert.Equal(t, wantStream.IdleTimeout, stream.IdleTimeout, "%s: syslog %s", id, transport)
						assert.Equal(t, wantStream.MaxConnections, stream.MaxConnections, "%s: syslog %s", id, transport)
					}
				}
				endpoints := []string{}
				if u := s.UDP.Get(); u != nil {
					endpoints = append(endpoints, u.Endpoint)
				}
				if tcp := s.TCP.Get(); tcp != nil {
					endpoints = append(endpoints, tcp.Endpoint)
				}
				if tls := tlsStream(s); tls != nil {
					endpoints = append(endpoints, tls.Endpoint)
				}
				for _, ep := range endpoints {
					if !loopback(t, ep) {
						assert.NotEmpty(t, s.AllowedSources, "%s: syslog on %s takes CDRs from anyone", id, ep)
					}
				}
				if name == "siphon-fleet.yaml" {
					assert.Equal(t, []string{"127.0.0.0/8"}, s.AllowedSources, "the fleet's syslog: loopback unless opened")
				}
			}
		})
	}
	assert.Positive(t, seen, "the shipped configs have siphon_cdr receivers")
}

func tlsStream(s *SyslogConfig) *SyslogTCPConfig {
	if t := s.TLS.Get(); t != nil {
		return &t.SyslogTCPConfig
	}
	return nil
}

func loopback(t *testing.T, endpoint string) bool {
	host, _, err := net.SplitHostPort(endpoint)
	require.NoError(t, err)
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
