package postgres_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	"github.com/customerkey/customerkey/internal/storage/postgres"
)

// BenchmarkStore compares the two backends on the port's operations, each
// in its own transaction as the domain packages use them. Values are 256
// bytes, about a sealed key record; the keyspace is 1000 keys.
//
//	CUSTOMERKEY_TEST_POSTGRES=postgres://… go test -run '^$' -bench Store ./internal/storage/postgres/
func BenchmarkStore(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) storage.Backend
	}{
		{"bolt", func(b *testing.B) storage.Backend {
			st, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			return st
		}},
		{"postgres", func(b *testing.B) storage.Backend {
			return open(b, postgres.Options{URL: scratchURL(b)})
		}},
	}
	const keys = 1000
	value := bytes.Repeat([]byte("v"), 256)
	key := func(i int) string { return fmt.Sprintf("bench/%06d", i%keys) }
	fill := func(b *testing.B, st storage.Backend) {
		err := st.Update(b.Context(), func(tx storage.Tx) error {
			for i := range keys {
				if _, err := tx.Put(key(i), value, storage.AnyVersion); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, be := range backends {
		b.Run(be.name+"/Put", func(b *testing.B) {
			st := be.open(b)
			i := 0
			for b.Loop() {
				err := st.Update(b.Context(), func(tx storage.Tx) error {
					_, err := tx.Put(key(i), value, storage.AnyVersion)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(be.name+"/PutParallel", func(b *testing.B) {
			st := be.open(b)
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := key(int(n.Add(1)))
					err := st.Update(b.Context(), func(tx storage.Tx) error {
						_, err := tx.Put(k, value, storage.AnyVersion)
						return err
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(be.name+"/Get", func(b *testing.B) {
			st := be.open(b)
			fill(b, st)
			i := 0
			for b.Loop() {
				if _, err := storage.Get(b.Context(), st, key(i)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(be.name+"/List100", func(b *testing.B) {
			st := be.open(b)
			fill(b, st)
			i := 0
			for b.Loop() {
				err := st.View(b.Context(), func(tx storage.Tx) error {
					es, err := tx.List("bench/", key(i*100), 100)
					if err == nil && len(es) == 0 {
						err = fmt.Errorf("List after %s returned nothing", key(i*100))
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
