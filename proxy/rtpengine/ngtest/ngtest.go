// Package ngtest is an NG control endpoint for unit tests: a real UDP
// socket on loopback that decodes each request, records it and answers as
// its handler says (by default as a minimal RTPEngine would: offer and
// answer return an SDP on 127.0.0.1 with a port of its own, delete
// "ok", ping "pong"). System tests use Debian's rtpengine instead
// (internal/testenv/rtpengine).
package ngtest

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/proxy/rtpengine"
)

// Request is one request datagram as received.
type Request struct {
	Cookie string
	Msg    rtpengine.Dict
}

// Command is the request's "command".
func (r Request) Command() string { return rtpengine.String(r.Msg, "command") }

// Handler answers a request: the reply dictionary, or nil to stay silent.
type Handler func(r Request, n int) rtpengine.Dict

// Server is one fake engine.
type Server struct {
	Addr string
	pc   net.PacketConn
	done chan struct{}

	mu      sync.Mutex
	handler Handler
	got     []Request
	port    int
	wrote   chan struct{} // closed at the next request
}

// FirstPort is the first media port Engine hands out; each offer or
// answer takes the next even one.
const FirstPort = 40000

// Start listens on a loopback port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ngtest: %v", err)
	}
	s := &Server{Addr: pc.LocalAddr().String(), pc: pc, done: make(chan struct{}), port: FirstPort}
	s.handler = s.Engine
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server.
func (s *Server) Close() {
	_ = s.pc.Close()
	<-s.done
}

// Handle replaces the handler.
func (s *Server) Handle(h Handler) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// Silent is a handler that never answers (an engine that is down but
// whose port takes datagrams).
func Silent(Request, int) rtpengine.Dict { return nil }

// Refuse is a handler that answers every request with an error.
func Refuse(reason string) Handler {
	return func(Request, int) rtpengine.Dict {
		return rtpengine.Dict{"result": "error", "error-reason": reason}
	}
}

// SDP is the body Engine returns for a media port.
func SDP(port int) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp:%d\r\n", port, port+1)
}

// Engine is the default handler: offer and answer get SDP(next port),
// delete and the rest "ok", ping "pong".
func (s *Server) Engine(r Request, _ int) rtpengine.Dict {
	switch r.Command() {
	case "ping":
		return rtpengine.Dict{"result": "pong"}
	case "offer", "answer":
		s.mu.Lock()
		port := s.port
		s.port += 2
		s.mu.Unlock()
		return rtpengine.Dict{"result": "ok", "sdp": SDP(port)}
	}
	return rtpengine.Dict{"result": "ok"}
}

func (s *Server) serve() {
	defer close(s.done)
	buf := make([]byte, 65535)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		cookie, msg, err := rtpengine.ParseDatagram(buf[:n])
		if err != nil {
			continue
		}
		r := Request{Cookie: cookie, Msg: msg}
		s.mu.Lock()
		s.got = append(s.got, r)
		count, h := len(s.got), s.handler
		if s.wrote != nil {
			close(s.wrote)
			s.wrote = nil
		}
		s.mu.Unlock()
		reply := h(r, count)
		if reply == nil {
			continue
		}
		b, err := rtpengine.Encode(reply)
		if err != nil {
			panic(fmt.Sprintf("ngtest: reply %v: %v", reply, err))
		}
		_, _ = s.pc.WriteTo(append([]byte(cookie+" "), b...), from)
	}
}

// Requests returns what was received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.got...)
}

// Commands lists the requests' commands, in order.
func (s *Server) Commands() []string {
	var out []string
	for _, r := range s.Requests() {
		out = append(out, r.Command())
	}
	return out
}

// Wait returns the i-th request (from 0) once received, failing the test
// after timeout.
func (s *Server) Wait(t testing.TB, i int, timeout time.Duration) Request {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		if len(s.got) > i {
			r := s.got[i]
			s.mu.Unlock()
			return r
		}
		if s.wrote == nil {
			s.wrote = make(chan struct{})
		}
		wrote, have := s.wrote, len(s.got)
		s.mu.Unlock()
		select {
		case <-wrote:
		case <-deadline:
			t.Fatalf("ngtest %s: no request #%d within %s (have %d)", s.Addr, i+1, timeout, have)
		}
	}
}
