package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestServePprofLoopbackOnly(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:0", ":0", "example.com:0", "nonsense"} {
		if err := servePprof(t.Context(), addr, log); err == nil {
			t.Errorf("servePprof(%q) accepted a non-loopback address", addr)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := servePprof(ctx, "127.0.0.1:0", log); err != nil {
		t.Fatal(err)
	}
}

func TestServePprofServes(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const addr = "127.0.0.1:18671"
	if err := servePprof(ctx, addr, log); err != nil {
		t.Skipf("port busy: %v", err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(b) == 0 || strings.Contains(string(b), "404") {
		t.Errorf("status %d body %q", resp.StatusCode, b)
	}
}
