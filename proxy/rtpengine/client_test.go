package rtpengine_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/siphon-otel/siphon-otel/proxy/rtpengine"
	"github.com/siphon-otel/siphon-otel/proxy/rtpengine/ngtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// observed records the client's Observe calls.
type observed struct {
	mu  sync.Mutex
	got []string // "command instance result"
}

func (o *observed) observe(command, instance string, r rtpengine.Result, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, command+" "+instance+" "+string(r))
}

func (o *observed) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.got...)
}

func newClient(t *testing.T, sel rtpengine.Selection, timeout time.Duration, instances ...string) (*rtpengine.Client, *observed) {
	t.Helper()
	o := &observed{}
	c, err := rtpengine.New(rtpengine.Options{Instances: instances, Selection: sel, Timeout: timeout, Observe: o.observe})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c, o
}

// closedPort is a loopback UDP port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close())
	return addr
}

// TestHashSelection: a Call-ID keeps its instance while the set's health
// stays the same; an instance going down moves only its own calls, each
// to the next healthy instance in the configured order.
func TestHashSelection(t *testing.T) {
	addrs := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	c, _ := newClient(t, rtpengine.Hash, time.Second, addrs...)
	first := map[string]string{}
	per := map[string]int{}
	for i := range 300 {
		id := fmt.Sprintf("call-%d@example.com", i)
		order := c.Order(id)
		require.Len(t, order, 3)
		first[id] = order[0]
		per[order[0]]++
		assert.Equal(t, order, c.Order(id), "stable")
	}
	for _, a := range addrs {
		assert.Greater(t, per[a], 50, "every instance takes a share: %v", per)
	}
	c.SetHealth(map[string]bool{addrs[0]: true, addrs[1]: false, addrs[2]: true})
	for id, was := range first {
		now := c.Order(id)
		require.Len(t, now, 2)
		if was != addrs[1] {
			assert.Equal(t, was, now[0], "%s stays where it was", id)
		} else {
			assert.Equal(t, addrs[2], now[0], "%s moves to the next healthy instance", id)
		}
	}
	c.SetHealth(map[string]bool{addrs[1]: true})
	for id, was := range first {
		assert.Equal(t, was, c.Order(id)[0], "back up: %s returns", id)
	}
}

func TestRoundRobinSelection(t *testing.T) {
	addrs := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	c, _ := newClient(t, rtpengine.RoundRobin, time.Second, addrs...)
	var firsts []string
	for range 6 {
		firsts = append(firsts, c.Order("same-call-id")[0])
	}
	assert.Equal(t, append(append([]string(nil), addrs...), addrs...), firsts, "in turn, whatever the Call-ID")
	c.SetHealth(map[string]bool{addrs[0]: false})
	for range 4 {
		assert.NotContains(t, c.Order("x"), addrs[0], "a down instance takes no new call")
	}
	c.SetHealth(map[string]bool{addrs[0]: false, addrs[1]: false, addrs[2]: false})
	assert.Empty(t, c.Order("x"))
	_, _, err := c.Request(context.Background(), "x", "", true, rtpengine.Dict{"command": "offer"})
	assert.ErrorIs(t, err, rtpengine.ErrNoInstance)
}

// TestRequestFailover: the selected instance does not answer (silent, or
// its port closed): the offer goes to the next one, the silent instance
// leaves the rotation until a health report brings it back, and each try
// is observed.
func TestRequestFailover(t *testing.T) {
	for _, tt := range []struct {
		name string
		dead func(t *testing.T) string
	}{
		{"silent", func(t *testing.T) string { s := ngtest.Start(t); s.Handle(ngtest.Silent); return s.Addr }},
		{"port closed", closedPort},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dead, live := tt.dead(t), ngtest.Start(t)
			c, o := newClient(t, rtpengine.RoundRobin, 300*time.Millisecond, dead, live.Addr)
			reply, instance, err := c.Request(context.Background(), "call-1", "", true, rtpengine.Dict{"command": "offer", "call-id": "call-1"})
			require.NoError(t, err)
			assert.Equal(t, live.Addr, instance)
			assert.Equal(t, ngtest.SDP(ngtest.FirstPort), rtpengine.String(reply, "sdp"))
			assert.Equal(t, []string{"offer " + dead + " timeout", "offer " + live.Addr + " ok"}, o.all())
			assert.False(t, c.Healthy(dead), "out of rotation")
			assert.Equal(t, []string{live.Addr}, c.Order("call-2"))

			c.SetHealth(map[string]bool{dead: true, live.Addr: true})
			assert.True(t, c.Healthy(dead), "the next ping round decides")
		})
	}
}

