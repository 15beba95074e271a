package app_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armfeatures"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/rbac"
)

// The documented bounds these tests hold the nodes to (docs/operations.md).
// Each assertion adds slack for a loaded 2-core machine on top of the
// bound; the measured values are logged.
const (
	// cacheTTL is how long vault and rbac trust a cached entry: the bound
	// on a change made through another node whose notification was lost.
	cacheTTL = 5 * time.Second
	// lockRetry is how often a node without the jobs lock tries to take it.
	lockRetry = 5 * time.Second
	// loadSlack is what a busy machine may add to a bound.
	loadSlack = 5 * time.Second
	// featureDelay is the feature registration delay the nodes run with.
	featureDelay = 3 * time.Second
)

// Log messages of internal/app/jobs.go the tests wait for.
const (
	logHoldsJobs   = "this node holds the jobs lock"
	logWaitsOnJobs = "another node runs them"
)

// TestNodes runs two `customerkey serve` processes on one PostgreSQL
// schema, as two nodes behind a load balancer: the same store, the same
// barrier.key, the same public URL and vault DNS suffix, and each its own
// data directory and port. The test clients send each request to the node
// they choose, keeping the deployment's names, as a load balancer would.
// The binary is built once for all the subtests.
func TestNodes(t *testing.T) {
	if os.Getenv(envPostgres) == "" {
		t.Skipf("%s is not set: these tests run two server processes on one PostgreSQL database; set it (and %s=postgres) to the URL of a throwaway PostgreSQL server, as .ci/run does", envPostgres, envStore)
	}
	if os.Getenv(envStore) != "postgres" {
		t.Skipf("%s is not postgres: the two-node tests run once, in the PostgreSQL pass (.ci/run sets %s=postgres for it)", envStore, envStore)
	}
	if testing.Short() {
		t.Skip("builds the binary and runs server processes")
	}
	bin := filepath.Join(t.TempDir(), "customerkey")
	build := exec.Command("go", "build", "-o", bin, "github.com/customerkey/customerkey/cmd/customerkey")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("KeysAndRolesAcrossNodes", func(t *testing.T) { testKeysAndRolesAcrossNodes(t, bin) })
	t.Run("JobsMoveWhenTheirNodeIsKilled", func(t *testing.T) { testJobsMove(t, bin) })
	t.Run("KilledNodeKeepsAcknowledgedKeys", func(t *testing.T) { testCrashKeepsAcknowledged(t, bin) })
}

