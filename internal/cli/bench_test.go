package cli

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// runBenchCmd runs `customerkey bench args...` on a fresh command tree
// (cobra keeps flag values between executions) and decodes its JSON.
func runBenchCmd(t *testing.T, args ...string) (benchReport, string) {
	t.Helper()
	root := &cobra.Command{Use: "customerkey", SilenceUsage: true, SilenceErrors: true}
	AddCommands(root)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"bench"}, args...))
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("bench %q: %v\n%s", args, err, errOut.String())
	}
	var rep benchReport
	if slices.Contains(args, "json") {
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("bench -o json: %v\n%s", err, out.String())
		}
	}
	return rep, out.String()
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, v := range n {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, .5, 0},
		{"one", ms(7), .99, 7 * time.Millisecond},
		{"p50 of 1..100", hundred, .50, 50 * time.Millisecond},
		{"p90 of 1..100", hundred, .90, 90 * time.Millisecond},
		{"p99 of 1..100", hundred, .99, 99 * time.Millisecond},
		{"p100 of 1..100", hundred, 1, 100 * time.Millisecond},
		{"p50 of four", ms(1, 2, 3, 4), .5, 2 * time.Millisecond},
		{"p99 of four", ms(1, 2, 3, 4), .99, 4 * time.Millisecond},
		{"tiny p", ms(1, 2, 3), 0.0001, time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.in, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
			}
		})
	}
}

func TestDriveMergesWorkers(t *testing.T) {
	// 4 workers, 1000 ops: every op is counted once, failures apart.
	var calls atomic.Int64
	s := drive(context.Background(), 4, benchLimit{dur: time.Minute, ops: 1000}, func() workerFunc {
		return func() (string, error) {
			if calls.Add(1)%10 == 0 {
				return "500", nil
			}
			return "", nil
		}
	})
	n := s.ops + s.errs["500"]
	if n != 1000 || s.errs["500"] != 100 {
		t.Errorf("drive: %d ok + %v errors, want 1000 in all with 100 errors of 500", s.ops, s.errs)
	}
	if !slices.IsSorted(s.lat) || len(s.lat) != s.ops {
		t.Errorf("drive: latencies not merged and sorted (%d for %d ops)", len(s.lat), s.ops)
	}
	// A duration bound stops a run that has no count bound.
	start := time.Now()
	s = drive(context.Background(), 2, benchLimit{dur: 50 * time.Millisecond}, func() workerFunc {
		return func() (string, error) { time.Sleep(time.Millisecond); return "", nil }
	})
	if el := time.Since(start); el > 2*time.Second || s.ops == 0 {
		t.Errorf("drive with 50ms: %d ops in %v", s.ops, el)
	}
}

