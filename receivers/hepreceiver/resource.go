package hepreceiver

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/logmodel"
)

// nodeID names the node a packet came from: its node name (chunk 0x13)
// when sent, else its capture agent id (chunk 0x0c); records of one node
// share a resource.
func nodeID(p *hep.Packet, in *logmodel.Interner) string {
	switch {
	case p.NodeName != nil:
		return in.Bytes(p.NodeName)
	case p.Has(hep.HasCaptureID):
		return in.Uint(p.CaptureID)
	}
	return ""
}

// resourceAttrs builds the function that fills a node's resource.
func resourceAttrs(cfg ResourceConfig) func(pcommon.Map, string) {
	return func(m pcommon.Map, node string) {
		m.PutStr(logmodel.AttrServiceName, cfg.ServiceName)
		if node != "" {
			m.PutStr(logmodel.AttrServiceInstanceID, node)
		}
		for k, v := range cfg.Attributes {
			m.PutStr(k, v)
		}
		for k, v := range cfg.Nodes[node] {
			m.PutStr(k, v)
		}
	}
}
