package rtpengine_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/proxy/rtpengine"
)

// TestPingRejectsForeignReply answers with the wrong body: an error, not up.
func TestPingRejectsForeignReply(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	go func() {
		buf := make([]byte, 512)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		cookie, _, _ := strings.Cut(string(buf[:n]), " ")
		_, _ = pc.WriteTo([]byte(cookie+" d6:result5:errore"), from)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = rtpengine.Ping(ctx, pc.LocalAddr().String())
	assert.ErrorContains(t, err, "unexpected reply")
}