func TestScopeFromChallenge(t *testing.T) {
	tests := []struct{ in, want string }{
		{`Bearer authorization="https://localhost:8443/t1", resource="https://vault.localhost:8443"`, "https://vault.localhost:8443/.default"},
		{`Bearer authorization="https://login.microsoftonline.com/t", resource="https://vault.azure.net/"`, "https://vault.azure.net/.default"},
		{`Bearer authorization="https://x/t" scope="https://r.example/.default"`, "https://r.example/.default"},
		{``, "https://vault.azure.net/.default"},
	}
	for _, tc := range tests {
		if got := scopeFromChallenge(tc.in); got != tc.want {
			t.Errorf("scopeFromChallenge(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBenchFlagValidation(t *testing.T) {
	valid := func() benchOptions {
		return benchOptions{vault: "v", kty: "RSA", keySizes: []int{2048}, ops: []string{"unwrap"}, concurrency: []int{1, 8, 64},
			duration: 10 * time.Second, warmup: 2 * time.Second, rounds: 1, baseline: true, signAlg: "RS256", proto: "1.1",
			sizes: []string{"4k", "64k", "1m"}}
	}
	tests := []struct {
		name   string
		change func(*benchOptions)
		want   string // "" means valid
	}{
		{"defaults", func(*benchOptions) {}, ""},
		{"token needs no vault", func(o *benchOptions) { o.vault, o.ops = "", []string{"token"} }, ""},
		{"baseline only needs no vault", func(o *benchOptions) { o.vault, o.baselineOnly = "", true }, ""},
		{"key op needs a vault", func(o *benchOptions) { o.vault = "" }, "--vault is required"},
		{"unknown op", func(o *benchOptions) { o.ops = []string{"unwrap", "verify"} }, `--op "verify"`},
		{"items need no vault", func(o *benchOptions) { o.vault, o.ops = "", []string{"encrypt", "decrypt"} }, ""},
		{"items and keys need a vault", func(o *benchOptions) { o.vault, o.ops = "", []string{"encrypt", "wrap"} }, "--vault is required"},
		{"items with a scope", func(o *benchOptions) { o.ops, o.scope = []string{"decrypt"}, "crm-prod" }, ""},
		{"scope without items", func(o *benchOptions) { o.scope = "crm-prod" }, "--scope names the encryption scope"},
		{"items without sizes", func(o *benchOptions) { o.ops, o.sizes = []string{"encrypt"}, nil }, "--size: give at least one"},
		{"item too large", func(o *benchOptions) { o.ops, o.sizes = []string{"encrypt"}, []string{"4k", "5m"} }, `--size "5m"`},
		{"item size not a size", func(o *benchOptions) { o.ops, o.sizes = []string{"encrypt"}, []string{"big"} }, `--size "big"`},
		{"no op", func(o *benchOptions) { o.ops = nil }, "--op"},
		{"zero clients", func(o *benchOptions) { o.concurrency = []int{0} }, "--concurrency 0"},
		{"too many clients", func(o *benchOptions) { o.concurrency = []int{100000} }, "--concurrency 100000"},
		{"odd key size", func(o *benchOptions) { o.keySizes = []int{1024} }, "--key-size 1024"},
		{"HSM keys", func(o *benchOptions) { o.kty = "RSA-HSM" }, ""},
		{"EC keys", func(o *benchOptions) { o.kty = "EC" }, `--kty "EC"`},
		{"one key, many sizes", func(o *benchOptions) { o.key, o.keySizes = "k", []int{2048, 4096} }, "--key names one key"},
		{"unbounded", func(o *benchOptions) { o.duration = 0 }, "--duration"},
		{"too long", func(o *benchOptions) { o.duration = time.Hour }, "--duration"},
		{"negative ops", func(o *benchOptions) { o.count = -1 }, "--ops -1"},
		{"too many ops", func(o *benchOptions) { o.count = benchMaxOps + 1 }, "--ops"},
		{"no rounds", func(o *benchOptions) { o.rounds = 0 }, "--rounds 0"},
		{"fewer ops than rounds", func(o *benchOptions) { o.rounds, o.count = 5, 3 }, "--ops 3 is fewer than --rounds 5"},
		{"sign alg", func(o *benchOptions) { o.signAlg = "ES256" }, "--sign-alg"},
		{"protocol", func(o *benchOptions) { o.proto = "3" }, "--http"},
		{"nothing to run", func(o *benchOptions) { o.baselineOnly, o.baseline = true, false }, "nothing to run"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := valid()
			tc.change(&o)
			err := o.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Every problem is reported at once.
	o := valid()
	o.vault, o.proto, o.signAlg = "", "x", "y"
	if err := o.validate(); err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("validate() with three problems = %v, want three lines", err)
	}
	// --ops alone is bounded by the count and the hard time cap.
	o = valid()
	o.count = 500
	if l := o.limit(); l.ops != 500 || l.dur != benchMaxDuration {
		t.Errorf("limit() with --ops alone = %+v", l)
	}
	o.durationSet = true
	if l := o.limit(); l.ops != 500 || l.dur != 10*time.Second {
		t.Errorf("limit() with --ops and --duration = %+v", l)
	}
}

// TestBenchBaselineEndToEnd runs the command's baseline path: the
// zero-logic HTTPS server inside the process, driven by the same client
// code as a real server, plus raw crypto/rsa.
func TestBenchBaselineEndToEnd(t *testing.T) {
	rep, _ := runBenchCmd(t, "--baseline-only", "--op", "unwrap,wrap,get", "--concurrency", "1,4", "--ops", "120", "--rounds", "3", "--warmup", "0s", "-o", "json")
	type key struct {
		op, target string
		conc       int
	}
	seen := map[key]bool{}
	for _, r := range rep.Results {
		seen[key{r.Op, r.Target, r.Concurrency}] = true
		if r.Target == "server" {
			t.Errorf("a baseline-only run measured the server: %+v", r)
		}
		if r.OpsPerSec <= 0 || len(r.Errors) != 0 {
			t.Errorf("%s %s c=%d: %v ops/s, errors %v (%s)", r.Op, r.Target, r.Concurrency, r.OpsPerSec, r.Errors, r.FirstError)
		}
		if r.Target == "baseline-https" && r.Ops != 120 {
			t.Errorf("%s %s c=%d: %d ops, want exactly --ops 120", r.Op, r.Target, r.Concurrency, r.Ops)
		}
		if r.Target == "baseline-https" && (len(r.RoundOpsPerSec) != 3 || slices.Min(r.RoundOpsPerSec) <= 0) {
			t.Errorf("%s %s c=%d: per-round rates %v, want one positive rate per --rounds 3", r.Op, r.Target, r.Concurrency, r.RoundOpsPerSec)
		}
		if !(r.P50Ms <= r.P90Ms && r.P90Ms <= r.P99Ms && r.P99Ms <= r.MaxMs) || r.MaxMs <= 0 {
			t.Errorf("%s %s c=%d: percentiles out of order: %v %v %v %v", r.Op, r.Target, r.Concurrency, r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs)
		}
	}
	for _, k := range []key{{"unwrap", "baseline-https", 1}, {"unwrap", "baseline-https", 4}, {"wrap", "baseline-https", 4}, {"get", "baseline-https", 1}} {
		if !seen[k] {
			t.Errorf("no result for %+v", k)
		}
	}
	if !slices.ContainsFunc(rep.Results, func(r benchResult) bool { return r.Op == "unwrap" && r.Target == "raw-rsa" }) {
		t.Error("no raw-rsa result for unwrap")
	}
	if slices.ContainsFunc(rep.Results, func(r benchResult) bool { return r.Op == "get" && r.Target == "raw-rsa" }) {
		t.Error("a raw-rsa result for get, which has no RSA operation")
	}
	if want := "heap headroom 64 MiB (as serve)"; os.Getenv("GOGC") == "" && rep.GC != want {
		t.Errorf("report gc = %q, want %q: the baselines must pace the collector as serve does", rep.GC, want)
	}
	if len(rep.Ratios) == 0 || rep.Ratios[0].BaselinePerRaw <= 0 {
		t.Errorf("ratios = %+v, want baseline-https/raw for each run", rep.Ratios)
	}
	// The table form prints the same runs.
	_, table := runBenchCmd(t, "--baseline-only", "--op", "sign", "--concurrency", "2", "--ops", "50", "--warmup", "0s", "-o", "table")
	for _, want := range []string{"baseline-https", "raw-rsa", "BASELINE-HTTPS/RAW", "RSA-2048"} {
		if !strings.Contains(table, want) {
			t.Errorf("table output lacks %q:\n%s", want, table)
		}
	}
}

// fakeVaultServer stands in for the server until the key vault data plane
// exists: a token endpoint, the two Resource Manager reads findVault makes,
// and a vault at https://bv.vault.localhost:PORT/ that challenges like AKV
// and does real RSA with its keys.
type fakeVaultServer struct {
	url, caFile string
	resource    string

	mu       sync.Mutex
	keys     map[string]*rsa.PrivateKey
	scopes   []string
	deleted  []string
	purged   []string
	purgeTry int
}

func startFakeVault(t *testing.T) *fakeVaultServer {
	t.Helper()
	cert, _, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeVaultServer{keys: map[string]*rsa.PrivateKey{}}
	srv := httptest.NewUnstartedServer(f)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	f.url = fmt.Sprintf("https://localhost:%d", port)
	f.resource = fmt.Sprintf("https://vault.localhost:%d", port)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeVaultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, port, _ := net.SplitHostPort(r.Host)
	p := r.URL.Path
	if host == "localhost" {
		switch {
		case strings.HasSuffix(p, "/oauth2/v2.0/token"):
			_ = r.ParseForm()
			f.mu.Lock()
			f.scopes = append(f.scopes, r.PostForm.Get("scope"))
			f.mu.Unlock()
			if r.PostForm.Get("client_secret") != "s3cret" {
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":"invalid_client","error_description":"bad secret"}`)
				return
			}
			fmt.Fprintf(w, `{"access_token":"tok %s","expires_in":3600}`, r.PostForm.Get("scope"))
		case p == "/subscriptions":
			fmt.Fprint(w, `{"value":[{"subscriptionId":"s1"}]}`)
		case p == "/subscriptions/s1/providers/Microsoft.KeyVault/vaults":
			fmt.Fprintf(w, `{"value":[{"name":"bv","properties":{"vaultUri":"https://bv.vault.localhost:%s/"}}]}`, port)
		default:
			http.NotFound(w, r)
		}
		return
	}
	if host != "bv.vault.localhost" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer tok "+f.resource+"/.default" {
		w.Header().Set("WWW-Authenticate", `Bearer authorization="`+f.url+`/t1", resource="`+f.resource+`"`)
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}`)
		return
	}
	seg := strings.Split(strings.Trim(p, "/"), "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && len(seg) == 3 && seg[2] == "create":
		var in struct {
			Size int `json:"key_size"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		k, err := rsa.GenerateKey(rand.Reader, in.Size)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		f.keys[seg[1]] = k
		f.bundle(w, seg[1])
	case r.Method == http.MethodGet && len(seg) >= 2 && f.keys[seg[1]] != nil:
		f.bundle(w, seg[1])
	case r.Method == http.MethodPost && len(seg) == 4 && f.keys[seg[1]] != nil:
		z := &zeroServer{ops: rsaOps{key: f.keys[seg[1]], signAlg: "RS256"}, kid: "k"}
		z.ServeHTTP(w, r)
	case r.Method == http.MethodDelete && seg[0] == "keys":
		f.deleted = append(f.deleted, seg[1])
		fmt.Fprint(w, `{}`)
	case r.Method == http.MethodDelete && seg[0] == "deletedkeys":
		if f.purgeTry++; f.purgeTry == 1 { // still being deleted
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"code":"KeyNotFound","message":"Deleted Key not found"}}`)
			return
		}
		f.purged = append(f.purged, seg[1])
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeVaultServer) bundle(w http.ResponseWriter, name string) {
	k := f.keys[name]
	fmt.Fprintf(w, `{"key":{"kid":"https://bv.vault.localhost/keys/%s/0123456789abcdef0123456789abcdef","kty":"RSA","n":"%s","e":"AQAB"}}`,
		name, b64u.EncodeToString(k.N.Bytes()))
}

// TestBenchServerPath drives the server path (vault lookup, challenge,
// temporary key, every operation, delete and purge) against a fake.
func TestBenchServerPath(t *testing.T) {
	f := startFakeVault(t)
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	t.Setenv("AZURE_TENANT_ID", "t1")
	t.Setenv("AZURE_CLIENT_ID", "app")
	t.Setenv("AZURE_CLIENT_SECRET", "s3cret")
	t.Setenv("AZURE_SUBSCRIPTION_ID", "")
	rep, _ := runBenchCmd(t, "--endpoint", f.url, "--ca-file", f.caFile, "--vault", "bv", "--op", "unwrap,wrap,sign,get,token",
		"--concurrency", "2", "--ops", "30", "--warmup", "0s", "--baseline=false", "-o", "json")
	if len(rep.Results) != 5 {
		t.Errorf("%d results, want one per operation: %+v", len(rep.Results), rep.Results)
	}
	for _, r := range rep.Results {
		if r.Target != "server" || r.Ops != 30 || len(r.Errors) != 0 || r.KeySize != 2048 {
			t.Errorf("result %+v, want 30 server ops of RSA-2048 without errors", r)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.scopes, f.resource+"/.default") {
		t.Errorf("tokens asked for %q, want the challenge's resource %s/.default", f.scopes, f.resource)
	}
	if len(f.keys) != 1 || len(f.deleted) != 1 || len(f.purged) != 1 || f.deleted[0] != f.purged[0] || !strings.HasPrefix(f.deleted[0], "bench-") {
		t.Errorf("keys created %d, deleted %q, purged %q: want one temporary bench- key deleted and purged", len(f.keys), f.deleted, f.purged)
	}

	// With the baselines, each server run has its ratios, and one per
	// round when there are rounds.
	f.mu.Unlock()
	rep, _ = runBenchCmd(t, "--endpoint", f.url, "--ca-file", f.caFile, "--vault", "bv", "--op", "wrap",
		"--concurrency", "2", "--ops", "30", "--rounds", "3", "--warmup", "0s", "-o", "json")
	f.mu.Lock()
	if len(rep.Ratios) != 1 || rep.Ratios[0].ServerPerBaseline <= 0 || rep.Ratios[0].ServerPerRaw <= 0 {
		t.Errorf("ratios = %+v, want server/baseline-https and server/raw", rep.Ratios)
	} else if r := rep.Ratios[0].ServerPerBaselineRounds; len(r) != 3 || slices.Min(r) <= 0 {
		t.Errorf("per-round server/baseline-https = %v, want 3 positive ratios", r)
	}
}

func TestRatiosPerRound(t *testing.T) {
	res := func(target string, total float64, rounds ...float64) benchResult {
		return benchResult{Op: "unwrap", KeySize: 2048, Concurrency: 8, Target: target, OpsPerSec: total, RoundOpsPerSec: rounds}
	}
	tests := []struct {
		name        string
		results     []benchResult
		wantBase    []float64
		wantProcess []float64
		wantText    string
	}{
		{"three rounds", []benchResult{res("server", 900, 800, 1000, 900), res("baseline-https", 1000, 1000, 1000, 1000), res("baseline-process", 950, 1000, 800, 1000)},
			[]float64{0.8, 1, 0.9}, []float64{0.8, 1.25, 0.9}, "0.900 [0.800-1.000]"},
		{"one round has no spread", []benchResult{res("server", 900), res("baseline-https", 1000)}, nil, nil, "0.900"},
		{"rounds missing on one side", []benchResult{res("server", 900, 800, 1000), res("baseline-https", 1000)}, nil, nil, "0.900"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := benchReport{Results: tc.results}
			rep.ratios()
			if len(rep.Ratios) != 1 {
				t.Fatalf("ratios = %+v, want one", rep.Ratios)
			}
			q := rep.Ratios[0]
			if !slices.Equal(q.ServerPerBaselineRounds, tc.wantBase) || !slices.Equal(q.ServerPerProcessRounds, tc.wantProcess) {
				t.Errorf("per-round ratios = %v and %v, want %v and %v", q.ServerPerBaselineRounds, q.ServerPerProcessRounds, tc.wantBase, tc.wantProcess)
			}
			if got := spreadText(q.ServerPerBaseline, q.ServerPerBaselineRounds); got != tc.wantText {
				t.Errorf("server/baseline-https printed %q, want %q", got, tc.wantText)
			}
		})
	}
}

func TestParseItemSize(t *testing.T) {
	tests := []struct {
		in   string
		want int // 0 means invalid
	}{
		{"4k", 4 << 10}, {"64K", 64 << 10}, {"1m", 1 << 20}, {"4m", 4 << 20}, {"100", 100}, {" 2k ", 2 << 10},
		{"4097k", 0}, {"5m", 0}, {"0", 0}, {"-1k", 0}, {"1g", 0}, {"k", 0}, {"", 0},
	}
	for _, tc := range tests {
		got, err := parseItemSize(tc.in)
		if tc.want == 0 && err == nil || tc.want != 0 && (err != nil || got != tc.want) {
			t.Errorf("parseItemSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for n, want := range map[int]string{4 << 10: "4KiB", 1 << 20: "1MiB", 1500: "1500B", 3 << 20: "3MiB"} {
		if got := sizeLabel(n); got != want {
			t.Errorf("sizeLabel(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestBenchItemsBaselineOnly runs encrypt and decrypt with the baselines
// alone: the zero-logic HTTPS server doing AES-256-GCM and raw AES.
func TestBenchItemsBaselineOnly(t *testing.T) {
	rep, _ := runBenchCmd(t, "--baseline-only", "--op", "encrypt,decrypt", "--size", "4k,64k", "--concurrency", "1,3", "--ops", "40",
		"--rounds", "2", "--warmup", "0s", "-o", "json")
	type key struct {
		op, target string
		item, conc int
	}
	seen := map[key]bool{}
	for _, r := range rep.Results {
		seen[key{r.Op, r.Target, r.ItemSize, r.Concurrency}] = true
		if r.Target == "server" || r.Target == "client-seal" {
			t.Errorf("a baseline-only run measured %s: %+v", r.Target, r)
		}
		if r.KeySize != 256 || (r.ItemSize != 4<<10 && r.ItemSize != 64<<10) {
			t.Errorf("result %+v, want AES-256 with an item size of 4 or 64 KiB", r)
		}
		if r.OpsPerSec <= 0 || len(r.Errors) != 0 || (r.Target == "baseline-https" && r.Ops != 40) {
			t.Errorf("%s %s %d c=%d: %d ops, %v ops/s, errors %v (%s)", r.Op, r.Target, r.ItemSize, r.Concurrency, r.Ops, r.OpsPerSec, r.Errors, r.FirstError)
		}
	}
	for _, op := range []string{"encrypt", "decrypt"} {
		for _, item := range []int{4 << 10, 64 << 10} {
			for _, conc := range []int{1, 3} {
				if !seen[key{op, "baseline-https", item, conc}] {
					t.Errorf("no baseline-https result for %s %d c=%d", op, item, conc)
				}
			}
			if !slices.ContainsFunc(rep.Results, func(r benchResult) bool { return r.Op == op && r.ItemSize == item && r.Target == "raw-aes" }) {
				t.Errorf("no raw-aes result for %s %d", op, item)
			}
		}
	}
	if len(rep.Ratios) != 8 {
		t.Errorf("%d ratios, want one per operation, size and concurrency: %+v", len(rep.Ratios), rep.Ratios)
	}
	for _, q := range rep.Ratios {
		if q.BaselinePerRaw <= 0 || q.ItemSize == 0 {
			t.Errorf("ratio %+v, want baseline-https/raw of an item size", q)
		}
	}
	_, table := runBenchCmd(t, "--baseline-only", "--op", "decrypt", "--size", "1m", "--concurrency", "2", "--ops", "10", "--warmup", "0s", "-o", "table")
	for _, want := range []string{"AES-256 1MiB", "baseline-https", "raw-aes", "2w", "BASELINE-HTTPS/RAW"} {
		if !strings.Contains(table, want) {
			t.Errorf("table output lacks %q:\n%s", want, table)
		}
	}
}

// fakeEncryptionServer stands in for the encryption API in the bench
// tests (the API itself is tested against the real handlers in
// client/encryption): a token endpoint issuing JWT-shaped tokens, scope
// creation and deletion, raw encrypt and decrypt with AES-256-GCM, and
// data keys.
type fakeEncryptionServer struct {
	url, caFile string
	aead        cipher.AEAD
	token       string // the one token it issues and accepts

	mu         sync.Mutex
	created    map[string][]string // scope -> principals
	deleted    []string
	datakeys   int
	itemCalls  int
	authFailed int
}

const fakeOID = "0b0b0b0b-0000-0000-0000-000000000001"

func startFakeEncryption(t *testing.T) *fakeEncryptionServer {
	t.Helper()
	cert, _, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(make([]byte, 32))
	aead, _ := cipher.NewGCMWithRandomNonce(block)
	claims, _ := json.Marshal(map[string]any{"oid": fakeOID, "exp": time.Now().Add(time.Hour).Unix()})
	f := &fakeEncryptionServer{aead: aead, created: map[string][]string{}, token: "e30." + b64u.EncodeToString(claims) + ".c2ln"}
	srv := httptest.NewUnstartedServer(f)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.url = fmt.Sprintf("https://localhost:%d", srv.Listener.Addr().(*net.TCPAddr).Port)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeEncryptionServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.HasSuffix(p, "/oauth2/v2.0/token") {
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":3600}`, f.token)
		return
	}
	const base = "/customerkey/v1/tenants/t1/encryption/scopes"
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		f.authFailed++
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":"InvalidAuthenticationToken","message":"bad token"}}`)
		return
	}
	rest, ok := strings.CutPrefix(p, base)
	switch {
	case !ok:
		http.NotFound(w, r)
	case rest == "" && r.Method == http.MethodPost:
		var in struct {
			Name       string   `json:"name"`
			Principals []string `json:"principals"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.created[in.Name] = in.Principals
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"name":%q}`, in.Name)
	case r.Method == http.MethodDelete:
		f.deleted = append(f.deleted, strings.TrimPrefix(rest, "/"))
		w.WriteHeader(http.StatusNoContent)
	case strings.HasSuffix(rest, "/datakey"):
		f.datakeys++
		fmt.Fprintf(w, `{"key":%q,"wrappedKey":"d3JhcHBlZA"}`, b64u.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	case strings.HasSuffix(rest, "/encrypt") || strings.HasSuffix(rest, "/decrypt"):
		f.itemCalls++
		z := &zeroServer{aead: f.aead}
		z.item(w, r, strings.HasSuffix(rest, "/encrypt"))
	default:
		http.NotFound(w, r)
	}
}

