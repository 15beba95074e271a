package app_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/customerkey/customerkey/internal/identity"
)

// BenchmarkEncryptItemHandler runs a 4 KiB encrypt request through the
// server's whole handler (request id, routing, limits, token, scope,
// item key, seal, response) with warm caches, and, for comparison, a
// handler that only reads the body, seals it with AES-256-GCM and writes
// it, as bench's zero-logic baseline does. Neither includes TLS or HTTP
// parsing, which the two share: the difference is the server's own work
// per request, without the noise of a loaded machine that bench's ratios
// carry. Run it with
//
//	go test -run XXX -bench EncryptItemHandler -benchmem ./internal/app
func BenchmarkEncryptItemHandler(b *testing.B) {
	s := start(b, b.TempDir())
	c := s.newTenant(b, "Bench")
	cred := s.credential(b, c.TenantID, c.AdminApp.ClientID, c.AdminApp.ClientSecret)
	tok, err := token(context.Background(), cred, armScope)
	if err != nil {
		b.Fatal(err)
	}
	graphTok, err := token(context.Background(), cred, graphScope)
	if err != nil {
		b.Fatal(err)
	}
	sp := servicePrincipalOf(b, s, graphTok, c.AdminApp.ClientID)
	base := "/customerkey/v1/tenants/" + c.TenantID + "/encryption/scopes"
	if code := doJSON(b, s, tok, http.MethodPost, base, `{"name":"bench","principals":["`+sp+`"]}`, nil); code != http.StatusCreated {
		b.Fatalf("creating the scope = %d", code)
	}
	u, err := url.Parse(s.url)
	if err != nil {
		b.Fatal(err)
	}
	item := make([]byte, 4<<10)
	_, _ = rand.Read(item)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	block, _ := aes.NewCipher(key)
	zeroAEAD, _ := cipher.NewGCMWithRandomNonce(block)
	bufs := sync.Pool{New: func() any { return new([]byte) }}
	zero := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, out := bufs.Get().(*[]byte), bufs.Get().(*[]byte)
		defer bufs.Put(in)
		defer bufs.Put(out)
		buf := bytes.NewBuffer((*in)[:0])
		_, _ = buf.ReadFrom(r.Body)
		*in = buf.Bytes()
		*out = zeroAEAD.Seal((*out)[:0], nil, *in, nil)
		w.Header()["Content-Type"] = []string{"application/octet-stream"}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(*out))}
		_, _ = w.Write(*out)
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"server", s.Handler()}, {"zero", zero}} {
		// Each client reuses its request and response writer, so that
		// what is measured is the handler, not the harness.
		client := func() func() error {
			body := bytes.NewReader(item)
			req := httptest.NewRequest(http.MethodPost, base+"/bench/encrypt", nil)
			// As served on one keep-alive connection (http.Server.ConnContext).
			req = req.WithContext(identity.WithConnectionMemo(context.Background(), nil))
			req.Host = u.Host
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/octet-stream")
			req.ContentLength = int64(len(item))
			w := &discardWriter{h: http.Header{}}
			return func() error {
				body.Reset(item)
				req.Body = io.NopCloser(body)
				clear(w.h)
				w.code, w.n = 0, 0
				tc.h.ServeHTTP(w, req)
				if w.code != http.StatusOK || w.n < len(item) {
					return fmt.Errorf("%s: encrypt = %d, %d bytes", tc.name, w.code, w.n)
				}
				return nil
			}
		}
		if err := client()(); err != nil { // also warms the scope cache
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(item)))
			b.ReportAllocs()
			serve := client()
			for b.Loop() {
				if err := serve(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.SetBytes(int64(len(item)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				serve := client()
				for pb.Next() {
					if err := serve(); err != nil {
						b.Error(err) // not Fatal: this is not the benchmark's goroutine
						return
					}
				}
			})
		})
	}
}

// discardWriter is a response writer that keeps the status and counts the
// body.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	return len(p), nil
}
