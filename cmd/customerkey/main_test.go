package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeLifecycle builds the binary and runs `customerkey serve` as a
// newcomer would: first start creates everything, /healthz answers, SIGTERM
// shuts down cleanly, and a second start reuses the data directory.
func TestServeLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "customerkey")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(t.TempDir(), "data")
	port := freePort(t)

	serve := func() (*exec.Cmd, *strings.Builder) {
		cmd := exec.Command(bin, "serve", "--data-dir", data, "--listen", "127.0.0.1:"+port, "--log-format", "json")
		var logs strings.Builder
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				logs.WriteString(sc.Text() + "\n")
			}
			close(done)
		}()
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
		return cmd, &logs
	}

	cmd, logs := serve()
	client := waitReady(t, data, port)
	creds := readCreds(t, data)
	if creds["endpoint"] != "https://localhost:"+port || !filepath.IsAbs(creds["caFile"]) {
		t.Errorf("operator.json = %v", creds)
	}
	resp, err := client.Get("https://localhost:" + port + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz = %v, %v", resp, err)
	}
	resp.Body.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(cmd, 20*time.Second); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, logs)
	}
	if strings.Contains(logs.String(), creds["clientSecret"]) {
		t.Error("the server log holds the operator's client secret")
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not structured JSON: %q", line)
		}
	}

	cmd2, logs2 := serve()
	waitReady(t, data, port)
	if got := readCreds(t, data); got["clientSecret"] != creds["clientSecret"] || got["tenantId"] != creds["tenantId"] {
		t.Error("the second start changed operator.json")
	}
	_ = cmd2.Process.Signal(syscall.SIGTERM)
	if err := waitExit(cmd2, 20*time.Second); err != nil {
		t.Fatalf("second serve after SIGTERM: %v\n%s", err, logs2)
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func readCreds(t *testing.T, data string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "operator.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitReady waits for operator.json and the CA, then for /healthz.
func waitReady(t *testing.T, data, port string) *http.Client {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		pem, err := os.ReadFile(filepath.Join(data, "ca.pem"))
		if err == nil {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool},
				DialContext: func(ctx context.Context, n, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, n, "127.0.0.1:"+port)
				}}}
			if resp, err := c.Get("https://localhost:" + port + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return c
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the server did not become ready within 60s")
	return nil
}

func waitExit(cmd *exec.Cmd, d time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		return err
	case <-time.After(d):
		return context.DeadlineExceeded
	}
}