// testKeysAndRolesAcrossNodes: a key created through A is usable through
// B at once, a new version made through A is B's latest within the cache
// bound, and a role assignment deleted through A stops working through B
// within the rbac cache bound.
func testKeysAndRolesAcrossNodes(t *testing.T, bin string) {
	c := newCluster(t, bin)
	a := c.start(t, "a")
	b := c.start(t, "b")
	ctx := context.Background()

	e := a.api.newVault(t, "nodeskv")
	graphTok, err := token(ctx, e.admin, graphScope)
	if err != nil {
		t.Fatal(err)
	}
	adminSP := servicePrincipalOf(t, a.api, graphTok, e.c.AdminApp.ClientID)
	a.api.grant(t, e, adminSP, "ServicePrincipal", rbac.KeyVaultCryptoOfficerID, e.vaultID)
	kcA := keysClient(t, a.api, e.vaultURL, e.admin)
	// B accepts the tokens A issued: the signing keys are in the store.
	kcB := keysClient(t, b.api, e.vaultURL, e.admin)

	const name = "ContosoEXOKey1"
	if _, err := kcB.GetKey(ctx, name, "", nil); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("GetKey through B before the key exists err = %v, want 404", err)
	}
	created, err := kcA.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil)
	if err != nil {
		t.Fatalf("CreateKey through A: %v", err)
	}
	v1 := created.Key.KID.Version()
	got, err := kcB.GetKey(ctx, name, "", nil)
	if err != nil || got.Key.KID.Version() != v1 {
		t.Fatalf("GetKey through B right after A created it = %v, %v; want version %s at once", got.Key, err, v1)
	}
	dek := make([]byte, 32)
	_, _ = rand.Read(dek)
	alg := to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256)
	wrapped, err := kcB.WrapKey(ctx, name, v1, azkeys.KeyOperationParameters{Algorithm: alg, Value: dek}, nil)
	if err != nil {
		t.Fatalf("WrapKey through B: %v", err)
	}
	for _, n := range []struct {
		name string
		kc   *azkeys.Client
	}{{"A", kcA}, {"B", kcB}} {
		un, err := n.kc.UnwrapKey(ctx, name, v1, azkeys.KeyOperationParameters{Algorithm: alg, Value: wrapped.Result}, nil)
		if err != nil || string(un.Result) != string(dek) {
			t.Errorf("UnwrapKey through %s of what B wrapped = %v; want the wrapped key back", n.name, err)
		}
	}

	// B now caches v1 as the latest version; a version made through A
	// replaces it there through the notification, or the TTL.
	rolled, err := kcA.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil)
	if err != nil {
		t.Fatalf("new version through A: %v", err)
	}
	v2 := rolled.Key.KID.Version()
	lat := waitFor(t, cacheTTL+loadSlack, "B's latest version of the key to be the one A just made", func() (bool, string) {
		got, err := kcB.GetKey(ctx, name, "", nil)
		if err != nil {
			return false, err.Error()
		}
		return got.Key.KID.Version() == v2, "latest version " + got.Key.KID.Version()
	})
	t.Logf("a new key version made through A was B's latest after %v (bound %v)", lat, cacheTTL)

	// An application with Key Vault Crypto Service Encryption User on the
	// vault, signed in through B, unwraps through B ...
	w := &rbacWorld{s: b.api, e: e, graphTok: graphTok}
	appSP, appCred := w.newApp(t, "Exchange Online stand-in")
	ra, err := armauthorization.NewRoleAssignmentsClient(e.sub, e.admin, a.api.armOptions())
	if err != nil {
		t.Fatal(err)
	}
	assignment := newGUID(t)
	if _, err := ra.Create(ctx, e.vaultID, assignment, roleAssignment(e.sub, rbac.KeyVaultCryptoServiceEncryptionUserID, appSP, "ServicePrincipal"), nil); err != nil {
		t.Fatalf("role assignment through A: %v", err)
	}
	appB := keysClient(t, b.api, e.vaultURL, appCred)
	unwrap := func() error {
		_, err := appB.UnwrapKey(ctx, name, v1, azkeys.KeyOperationParameters{Algorithm: alg, Value: wrapped.Result}, nil)
		return err
	}
	if err := unwrap(); err != nil {
		t.Fatalf("UnwrapKey through B by the application granted through A: %v", err)
	}
	// ... until the assignment is deleted through A: B's cached decision
	// must not outlive the documented bound.
	if _, err := ra.Delete(ctx, e.vaultID, assignment, nil); err != nil {
		t.Fatalf("deleting the role assignment through A: %v", err)
	}
	lat = waitFor(t, cacheTTL+loadSlack, "B to refuse the application whose role was deleted through A", func() (bool, string) {
		err := unwrap()
		if err == nil {
			return false, "unwrap still allowed"
		}
		return isStatus(err, http.StatusForbidden), err.Error()
	})
	t.Logf("a role assignment deleted through A stopped working through B after %v (bound %v)", lat, cacheTTL)
	checkForbiddenByRbac(t, "UnwrapKey through B after the revocation", unwrap(), appSP,
		rbac.DataKeysUnwrap, e.vaultID+"/keys/"+name)
}

