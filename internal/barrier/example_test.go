package barrier_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/customerkey/customerkey/internal/barrier"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "barrier-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	inner, err := bolt.Open(filepath.Join(dir, "data.db"), bolt.Options{})
	if err != nil {
		log.Fatal(err)
	}
	sealer, err := barrier.LoadOrCreateKeyFile(filepath.Join(dir, "root.key"))
	if err != nil {
		log.Fatal(err)
	}
	defer sealer.Close()
	b, err := barrier.Open(ctx, inner, sealer, nil) // b now owns inner
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	// Keys stay readable in the data file: use IDs, never secrets, in them.
	err = b.Update(ctx, func(tx storage.Tx) error {
		_, err := tx.Put("example/tenant-42/note", []byte("encrypted at rest"), storage.MustNotExist)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	e, err := storage.Get(ctx, b, "example/tenant-42/note")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (version %d)\n", e.Value, e.Version)
	// Output: encrypted at rest (version 1)
}