// TestRequestBound: a call's answer and delete go to the instance holding
// it and nowhere else, even when it does not answer; an offer (a
// re-INVITE) may move to another instance.
func TestRequestBound(t *testing.T) {
	a, b := ngtest.Start(t), ngtest.Start(t)
	c, _ := newClient(t, rtpengine.RoundRobin, 200*time.Millisecond, a.Addr, b.Addr)
	_, instance, err := c.Request(context.Background(), "x", b.Addr, false, rtpengine.Dict{"command": "answer"})
	require.NoError(t, err)
	assert.Equal(t, b.Addr, instance)
	assert.Empty(t, a.Requests())

	b.Handle(ngtest.Silent)
	_, _, err = c.Request(context.Background(), "x", b.Addr, false, rtpengine.Dict{"command": "delete"})
	require.Error(t, err)
	assert.Empty(t, a.Requests(), "no failover for a call's own commands")
	c.SetHealth(map[string]bool{b.Addr: true})

	_, instance, err = c.Request(context.Background(), "x", b.Addr, true, rtpengine.Dict{"command": "offer"})
	require.NoError(t, err)
	assert.Equal(t, a.Addr, instance, "an offer fails over")
}

// TestRequestRefused: the engine answers with an error: that is the
// answer (no other instance is asked), as an *EngineError with its reason.
func TestRequestRefused(t *testing.T) {
	a, b := ngtest.Start(t), ngtest.Start(t)
	a.Handle(ngtest.Refuse("Failed to parse SDP"))
	c, o := newClient(t, rtpengine.Hash, time.Second, a.Addr, b.Addr)
	_, instance, err := c.Request(context.Background(), "x", a.Addr, true, rtpengine.Dict{"command": "offer"})
	require.Error(t, err)
	assert.True(t, rtpengine.IsEngineError(err))
	assert.ErrorContains(t, err, "Failed to parse SDP")
	assert.Equal(t, a.Addr, instance)
	assert.Empty(t, b.Requests())
	assert.Equal(t, []string{"offer " + a.Addr + " error"}, o.all())
	assert.True(t, c.Healthy(a.Addr), "an engine that answers stays in rotation")
}

// TestRetransmit: a lost request is sent again with the same cookie (the
// engine answers a repeated cookie from its cache); foreign and late
// replies are ignored.
func TestRetransmit(t *testing.T) {
	s := ngtest.Start(t)
	s.Handle(func(_ ngtest.Request, n int) rtpengine.Dict {
		if n == 1 {
			return nil // the first datagram is "lost"
		}
		return rtpengine.Dict{"result": "ok", "n": n}
	})
	c, o := newClient(t, rtpengine.RoundRobin, 3*time.Second, s.Addr)
	reply, err := c.Send(context.Background(), s.Addr, rtpengine.Dict{"command": "delete", "call-id": "x"})
	require.NoError(t, err)
	assert.Equal(t, int64(2), reply["n"])
	got := s.Requests()
	require.Len(t, got, 2)
	assert.Equal(t, got[0].Cookie, got[1].Cookie, "a retransmission keeps its cookie")
	assert.Equal(t, got[0].Msg, got[1].Msg)
	assert.Equal(t, []string{"delete " + s.Addr + " ok"}, o.all(), "one command, however often sent")
}

// TestConcurrentRequests: replies find their requests by cookie when many
// are in flight on one socket.
func TestConcurrentRequests(t *testing.T) {
	s := ngtest.Start(t)
	s.Handle(func(r ngtest.Request, _ int) rtpengine.Dict {
		return rtpengine.Dict{"result": "ok", "echo": rtpengine.String(r.Msg, "call-id")}
	})
	c, _ := newClient(t, rtpengine.RoundRobin, 3*time.Second, s.Addr)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "call-" + strconv.Itoa(i)
			reply, err := c.Send(context.Background(), s.Addr, rtpengine.Dict{"command": "query", "call-id": id})
			if err == nil && rtpengine.String(reply, "echo") != id {
				err = fmt.Errorf("%s got the reply of %s", id, rtpengine.String(reply, "echo"))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}

func TestNewErrors(t *testing.T) {
	_, err := rtpengine.New(rtpengine.Options{})
	assert.ErrorContains(t, err, "no instance")
	_, err = rtpengine.New(rtpengine.Options{Instances: []string{"not an address"}})
	assert.Error(t, err)
	c, err := rtpengine.New(rtpengine.Options{Instances: []string{"127.0.0.1:1"}})
	require.NoError(t, err)
	_, err = c.Send(context.Background(), "127.0.0.1:2", rtpengine.Dict{"command": "ping"})
	assert.ErrorContains(t, err, "not a configured instance")
	require.NoError(t, c.Close())
}