// testJobsMove: A holds the jobs lock; a feature registered through A
// becomes due while A's scheduler waits for its next round; A is killed
// (kill -9) and B takes the jobs over and completes the registration.
func testJobsMove(t *testing.T, bin string) {
	c := newCluster(t, bin)
	a := c.start(t, "a")
	if _, ok := a.logs.wait(logHoldsJobs, 30*time.Second); !ok {
		t.Fatalf("node A, alone on the store, never logged %q:\n%s", logHoldsJobs, a.logs)
	}
	b := c.start(t, "b")
	if _, ok := b.logs.wait(logWaitsOnJobs, 30*time.Second); !ok {
		t.Fatalf("node B never logged %q while A holds the jobs lock:\n%s", logWaitsOnJobs, b.logs)
	}
	ctx := context.Background()
	tenant := a.api.newTenant(t, "Contoso")
	admin := a.api.credential(t, tenant.TenantID, tenant.AdminApp.ClientID, tenant.AdminApp.ClientSecret)
	armTok, err := token(ctx, admin, armScope)
	if err != nil {
		t.Fatal(err)
	}
	sub := a.api.newSubscription(t, armTok, tenant.TenantID, "PayAsYouGo")
	features, err := armfeatures.NewClient(sub, admin, a.api.armOptions())
	if err != nil {
		t.Fatal(err)
	}
	f, err := features.Register(ctx, "Microsoft.Resources", "mandatoryRetentionPeriodEnabled", nil)
	if err != nil || *f.Properties.State != "Registering" {
		t.Fatalf("Register-AzProviderFeature through A = %v, %v; want Registering", f.Properties, err)
	}
	// Past the delay, readers already derive Registered; completing the
	// registration (the stored state and its audit record, actor system)
	// is the job of the node that holds the jobs lock, whose scheduler
	// runs at its start and then once a minute.
	time.Sleep(featureDelay + 500*time.Millisecond)
	if done := featureCompletions(t, a.api, armTok, tenant.TenantID); len(done) != 0 {
		t.Fatalf("A completed the registration already (%v): its scheduler ran again before the kill; the test cannot tell who did the job", done)
	}

	killed := a.kill(t)
	took, ok := b.logs.waitAfter(logHoldsJobs, killed, lockRetry+loadSlack+time.Second)
	if !ok {
		t.Fatalf("node B did not take the jobs lock within %v of A's kill:\n%s", lockRetry+loadSlack, b.logs)
	}
	t.Logf("B took the jobs over %v after A was killed (bound %v)", took.Sub(killed), lockRetry)
	if d := took.Sub(killed); d > lockRetry+loadSlack {
		t.Errorf("B took the jobs over %v after A was killed, want within %v (+%v slack)", d, lockRetry, loadSlack)
	}
	lat := waitFor(t, loadSlack, "B to complete the feature registration A started", func() (bool, string) {
		done := featureCompletions(t, b.api, armTok, tenant.TenantID)
		return len(done) == 1, fmt.Sprintf("completions recorded: %v", done)
	})
	t.Logf("B completed the registration %v after taking the jobs lock", lat)
	featuresB, err := armfeatures.NewClient(sub, b.api.credential(t, tenant.TenantID, tenant.AdminApp.ClientID, tenant.AdminApp.ClientSecret), b.api.armOptions())
	if err != nil {
		t.Fatal(err)
	}
	if g, err := featuresB.Get(ctx, "Microsoft.Resources", "mandatoryRetentionPeriodEnabled", nil); err != nil || *g.Properties.State != "Registered" {
		t.Errorf("Get-AzProviderFeature through B = %v, %v; want Registered", g.Properties, err)
	}
}

// featureCompletions returns the reasons of the audit records in which the
// jobs completed a feature registration of the tenant.
func featureCompletions(t *testing.T, n *server, armTok, tenant string) []string {
	t.Helper()
	var page struct {
		Events []struct {
			Actor  struct{ Type string }
			Action string
			Reason string
		}
	}
	if code := doJSON(t, n, armTok, "GET", "/customerkey/v1/tenants/"+tenant+"/audit?top=1000", "", &page); code != http.StatusOK {
		t.Fatalf("audit list = %d", code)
	}
	var out []string
	for _, e := range page.Events {
		if e.Action == "resources/features/stateChange" && e.Actor.Type == "system" && strings.HasPrefix(e.Reason, "Registering -> Registered") {
			out = append(out, e.Reason)
		}
	}
	return out
}

