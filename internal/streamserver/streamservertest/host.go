// Package streamservertest holds what the receivers' listener tests share:
// a host that records the status events a component reports.
package streamservertest

import (
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
)

// Host is a component.Host that records what is reported to it: it
// implements componentstatus.Reporter, as the collector's host does.
type Host struct {
	component.Host
	mu     sync.Mutex
	events []*componentstatus.Event
}

var _ componentstatus.Reporter = (*Host)(nil)

// NewHost returns a Host with no extensions.
func NewHost() *Host { return &Host{Host: componenttest.NewNopHost()} }

// Report records ev; components call it from their own goroutines.
func (h *Host) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

// Events returns what was reported so far, in order.
func (h *Host) Events() []*componentstatus.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*componentstatus.Event(nil), h.events...)
}
