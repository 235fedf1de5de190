// Package hepsink is a HEP capture node for tests: it listens on a real
// loopback socket (UDP, TCP or TLS), decodes every packet and keeps it.
package hepsink

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/hep"
)

// Server collects the packets it receives.
type Server struct {
	t       testing.TB
	addr    string
	ln      net.Listener
	udp     net.PacketConn
	mu      sync.Mutex
	packets []hep.Packet
	errs    []error
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// NewUDP listens for HEP datagrams on addr (use "127.0.0.1:0" for any port).
func NewUDP(t testing.TB, addr string) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, udp: pc, addr: pc.LocalAddr().String(), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.keep(buf[:n])
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// NewStream listens for HEP over TCP on addr, or TLS when tlsCfg is set.
func NewStream(t testing.TB, addr string, tlsCfg *tls.Config) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s := &Server{t: t, ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				r := hep.NewStreamReader(c, 0, false, 0)
				for {
					b, err := r.Next()
					if err != nil {
						return
					}
					s.keep(b)
				}
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *Server) keep(raw []byte) {
	var p hep.Packet
	err := p.Decode(bytes.Clone(raw))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs = append(s.errs, err)
		return
	}
	s.packets = append(s.packets, p)
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// Packets returns the packets received so far.
func (s *Server) Packets() []hep.Packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hep.Packet(nil), s.packets...)
}

// Errors returns decode errors seen so far.
func (s *Server) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// WaitFor waits until at least n packets arrived, failing the test after
// timeout.
func (s *Server) WaitFor(n int, timeout time.Duration) []hep.Packet {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p := s.Packets()
		if len(p) >= n {
			return p
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("hepsink: %d of %d packets after %s (decode errors: %v)", len(p), n, timeout, errors.Join(s.Errors()...))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Close stops listening and closes every connection.
func (s *Server) Close() {
	if s.ln != nil {
		_ = s.ln.Close()
	}
	if s.udp != nil {
		_ = s.udp.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
