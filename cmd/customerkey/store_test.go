package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/storage/bolt"
)

// TestStoreMigrateFlags runs `store migrate` in-process up to the point
// where each flag shows in the outcome; the copy itself is tested in
// internal/app.
func TestStoreMigrateFlags(t *testing.T) {
	dir := t.TempDir()
	b, err := bolt.Open(filepath.Join(dir, "customerkey.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	closed := "postgres://ck@127.0.0.1:" + freePort(t) + "/ck?sslmode=disable"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, `required flag(s) "from", "to" not set`},
		{"missing source", []string{"--from", "bolt:" + filepath.Join(dir, "none.db"), "--to", closed}, "there is no store at " + filepath.Join(dir, "none.db")},
		{"password file", []string{"--from", "bolt:" + dir, "--to", closed, "--to-password-file", filepath.Join(dir, "pw")}, "cannot read the database password file"},
		{"unreachable target", []string{"--from", "bolt:" + dir, "--to", closed, "--connect-timeout", "1s"}, "cannot reach the database ck@127.0.0.1:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := storeCmd()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(append([]string{"migrate"}, tc.args...))
			start := time.Now()
			err := cmd.ExecuteContext(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("store migrate %v err = %v, want it to mention %q", tc.args, err, tc.want)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("store migrate %v took %v; --connect-timeout was not honoured", tc.args, d)
			}
		})
	}
}

// TestServeStoreFlags checks that serve's store flags reach the
// configuration: each bad value is refused before anything starts.
func TestServeStoreFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--store", "mysql://ck@db/ck"}, "store: must be bolt or a postgres:// URL"},
		{[]string{"--store-password-file", "/run/secrets/pg"}, "store-password-file: is set, but store is bolt"},
	}
	for _, tc := range tests {
		cmd := serveCmd()
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		cmd.SetArgs(append([]string{"--data-dir", t.TempDir()}, tc.args...))
		err := cmd.ExecuteContext(t.Context())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}
