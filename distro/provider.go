// Package distro ships the otelcol-siphon configurations inside the binary.
// Its confmap provider serves them under the "siphon" scheme, so
//
//	otelcol-siphon --config siphon:config.yaml
//
// starts the appliance on its default configuration from any directory. An
// unknown name fails with the list of embedded names.
package distro

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/confmap"
)

// Scheme is the URI scheme of the embedded configurations.
const Scheme = "siphon"

// HealthGate is the flag every launch of otelcol-siphon passes (deploy/,
// the demo, the tests): with it health_check answers from the components'
// status, so a receiver whose listener died turns it unhealthy (the shipped
// configs' component_health block).
const HealthGate = "--feature-gates=+extension.healthcheck.useComponentStatus"

//go:embed *.yaml
var configs embed.FS

// Names lists the embedded configurations.
func Names() []string {
	entries, _ := fs.ReadDir(configs, ".")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// Config returns an embedded configuration by file name.
func Config(name string) ([]byte, error) {
	b, err := configs.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%s: no embedded config %q (have: %s)", Scheme, name, strings.Join(Names(), ", "))
	}
	return b, nil
}

// NewFactory returns the provider factory for the builder.
func NewFactory() confmap.ProviderFactory {
	return confmap.NewProviderFactory(func(confmap.ProviderSettings) confmap.Provider { return provider{} })
}

type provider struct{}

func (provider) Retrieve(_ context.Context, uri string, _ confmap.WatcherFunc) (*confmap.Retrieved, error) {
	name, ok := strings.CutPrefix(uri, Scheme+":")
	if !ok {
		return nil, fmt.Errorf("%q uri is not supported by the %q provider", uri, Scheme)
	}
	b, err := Config(name)
	if err != nil {
		return nil, err
	}
	return confmap.NewRetrievedFromYAML(b)
}

func (provider) Scheme() string { return Scheme }

func (provider) Shutdown(context.Context) error { return nil }
