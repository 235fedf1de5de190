package demo

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestDefaultPortsDistinct: every fixed port of the demo is its own and
// none lies in rtpengine's media range (the Jaeger and rtpengine parts
// were added side by side, and a query port once landed inside it).
func TestDefaultPortsDistinct(t *testing.T) {
	p := DefaultPorts
	v := reflect.ValueOf(p)
	seen := map[int]string{}
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if name == "MediaMin" || name == "MediaMax" {
			continue
		}
		port := int(v.Field(i).Int())
		assert.Positive(t, port, name)
		if other, dup := seen[port]; dup {
			t.Errorf("%s and %s share port %d", name, other, port)
		}
		seen[port] = name
		if port >= p.MediaMin && port <= p.MediaMax {
			t.Errorf("%s (%d) is inside the media range %d-%d", name, port, p.MediaMin, p.MediaMax)
		}
	}
	assert.Less(t, p.MediaMin, p.MediaMax)
}
