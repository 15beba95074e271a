package pki_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/pki"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

func TestLoadOrCreate(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now()
	o := pki.Options{DNSNames: []string{"localhost", "*.vault.localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		Now: func() time.Time { return now }, Rand: rand.Reader}
	b1, err := pki.LoadOrCreate(ctx, st, o)
	if err != nil {
		t.Fatalf("LoadOrCreate() err = %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(b1.CA)
	for _, name := range []string{"localhost", "kv1.vault.localhost", "127.0.0.1", "::1"} {
		if _, err := b1.Server.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("server certificate does not verify for %s: %v", name, err)
		}
	}
	b2, err := pki.LoadOrCreate(ctx, st, o)
	if err != nil || !b2.CA.Equal(b1.CA) || !slices.Equal(b2.Server.Certificate[0], b1.Server.Certificate[0]) {
		t.Errorf("second LoadOrCreate reissued: err %v", err)
	}
	// New names: same CA, new server certificate.
	o.DNSNames = append(o.DNSNames, "*.vault.example.com")
	b3, err := pki.LoadOrCreate(ctx, st, o)
	if err != nil || !b3.CA.Equal(b1.CA) || slices.Equal(b3.Server.Certificate[0], b1.Server.Certificate[0]) {
		t.Fatalf("LoadOrCreate with new names: err %v, same CA %v, reissued %v", err, b3.CA.Equal(b1.CA), !slices.Equal(b3.Server.Certificate[0], b1.Server.Certificate[0]))
	}
	if _, err := b3.Server.Leaf.Verify(x509.VerifyOptions{DNSName: "kv.vault.example.com", Roots: pool}); err != nil {
		t.Errorf("reissued certificate lacks the new name: %v", err)
	}
	// Close to expiry: renewed.
	now = b3.Server.Leaf.NotAfter.Add(-24 * time.Hour)
	b4, err := pki.LoadOrCreate(ctx, st, o)
	if err != nil || !b4.Server.Leaf.NotAfter.After(b3.Server.Leaf.NotAfter) {
		t.Errorf("certificate near expiry was not renewed: %v", err)
	}
}