// TestBenchItemsServerPath drives encrypt and decrypt against the fake:
// the temporary scope with the caller as principal, the server, the
// client package and the baselines, and the scope's deletion.
func TestBenchItemsServerPath(t *testing.T) {
	f := startFakeEncryption(t)
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	t.Setenv("AZURE_TENANT_ID", "t1")
	t.Setenv("AZURE_CLIENT_ID", "app")
	t.Setenv("AZURE_CLIENT_SECRET", "s3cret")
	rep, _ := runBenchCmd(t, "--endpoint", f.url, "--ca-file", f.caFile, "--op", "encrypt,decrypt", "--size", "4k", "--concurrency", "2",
		"--ops", "20", "--warmup", "0s", "-o", "json")
	count := map[string]int{}
	for _, r := range rep.Results {
		count[r.Target]++
		if len(r.Errors) != 0 || r.ItemSize != 4<<10 || (r.Target != "raw-aes" && r.Ops != 20) {
			t.Errorf("result %+v, want 20 ops of 4 KiB without errors", r)
		}
	}
	if count["server"] != 2 || count["baseline-https"] != 2 || count["client-seal"] != 2 || count["raw-aes"] != 2 {
		t.Errorf("results by target = %v, want 2 of each", count)
	}
	var server, client int
	for _, q := range rep.Ratios {
		switch {
		case q.Target == "client-seal" && q.ServerPerRaw > 0:
			client++
		case q.Target == "" && q.ServerPerBaseline > 0 && q.ServerPerRaw > 0:
			server++
		}
	}
	if server != 2 || client != 2 {
		t.Errorf("ratios = %+v, want server/baseline-https and server/raw for the server and client-seal/raw per operation", rep.Ratios)
	}
	f.mu.Lock()
	if len(f.created) != 1 || len(f.deleted) != 1 || f.datakeys != 1 || f.authFailed != 0 {
		t.Errorf("scopes created %v, deleted %v, %d data keys, %d refused: want one temporary scope deleted, one data key", f.created, f.deleted, f.datakeys, f.authFailed)
	}
	for name, principals := range f.created {
		if !strings.HasPrefix(name, "bench-") || !slices.Equal(principals, []string{fakeOID}) || !slices.Contains(f.deleted, name) {
			t.Errorf("scope %s with principals %v; want bench-… with the caller's object id, deleted afterwards", name, principals)
		}
	}
	clear(f.created)
	f.deleted = nil
	f.mu.Unlock()

	// With --scope, bench uses it and leaves it alone.
	rep, _ = runBenchCmd(t, "--endpoint", f.url, "--ca-file", f.caFile, "--op", "encrypt", "--size", "100", "--scope", "crm-prod",
		"--concurrency", "1", "--ops", "5", "--warmup", "0s", "--baseline=false", "-o", "json")
	if len(rep.Results) != 2 {
		t.Errorf("results %+v, want the server and client-seal", rep.Results)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.created) != 0 || len(f.deleted) != 0 {
		t.Errorf("with --scope: created %v, deleted %v", f.created, f.deleted)
	}
}
