package sipcallconnector

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/testenv/sipflow"
)

func TestAnsweredCallTree(t *testing.T) {
	h := startConnector(t, testConfig())
	ld := sipflow.Logs("sbc-1")
	f := sipflow.New(t, ld, t0, "call-1")
	f.Invite(0)
	f.Answer(1.2, sipflow.AddrB, 180, "b1")
	f.Answer(5, sipflow.AddrB, 200, "b1")
	f.ACK2xx(5.1, 1, "b1")
	f.InDialog(60, "BYE", 2, "b1", true)
	h.replay(t, ld)
	h.drain()
	spans := h.spans()
	t.Log("\n" + tree(spans))
	require.Len(t, spans, 7)
	assert.Zero(t, h.state(t, tableCalls))
}