// testCrashKeepsAcknowledged: several clients create keys through A; A is
// killed (kill -9) in the middle. Through B, every creation A acknowledged
// exists with its version and attributes, and every key B lists is whole.
func testCrashKeepsAcknowledged(t *testing.T, bin string) {
	c := newCluster(t, bin)
	a := c.start(t, "a")
	b := c.start(t, "b")
	ctx := context.Background()
	e := a.api.newVault(t, "crashkv")
	graphTok, err := token(ctx, e.admin, graphScope)
	if err != nil {
		t.Fatal(err)
	}
	a.api.grant(t, e, servicePrincipalOf(t, a.api, graphTok, e.c.AdminApp.ClientID), "ServicePrincipal", rbac.KeyVaultCryptoOfficerID, e.vaultID)
	kcA := keysClient(t, a.api, e.vaultURL, e.admin)
	// Get the client its token first, so that every creation below is one request.
	if _, err := kcA.GetKey(ctx, "warm-up", "", nil); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("GetKey of a missing key through A err = %v, want 404", err)
	}

	const workers, killAfter = 6, 30
	var (
		mu      sync.Mutex
		acked   = map[string]string{} // key name → version A acknowledged
		tried   int
		enough  = make(chan struct{})
		closeIt sync.Once
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				name := fmt.Sprintf("crash-%d-%d", w, i)
				mu.Lock()
				tried++
				mu.Unlock()
				k, err := kcA.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(azkeys.CurveNameP256),
					Tags: map[string]*string{"writer": to.Ptr(strconv.Itoa(w))}}, nil)
				if err != nil {
					return // A is gone: this creation was not acknowledged
				}
				mu.Lock()
				acked[name] = k.Key.KID.Version()
				if len(acked) == killAfter {
					closeIt.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		})
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		a.kill(t)
		wg.Wait()
		t.Fatalf("A acknowledged %d key creations in 60s, want %d before the kill", len(acked), killAfter)
	}
	a.kill(t)
	wg.Wait()
	t.Logf("%d creations sent to A, %d acknowledged before kill -9", tried, len(acked))

	kcB := keysClient(t, b.api, e.vaultURL, b.api.credential(t, e.c.TenantID, e.c.AdminApp.ClientID, e.c.AdminApp.ClientSecret))
	for name, version := range acked {
		checkWholeKey(t, ctx, kcB, name, version)
	}
	var listed []string
	for pager := kcB.NewListKeyPropertiesPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("listing the keys through B: %v", err)
		}
		for _, k := range page.Value {
			listed = append(listed, k.KID.Name())
		}
	}
	unacked := 0
	for _, name := range listed {
		if _, ok := acked[name]; !ok {
			unacked++
			checkWholeKey(t, ctx, kcB, name, "")
		}
	}
	for name := range acked {
		if !slices.Contains(listed, name) {
			t.Errorf("the key %s A acknowledged is missing from B's key list", name)
		}
	}
	t.Logf("B lists %d keys: the %d acknowledged and %d committed by A without an acknowledgement reaching the client", len(listed), len(acked), unacked)
}

// checkWholeKey asserts that a key is complete through kc: it has exactly
// one version (version, when given), key material and attributes.
func checkWholeKey(t *testing.T, ctx context.Context, kc *azkeys.Client, name, version string) {
	t.Helper()
	k, err := kc.GetKey(ctx, name, "", nil)
	if err != nil {
		t.Errorf("GetKey %s through B: %v", name, err)
		return
	}
	if version != "" && k.Key.KID.Version() != version {
		t.Errorf("key %s through B has version %s, want %s as A acknowledged", name, k.Key.KID.Version(), version)
	}
	if k.Key.X == nil || k.Key.Y == nil || k.Attributes == nil || k.Attributes.Enabled == nil || !*k.Attributes.Enabled ||
		k.Attributes.Created == nil || k.Attributes.RecoveryLevel == nil || k.Tags["writer"] == nil {
		t.Errorf("key %s through B is not whole: key %+v, attributes %+v, tags %v", name, k.Key, k.Attributes, k.Tags)
	}
	var versions []string
	for pager := kc.NewListKeyPropertiesVersionsPager(name, nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Errorf("listing the versions of %s through B: %v", name, err)
			return
		}
		for _, v := range page.Value {
			versions = append(versions, v.KID.Version())
		}
	}
	if len(versions) != 1 || versions[0] != k.Key.KID.Version() {
		t.Errorf("key %s through B lists versions %v, want exactly its latest %s", name, versions, k.Key.KID.Version())
	}
}

// waitFor polls cond until it holds, and fails the test when it does not
// within bound. It returns how long it took.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, last := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("waited %v for %s; last: %s", bound, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cluster is what every node of one deployment shares: the binary, the
// store (a fresh schema), the public URL and the first node's barrier.key
// and operator.json.
type cluster struct {
	bin, store string
	publicURL  string
	first      *node
}

func newCluster(t *testing.T, bin string) *cluster {
	return &cluster{bin: bin, store: schemaURL(t, "ck_nodes_"+strings.ToLower(rand.Text()[:16]))}
}

// node is one `customerkey serve` process.
type node struct {
	name   string
	port   string
	dir    string
	cmd    *exec.Cmd
	logs   *nodeLog
	exited chan struct{}
	// api is this node as the test helpers see a server: the deployment's
	// public URL, reached at this node's port.
	api *server
}

