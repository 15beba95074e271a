package cli

import (
	"crypto/rsa"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBenchEndpointValidation(t *testing.T) {
	tests := []struct {
		name      string
		endpoints []string
		baseline  bool // --baseline-only
		want      string
	}{
		{"none", nil, false, ""},
		{"one", []string{"https://localhost:8443"}, false, ""},
		{"two nodes", []string{"https://10.0.0.1:8443", "https://node-b.example.com"}, false, ""},
		{"trailing slash", []string{"https://localhost:8443/"}, false, ""},
		{"http", []string{"http://localhost:8443"}, false, `--endpoint "http://localhost:8443": use the https URL of a node`},
		{"no host", []string{"https://:8443"}, false, "use the https URL of a node"},
		{"path", []string{"https://localhost:8443/v1"}, false, "use the https URL of a node"},
		{"query", []string{"https://localhost:8443?x=1"}, false, "use the https URL of a node"},
		{"user", []string{"https://u:p@localhost:8443"}, false, "use the https URL of a node"},
		{"not a URL", []string{"localhost:8443"}, false, "use the https URL of a node"},
		{"second bad", []string{"https://localhost:1", "ftp://x"}, false, `--endpoint "ftp://x"`},
		{"with --baseline-only", []string{"https://localhost:8443"}, true, "--baseline-only loads none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := benchOptions{vault: "v", kty: "RSA", keySizes: []int{2048}, ops: []string{"unwrap"}, concurrency: []int{8},
				duration: time.Second, rounds: 1, baseline: true, signAlg: "RS256", proto: "1.1", endpoints: tc.endpoints, baselineOnly: tc.baseline}
			err := o.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// fakeNodes are two nodes of one fake deployment: the same vault, the same
// certificate and the same public URL (node 0's), on two ports. Each counts
// the unwrap requests it served.
type fakeNodes struct {
	*fakeVaultServer
	urls    []string
	unwraps []atomic.Int64
}

func startFakeNodes(t *testing.T) *fakeNodes {
	t.Helper()
	cert, _, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNodes{fakeVaultServer: &fakeVaultServer{keys: map[string]*rsa.PrivateKey{}}, unwraps: make([]atomic.Int64, 2)}
	for i := range 2 {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/unwrapkey") {
				f.unwraps[i].Add(1)
			}
			f.fakeVaultServer.ServeHTTP(w, r)
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		f.urls = append(f.urls, fmt.Sprintf("https://localhost:%d", srv.Listener.Addr().(*net.TCPAddr).Port))
	}
	// The deployment's public URL is node 0's: Resource Manager answers
	// with vault URLs on its port, and the token's resource names it.
	f.url = f.urls[0]
	f.resource = "https://vault.localhost:" + f.urls[0][strings.LastIndexByte(f.urls[0], ':')+1:]
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestBenchRoundRobinOverNodes: with two --endpoint values the measured
// requests go to both nodes, with the deployment's URLs (the fake vault
// refuses any other host), and the setup goes to the first.
func TestBenchRoundRobinOverNodes(t *testing.T) {
	f := startFakeNodes(t)
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	t.Setenv("AZURE_TENANT_ID", "t1")
	t.Setenv("AZURE_CLIENT_ID", "app")
	t.Setenv("AZURE_CLIENT_SECRET", "s3cret")
	t.Setenv("AZURE_SUBSCRIPTION_ID", "")

	rep, _ := runBenchCmd(t, "--endpoint", f.urls[0], "--endpoint", f.urls[1], "--ca-file", f.caFile, "--vault", "bv", "--op", "unwrap",
		"--concurrency", "4", "--duration", "300ms", "--warmup", "0s", "--baseline=false", "-o", "json")
	if !slices.Equal(rep.Nodes, f.urls) || rep.Endpoint != f.urls[0] {
		t.Errorf("report endpoint %q, nodes %q; want endpoint %s and nodes %q", rep.Endpoint, rep.Nodes, f.urls[0], f.urls)
	}
	if len(rep.Results) != 1 || rep.Results[0].Ops == 0 || len(rep.Results[0].Errors) != 0 {
		t.Fatalf("results %+v, want one server run without errors", rep.Results)
	}
	// Node 0 also served the one unwrap that checks the key before the run.
	n0, n1 := f.unwraps[0].Load()-1, f.unwraps[1].Load()
	if n0 <= 0 || n1 <= 0 || int(n0+n1) != rep.Results[0].Ops {
		t.Errorf("measured unwraps served: node 0 %d, node 1 %d; want both nodes to serve some and %d in all", n0, n1, rep.Results[0].Ops)
	}

	// One --endpoint is the endpoint alone, as before.
	f.unwraps[0].Store(0)
	f.unwraps[1].Store(0)
	rep, _ = runBenchCmd(t, "--endpoint", f.urls[1], "--ca-file", f.caFile, "--vault", "bv", "--op", "unwrap",
		"--concurrency", "2", "--ops", "10", "--warmup", "0s", "--baseline=false", "-o", "json")
	if rep.Endpoint != f.urls[1] || rep.Nodes != nil || len(rep.Results) != 1 || rep.Results[0].Ops != 10 {
		t.Errorf("one --endpoint: endpoint %q, nodes %q, results %+v; want %s alone and 10 ops", rep.Endpoint, rep.Nodes, rep.Results, f.urls[1])
	}
	if got := f.unwraps[1].Load(); got != 11 {
		t.Errorf("one --endpoint %s: node 1 served %d unwraps, want the check and the 10 measured", f.urls[1], got)
	}
}
