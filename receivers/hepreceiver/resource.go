package hepreceiver

import (
	"github.com/siphon-otel/siphon-otel/internal/hep"
	"github.com/siphon-otel/siphon-otel/internal/record/heprecord"
)

// nodeID names the node a packet came from: its node name (chunk 0x13)
// when sent, else its capture agent id (chunk 0x0c); records of one node
// share a resource.
func nodeID(p *hep.Packet, in *heprecord.Interner) string {
	switch {
	case p.NodeName != nil:
		return in.Bytes(p.NodeName)
	case p.Has(hep.HasCaptureID):
		return in.Uint(p.CaptureID)
	}
	return ""
}