// start starts a node and waits until it answers /healthz. The first
// node's port names the public URL; later nodes get copies of its
// barrier.key and operator.json, as docs/operations.md says.
func (c *cluster) start(t *testing.T, name string) *node {
	t.Helper()
	n := &node{name: name, port: loopbackPort(t), dir: filepath.Join(t.TempDir(), name), logs: newNodeLog(), exited: make(chan struct{})}
	if c.first == nil {
		c.publicURL = "https://localhost:" + n.port
	} else {
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"barrier.key", config.CredentialsFile} {
			b, err := os.ReadFile(filepath.Join(c.first.dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(n.dir, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	n.cmd = exec.Command(c.bin, "serve", "--data-dir", n.dir, "--store", c.store, "--listen", "127.0.0.1:"+n.port,
		"--public-url", c.publicURL, "--log-format", "json", "--feature-registration-delay", featureDelay.String())
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			n.logs.add(sc.Text())
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		_ = n.cmd.Process.Kill()
		<-n.exited
		if t.Failed() {
			t.Logf("log of node %s:\n%s", n.name, n.logs)
		}
	})
	n.waitReady(t)
	creds, err := config.ReadCredentials(filepath.Join(n.dir, config.CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(n.dir, "ca.pem")
	n.api = &server{Server: &app.Server{Credentials: creds, CAFile: ca}, url: c.publicURL, client: nodeClient(t, ca, n.port)}
	if c.first == nil {
		c.first = n
	}
	return n
}

// waitReady waits for ca.pem and a 200 from /healthz on the node's port.
func (n *node) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			t.Fatalf("node %s exited during start-up:\n%s", n.name, n.logs)
		default:
		}
		if _, err := os.Stat(filepath.Join(n.dir, "ca.pem")); err == nil {
			c := nodeClient(t, filepath.Join(n.dir, "ca.pem"), n.port)
			resp, err := c.Get("https://localhost:" + n.port + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
				err = errors.New(resp.Status)
			}
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("node %s did not answer /healthz within 60s (last: %v):\n%s", n.name, last, n.logs)
}

// kill ends the node with SIGKILL, as a crash would, and returns when.
func (n *node) kill(t *testing.T) time.Time {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 node %s: %v", n.name, err)
	}
	at := time.Now()
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("node %s did not exit after SIGKILL", n.name)
	}
	return at
}

// nodeClient trusts the deployment's CA and sends every request to the
// node on port, whatever host the URL names: the load balancer's part.
func nodeClient(t *testing.T, caFile, port string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	d := &net.Dialer{}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, "127.0.0.1:"+port)
		},
	}}
}

// loopbackPort returns a port free on 127.0.0.1 at the time of asking.
func loopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// nodeLog keeps a node's JSON log lines with the time each arrived.
type nodeLog struct {
	mu      sync.Mutex
	lines   []logLine
	changed chan struct{} // closed and replaced at every line
}

type logLine struct {
	at  time.Time
	msg string
	raw string
}

func newNodeLog() *nodeLog { return &nodeLog{changed: make(chan struct{})} }

func (l *nodeLog) add(raw string) {
	var rec struct {
		Msg string `json:"msg"`
	}
	_ = json.Unmarshal([]byte(raw), &rec) // a line that is not JSON is kept whole, without a message
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, logLine{at: time.Now(), msg: rec.Msg, raw: raw})
	close(l.changed)
	l.changed = make(chan struct{})
}

// wait returns when a line whose message contains msg arrived, waiting up
// to d for it.
func (l *nodeLog) wait(msg string, d time.Duration) (time.Time, bool) {
	return l.waitAfter(msg, time.Time{}, d)
}

// waitAfter is wait for a line that arrived after since.
func (l *nodeLog) waitAfter(msg string, since time.Time, d time.Duration) (time.Time, bool) {
	deadline := time.After(d)
	for {
		l.mu.Lock()
		for _, x := range l.lines {
			if x.at.After(since) && strings.Contains(x.msg, msg) {
				l.mu.Unlock()
				return x.at, true
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			return time.Time{}, false
		}
	}
}

func (l *nodeLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, x := range l.lines {
		b.WriteString(x.raw)
		b.WriteByte('\n')
	}
	return b.String()
}
