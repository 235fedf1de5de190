// Package pki creates a throwaway CA with server and client
// certificates for loopback TLS tests.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// PKI holds the paths of the PEM files it wrote.
type PKI struct {
	CAFile, ServerCert, ServerKey, ClientCert, ClientKey string
}

// New writes a CA, a server certificate for 127.0.0.1, ::1 and localhost,
// and a client certificate into a temporary directory.
func New(t testing.TB) PKI {
	t.Helper()
	dir := t.TempDir()
	caKey, caCert, caDER := issue(t, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "siphon-otel test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	})
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pki := PKI{CAFile: write("ca.pem", "CERTIFICATE", caDER)}
	sKey, _, sDER := issue(t, caKey, caCert, &x509.Certificate{
		Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	pki.ServerCert = write("server.pem", "CERTIFICATE", sDER)
	pki.ServerKey = write("server-key.pem", "EC PRIVATE KEY", marshalKey(t, sKey))
	cKey, _, cDER := issue(t, caKey, caCert, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "siphon-node"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
	pki.ClientCert = write("client.pem", "CERTIFICATE", cDER)
	pki.ClientKey = write("client-key.pem", "EC PRIVATE KEY", marshalKey(t, cKey))
	return pki
}

var serial atomic.Int64

func issue(t testing.TB, parentKey *ecdsa.PrivateKey, parent, tmpl *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(serial.Add(1))
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, der
}

func marshalKey(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
