package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/spf13/cobra"

	ckclient "github.com/customerkey/customerkey/client/encryption"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/heapgoal"
)

// Limits that keep every bench run bounded in time and in requests.
const (
	benchMaxDuration    = 10 * time.Minute
	benchMaxOps         = 10_000_000
	benchMaxConcurrency = 1024
	benchRequestTimeout = 30 * time.Second
	// benchAPIVersion is the data-plane api-version the requests carry.
	benchAPIVersion = "7.4"
)

// benchOps are the operations bench can drive.
var benchOps = []string{"wrap", "unwrap", "sign", "get", "token", "encrypt", "decrypt"}

// isItemOp reports whether op goes through the encryption API (AES-256-GCM
// of items) rather than a key vault's RSA key.
func isItemOp(op string) bool { return op == "encrypt" || op == "decrypt" }

// benchOptions are the flags of `customerkey bench`.
type benchOptions struct {
	vault, sub, key string
	kty             string // of temporary keys: RSA, or RSA-HSM (a premium vault's HSM)
	keySizes        []int
	ops             []string
	concurrency     []int
	duration        time.Duration
	durationSet     bool
	count           int
	warmup          time.Duration
	rounds          int
	baseline        bool
	baselineOnly    bool
	baselineProcess bool
	signAlg         string
	proto           string
	keep            bool
	// sizes are the item sizes of encrypt and decrypt as given (4k, 64k,
	// 1m); validate parses them into itemSizes.
	sizes     []string
	itemSizes []int
	scope     string
	// endpoints are the nodes of one deployment to spread the workers
	// over (--endpoint, repeatable); the first is also the endpoint of
	// the session. Empty: the session's endpoint alone.
	endpoints []string
}

// validate checks the flags and returns every problem at once.
func (o *benchOptions) validate() error {
	var errs []error
	if len(o.ops) == 0 {
		errs = append(errs, errors.New("--op: name at least one of "+strings.Join(benchOps, ", ")))
	}
	keyOps, itemOps := false, false
	for _, op := range o.ops {
		if !slices.Contains(benchOps, op) {
			errs = append(errs, fmt.Errorf("--op %q: use %s", op, strings.Join(benchOps, ", ")))
		}
		keyOps = keyOps || (op != "token" && !isItemOp(op))
		itemOps = itemOps || isItemOp(op)
	}
	if keyOps && o.vault == "" && !o.baselineOnly {
		errs = append(errs, errors.New("--vault is required for key operations (or pass --baseline-only)"))
	}
	o.itemSizes = o.itemSizes[:0]
	if itemOps && len(o.sizes) == 0 {
		errs = append(errs, errors.New("--size: give at least one item size for encrypt and decrypt"))
	}
	for _, v := range o.sizes {
		n, err := parseItemSize(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		o.itemSizes = append(o.itemSizes, n)
	}
	if o.scope != "" && !itemOps {
		errs = append(errs, errors.New("--scope names the encryption scope of encrypt and decrypt; add one of them to --op"))
	}
	if o.baselineProcess && !o.baseline {
		errs = append(errs, errors.New("--baseline-process is a baseline: it needs --baseline"))
	}
	if o.baselineOnly && !o.baseline {
		errs = append(errs, errors.New("--baseline-only and --baseline=false leave nothing to run"))
	}
	if o.baselineOnly && len(o.endpoints) > 0 {
		errs = append(errs, errors.New("--endpoint names servers to load, and --baseline-only loads none: drop one of them"))
	}
	for _, e := range o.endpoints {
		if _, err := endpointAddr(e); err != nil {
			errs = append(errs, err)
		}
	}
	if len(o.concurrency) == 0 {
		errs = append(errs, errors.New("--concurrency: give at least one value"))
	}
	for _, c := range o.concurrency {
		if c < 1 || c > benchMaxConcurrency {
			errs = append(errs, fmt.Errorf("--concurrency %d: use 1 to %d", c, benchMaxConcurrency))
		}
	}
	if len(o.keySizes) == 0 {
		errs = append(errs, errors.New("--key-size: give at least one size"))
	}
	for _, n := range o.keySizes {
		if n != 2048 && n != 3072 && n != 4096 {
			errs = append(errs, fmt.Errorf("--key-size %d: use 2048, 3072 or 4096", n))
		}
	}
	if o.kty != "RSA" && o.kty != "RSA-HSM" {
		errs = append(errs, fmt.Errorf("--kty %q: use RSA or RSA-HSM", o.kty))
	}
	if o.key != "" && len(o.keySizes) > 1 {
		errs = append(errs, errors.New("--key names one key, so it takes no list of --key-size"))
	}
	if o.duration <= 0 || o.duration > benchMaxDuration {
		errs = append(errs, fmt.Errorf("--duration %s: use more than 0 and at most %s", o.duration, benchMaxDuration))
	}
	if o.count < 0 || o.count > benchMaxOps {
		errs = append(errs, fmt.Errorf("--ops %d: use 0 (no count limit) to %d", o.count, benchMaxOps))
	}
	if o.warmup < 0 || o.warmup > benchMaxDuration {
		errs = append(errs, fmt.Errorf("--warmup %s: use 0 to %s", o.warmup, benchMaxDuration))
	}
	if o.rounds < 1 || o.rounds > 100 {
		errs = append(errs, fmt.Errorf("--rounds %d: use 1 to 100", o.rounds))
	} else if o.count > 0 && o.count < o.rounds {
		errs = append(errs, fmt.Errorf("--ops %d is fewer than --rounds %d", o.count, o.rounds))
	}
	if o.signAlg != "RS256" && o.signAlg != "PS256" {
		errs = append(errs, fmt.Errorf("--sign-alg %q: use RS256 or PS256", o.signAlg))
	}
	if o.proto != "1.1" && o.proto != "2" {
		errs = append(errs, fmt.Errorf("--http %q: use 1.1 or 2", o.proto))
	}
	return errors.Join(errs...)
}

// benchMaxItem is the largest item the encryption API takes (4 MiB).
const benchMaxItem = 4 << 20

// parseItemSize reads an item size: bytes, or a number of KiB (k) or MiB (m).
func parseItemSize(v string) (int, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	mult := 1
	switch {
	case strings.HasSuffix(s, "k"):
		s, mult = strings.TrimSuffix(s, "k"), 1<<10
	case strings.HasSuffix(s, "m"):
		s, mult = strings.TrimSuffix(s, "m"), 1<<20
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > benchMaxItem/mult {
		return 0, fmt.Errorf("--size %q: use a size of 1 byte to 4m, such as 4k, 64k or 1m", v)
	}
	return n * mult, nil
}

// limit bounds one measured run: it stops at whichever comes first.
func (o *benchOptions) limit() benchLimit {
	l := benchLimit{dur: o.duration, ops: int64(o.count)}
	if o.count > 0 && !o.durationSet {
		l.dur = benchMaxDuration // --ops alone: the count decides, within the hard cap
	}
	return l
}

func benchCmd(g *globals) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench --vault NAME [--op unwrap] [--concurrency 1,8,64] [--duration 10s | --ops N]",
		Short: "Load a running server's key and encryption operations and compare with raw crypto and a zero-logic HTTPS server",
		Long: `Drive a running server over HTTPS with N concurrent clients and print
ops/s and p50/p90/p99/max latency per operation and concurrency.

In the same run it measures two baselines on this machine:
  raw-rsa         the same RSA operation with crypto/rsa, GOMAXPROCS workers;
  baseline-https  a zero-logic HTTPS server inside this process (127.0.0.1,
                  ECDSA P-256 certificate, HTTP/1.1 and h2) that decodes the
                  same JSON, does only that RSA operation with a key of the
                  same size and answers the same JSON, under the same client
                  load: the ceiling of "TLS + one RSA operation" when client
                  and server share the machine.
and prints server/baseline-https and server/raw. With --rounds N each
measured run is split into N slices that alternate between the server and
the baseline, so that other load on a shared machine skews both alike; the
ratios then show [lowest-highest] of the N per-round ratios beside the
whole-run one.

bench and its baselines pace Go's garbage collector as serve does by
default (a heap headroom of 64 MiB, serve --heap-headroom-mib), so that the
baselines do not pay for collections the server does not make; GOGC in the
environment of both overrides it.

Without --key, a temporary key bench-<random> of each --key-size (and of
type --kty: RSA-HSM puts it in the HSM of a premium vault) is created in the
vault and deleted and purged afterwards (unless --keep). Every run is
bounded by --duration and --ops (whichever comes first; 10s by default) and
by hard caps of 10 minutes and 10 million requests. Point it only at servers
you run: it is a load generator. --baseline-only needs no server.

Operations: wrap and unwrap (RSA-OAEP-256 of a 32-byte key), sign (RS256 or
PS256 of a SHA-256 digest), get (the key's public part), token (client
credentials grant; needs application credentials).

encrypt and decrypt go through the general encryption API with items of
each --size (default 4k,64k,1m), raw bodies (application/octet-stream) and
warm caches, in a temporary scope bench-<random> that bench creates with
itself as principal and deletes afterwards (unless --keep), or in --scope.
Their baselines are a zero-logic HTTPS server doing one AES-256-GCM
operation on the same bytes per request, and raw-aes: crypto/cipher's
AES-256-GCM on the same bytes into a new slice, GOMAXPROCS workers. A
third target, client-seal, measures the Go client package
(client/encryption) in this process: Seal and Open with a cached data key,
to compare with raw-aes. They need a tenant Global or Compliance
Administrator (to create the scope) and no --vault.

Several nodes: repeat --endpoint with the address of each node of one
deployment (https://HOST:PORT). The first is where bench signs in and finds
the vault; the workers of each run take the nodes in turn (worker i sends
every request to node i mod N), with the URLs, Host headers and TLS server
names the deployment's public URL gives, as a load balancer in front of
the nodes would. Compare with a run against one --endpoint.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.durationSet = cmd.Flags().Changed("duration")
			if err := o.validate(); err != nil {
				return err
			}
			pr, err := g.printer(cmd)
			if err != nil {
				return err
			}
			if len(o.endpoints) > 0 {
				// bench's own --endpoint shadows the global flag of the
				// same name; its first value takes the global's place.
				g.endpoint = o.endpoints[0]
			}
			pacing, stopKeeping := keepBenchHeap()
			defer stopKeeping()
			var s *session
			if !o.baselineOnly {
				if s, err = g.resolve(); err != nil {
					return err
				}
			}
			rep, err := runBench(cmd.Context(), s, o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			rep.GC = pacing
			if err := rep.print(pr); err != nil {
				return err
			}
			if n := rep.serverErrors(); n > 0 {
				return fmt.Errorf("%d requests to the server failed; see the errors column", n)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.vault, "vault", "", "key vault name (required for key operations)")
	f.StringVar(&o.sub, "subscription", os.Getenv("AZURE_SUBSCRIPTION_ID"), "subscription of the vault (default $AZURE_SUBSCRIPTION_ID, else every one you see)")
	f.StringVar(&o.key, "key", "", "an existing RSA key to use (default: a temporary key per --key-size)")
	f.IntSliceVar(&o.keySizes, "key-size", []int{2048}, "RSA key sizes of temporary keys: 2048, 3072, 4096 (list allowed)")
	f.StringVar(&o.kty, "kty", "RSA", "type of temporary keys: RSA (software) or RSA-HSM (in the HSM of a premium vault)")
	f.StringSliceVar(&o.ops, "op", []string{"unwrap"}, "operations: wrap, unwrap, sign, get, token, encrypt, decrypt (list allowed)")
	f.StringSliceVar(&o.sizes, "size", []string{"4k", "64k", "1m"}, "item sizes of encrypt and decrypt: bytes, or k and m for KiB and MiB, at most 4m (list allowed)")
	f.StringVar(&o.scope, "scope", "", "an existing encryption scope, with you as principal, for encrypt and decrypt (default: a temporary scope)")
	f.IntSliceVar(&o.concurrency, "concurrency", []int{8}, "concurrent clients (list allowed, e.g. 1,8,64)")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per run")
	f.IntVar(&o.count, "ops", 0, "measured requests per run (0: no count limit); with --duration, whichever comes first")
	f.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each run")
	f.IntVar(&o.rounds, "rounds", 1, "split each measured run into this many slices alternating between server and baseline (robust ratios on a busy machine)")
	f.BoolVar(&o.baseline, "baseline", true, "also measure raw crypto/rsa and the zero-logic HTTPS server")
	f.BoolVar(&o.baselineOnly, "baseline-only", false, "measure only the baselines (no server needed)")
	f.BoolVar(&o.baselineProcess, "baseline-process", false, "also measure the zero-logic HTTPS server run in a separate process (RSA operations), to separate the cost of being another process from the server's own")
	f.StringVar(&o.signAlg, "sign-alg", "RS256", "signature algorithm of the sign operation: RS256 or PS256")
	f.StringVar(&o.proto, "http", "1.1", "client protocol: 1.1 (keep-alive, one connection per client) or 2 (h2)")
	f.BoolVar(&o.keep, "keep", false, "keep the temporary keys and scope instead of deleting them")
	f.StringArrayVar(&o.endpoints, "endpoint", nil, "server URL (default $CUSTOMERKEY_ENDPOINT or the saved login); repeat it with each node of one deployment to spread the workers over them")
	cmd.AddCommand(zeroServerCmd())
	return cmd
}

// ---- results ----

// benchResult is one measured run.
type benchResult struct {
	Op          string         `json:"op"`
	KeySize     int            `json:"keySize"`
	ItemSize    int            `json:"itemSize,omitempty"` // bytes per item of encrypt and decrypt
	Concurrency int            `json:"concurrency"`
	Target      string         `json:"target"` // server, baseline-https, client-seal, raw-rsa or raw-aes
	Ops         int            `json:"ops"`
	Seconds     float64        `json:"seconds"`
	OpsPerSec   float64        `json:"opsPerSec"`
	P50Ms       float64        `json:"p50Ms"`
	P90Ms       float64        `json:"p90Ms"`
	P99Ms       float64        `json:"p99Ms"`
	MaxMs       float64        `json:"maxMs"`
	Errors      map[string]int `json:"errors,omitempty"`
	FirstError  string         `json:"firstError,omitempty"`
	// RoundOpsPerSec is the rate of each --rounds slice, in order, when
	// there were several: how much the machine moved under the run.
	RoundOpsPerSec []float64 `json:"roundOpsPerSec,omitempty"`
}

// benchRatio compares the server with the baselines of the same run.
type benchRatio struct {
	Op          string `json:"op"`
	KeySize     int    `json:"keySize"`
	ItemSize    int    `json:"itemSize,omitempty"`
	Concurrency int    `json:"concurrency"`
	// Target is client-seal when the "server" columns hold the Go client
	// package measured in-process; empty for the server.
	Target            string  `json:"target,omitempty"`
	ServerOpsPerSec   float64 `json:"serverOpsPerSec,omitempty"`
	BaselineOpsPerSec float64 `json:"baselineHttpsOpsPerSec,omitempty"`
	RawOpsPerSec      float64 `json:"rawOpsPerSec,omitempty"`
	ServerPerBaseline float64 `json:"serverPerBaselineHttps,omitempty"`
	// ProcessOpsPerSec and ServerPerProcess compare with the zero-logic
	// server run in a separate process (--baseline-process).
	ProcessOpsPerSec float64 `json:"baselineProcessOpsPerSec,omitempty"`
	ServerPerProcess float64 `json:"serverPerBaselineProcess,omitempty"`
	ServerPerRaw     float64 `json:"serverPerRaw,omitempty"`
	BaselinePerRaw   float64 `json:"baselineHttpsPerRaw,omitempty"`
	// With --rounds N > 1, the ratios of the server and each baseline
	// measured in the same round, one per round: their spread says how
	// far the whole-run ratio can be trusted on this machine.
	ServerPerBaselineRounds []float64 `json:"serverPerBaselineHttpsRounds,omitempty"`
	ServerPerProcessRounds  []float64 `json:"serverPerBaselineProcessRounds,omitempty"`
}

// benchReport is what bench prints.
type benchReport struct {
	Endpoint   string `json:"endpoint,omitempty"`
	Vault      string `json:"vault,omitempty"`
	HTTP       string `json:"http"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"goVersion"`
	// GC is how this process and its zero-server child pace the garbage
	// collector: see keepBenchHeap.
	GC string `json:"gc"`
	// LoadAvg is /proc/loadavg before and after the run: other work on the
	// machine skews every number, so the report says how busy it was.
	LoadBefore string        `json:"loadBefore,omitempty"`
	LoadAfter  string        `json:"loadAfter,omitempty"`
	Results    []benchResult `json:"results"`
	Ratios     []benchRatio  `json:"ratios"`
	// Nodes are the --endpoint values the workers took in turn, when
	// there were several.
	Nodes []string `json:"nodes,omitempty"`
}

func (r *benchReport) serverErrors() int {
	n := 0
	for _, x := range r.Results {
		if x.Target == "server" || x.Target == "client-seal" {
			for _, c := range x.Errors {
				n += c
			}
		}
	}
	return n
}

// ratios pairs every server and baseline run with the raw rate.
func (r *benchReport) ratios() {
	find := func(op string, size, item, conc int, target string) *benchResult {
		for i := range r.Results {
			x := &r.Results[i]
			if x.Op == op && x.KeySize == size && x.ItemSize == item && x.Target == target && (conc == 0 || x.Concurrency == conc) {
				return x
			}
		}
		return nil
	}
	r.Ratios = nil
	for _, x := range r.Results {
		if isRawTarget(x.Target) || x.Target == "baseline-process" || (x.Target == "baseline-https" && find(x.Op, x.KeySize, x.ItemSize, x.Concurrency, "server") != nil) {
			continue
		}
		q := benchRatio{Op: x.Op, KeySize: x.KeySize, ItemSize: x.ItemSize, Concurrency: x.Concurrency}
		raw := find(x.Op, x.KeySize, x.ItemSize, 0, rawTarget(x.Op))
		if raw != nil {
			q.RawOpsPerSec = raw.OpsPerSec
		}
		div := func(a, b float64) float64 {
			if b == 0 {
				return 0
			}
			return math.Round(a/b*1000) / 1000
		}
		switch x.Target {
		case "server":
			q.ServerOpsPerSec = x.OpsPerSec
			perRound := func(base *benchResult) []float64 {
				if len(x.RoundOpsPerSec) < 2 || len(base.RoundOpsPerSec) != len(x.RoundOpsPerSec) {
					return nil
				}
				out := make([]float64, len(x.RoundOpsPerSec))
				for i, v := range x.RoundOpsPerSec {
					out[i] = div(v, base.RoundOpsPerSec[i])
				}
				return out
			}
			if base := find(x.Op, x.KeySize, x.ItemSize, x.Concurrency, "baseline-https"); base != nil {
				q.BaselineOpsPerSec = base.OpsPerSec
				q.ServerPerBaseline = div(x.OpsPerSec, base.OpsPerSec)
				q.BaselinePerRaw = div(base.OpsPerSec, q.RawOpsPerSec)
				q.ServerPerBaselineRounds = perRound(base)
			}
			q.ServerPerRaw = div(x.OpsPerSec, q.RawOpsPerSec)
			if p := find(x.Op, x.KeySize, x.ItemSize, x.Concurrency, "baseline-process"); p != nil {
				q.ProcessOpsPerSec = p.OpsPerSec
				q.ServerPerProcess = div(x.OpsPerSec, p.OpsPerSec)
				q.ServerPerProcessRounds = perRound(p)
			}
		case "baseline-https":
			q.BaselineOpsPerSec = x.OpsPerSec
			q.BaselinePerRaw = div(x.OpsPerSec, q.RawOpsPerSec)
			if p := find(x.Op, x.KeySize, x.ItemSize, x.Concurrency, "baseline-process"); p != nil {
				q.ProcessOpsPerSec = p.OpsPerSec
			}
		case "client-seal":
			q.Target = x.Target
			q.ServerOpsPerSec = x.OpsPerSec
			q.ServerPerRaw = div(x.OpsPerSec, q.RawOpsPerSec)
		}
		r.Ratios = append(r.Ratios, q)
	}
}

func (r *benchReport) print(pr printer) error {
	if pr.format == "json" {
		enc := json.NewEncoder(pr.w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(pr.w, "cpus %d, GOMAXPROCS %d, %s, GC %s, client HTTP/%s", r.CPUs, r.GOMAXPROCS, r.GoVersion, r.GC, r.HTTP)
	if r.Endpoint != "" {
		fmt.Fprintf(pr.w, ", server %s", r.Endpoint)
	}
	if len(r.Nodes) > 0 {
		fmt.Fprintf(pr.w, ", workers round-robin over the nodes %s", strings.Join(r.Nodes, " "))
	}
	if r.LoadBefore != "" {
		fmt.Fprintf(pr.w, ", load average %s before, %s after", r.LoadBefore, r.LoadAfter)
	}
	fmt.Fprintln(pr.w)
	tw := tabwriter.NewWriter(pr.w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "OP\tKEY\tCONC\tTARGET\tOPS\tOPS/S\tP50 ms\tP90 ms\tP99 ms\tMAX ms\tERRORS\t")
	for _, x := range r.Results {
		conc := strconv.Itoa(x.Concurrency)
		if isRawTarget(x.Target) {
			conc += "w"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n", x.Op, keyLabel(x.Op, x.KeySize, x.ItemSize), conc, x.Target,
			x.Ops, x.OpsPerSec, x.P50Ms, x.P90Ms, x.P99Ms, x.MaxMs, errorsText(x.Errors))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintln(pr.w)
		tw = tabwriter.NewWriter(pr.w, 0, 4, 2, ' ', tabwriter.AlignRight)
		process := slices.ContainsFunc(r.Ratios, func(q benchRatio) bool { return q.ProcessOpsPerSec > 0 })
		head := "OP\tKEY\tCONC\tSERVER/BASELINE-HTTPS\tSERVER/RAW\tBASELINE-HTTPS/RAW\t"
		if process {
			head += "SERVER/BASELINE-PROCESS\tBASELINE-PROCESS/BASELINE-HTTPS\t"
		}
		fmt.Fprintln(tw, head)
		for _, q := range r.Ratios {
			op := q.Op
			if q.Target != "" {
				op += " (" + q.Target + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t", op, keyLabel(q.Op, q.KeySize, q.ItemSize), q.Concurrency,
				spreadText(q.ServerPerBaseline, q.ServerPerBaselineRounds), ratioText(q.ServerPerRaw), ratioText(q.BaselinePerRaw))
			if process {
				pb := 0.0
				if q.BaselineOpsPerSec > 0 {
					pb = math.Round(q.ProcessOpsPerSec/q.BaselineOpsPerSec*1000) / 1000
				}
				fmt.Fprintf(tw, "%s\t%s\t", spreadText(q.ServerPerProcess, q.ServerPerProcessRounds), ratioText(pb))
			}
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, x := range r.Results {
		if x.FirstError != "" {
			fmt.Fprintf(pr.w, "first error of %s %s c=%d %s: %s\n", x.Op, keyLabel(x.Op, x.KeySize, x.ItemSize), x.Concurrency, x.Target, x.FirstError)
		}
	}
	return nil
}

// keyLabel names the key (and the item size) of a run.
func keyLabel(op string, size, item int) string {
	if isItemOp(op) {
		return "AES-" + strconv.Itoa(size) + " " + sizeLabel(item)
	}
	if size == 0 {
		return "-"
	}
	if op == "token" {
		return "RSA-" + strconv.Itoa(size) + "(jwt)"
	}
	return "RSA-" + strconv.Itoa(size)
}

// sizeLabel writes an item size in the units --size takes.
func sizeLabel(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// rawTarget is the name of the raw crypto baseline of op.
func rawTarget(op string) string {
	if isItemOp(op) {
		return "raw-aes"
	}
	return "raw-rsa"
}

func isRawTarget(t string) bool { return t == "raw-rsa" || t == "raw-aes" }

func ratioText(v float64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// spreadText writes a whole-run ratio and, when it was measured in
// several rounds, the lowest and highest of the per-round ratios.
func spreadText(v float64, rounds []float64) string {
	if v == 0 || len(rounds) < 2 {
		return ratioText(v)
	}
	return fmt.Sprintf("%s [%s-%s]", ratioText(v), ratioText(slices.Min(rounds)), ratioText(slices.Max(rounds)))
}

func errorsText(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}

// ---- load driver ----

// benchLimit bounds one run: it stops at whichever comes first. ops == 0
// means no count limit.
type benchLimit struct {
	dur time.Duration
	ops int64
}

// summary is a merged run.
type summary struct {
	ops      int
	elapsed  time.Duration
	lat      []time.Duration // sorted
	errs     map[string]int
	firstErr string
}

// percentile returns the nearest-rank p-quantile (0 < p <= 1) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (s summary) result(op string, size, conc int, target string) benchResult {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }
	r := benchResult{Op: op, KeySize: size, Concurrency: conc, Target: target, Ops: s.ops,
		Seconds: math.Round(s.elapsed.Seconds()*1000) / 1000, Errors: s.errs, FirstError: s.firstErr}
	if s.elapsed > 0 {
		r.OpsPerSec = math.Round(float64(s.ops) / s.elapsed.Seconds())
	}
	if len(s.lat) > 0 {
		r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs = ms(percentile(s.lat, .50)), ms(percentile(s.lat, .90)), ms(percentile(s.lat, .99)), ms(s.lat[len(s.lat)-1])
	}
	return r
}

// workerFunc does one operation and returns "" on success or a short class
// of failure (an HTTP status, "transport", "crypto") and its error.
type workerFunc func() (class string, err error)

// drive runs workers copies of the function made by newWorker until lim is
// reached or ctx ends. Each worker keeps its latencies in its own slice
// (no locks on the hot path); they are merged and sorted at the end.
func drive(ctx context.Context, workers int, lim benchLimit, newWorker func() workerFunc) summary {
	var stop atomic.Bool
	remaining := atomic.Int64{}
	remaining.Store(math.MaxInt64)
	if lim.ops > 0 {
		remaining.Store(lim.ops)
	}
	timer := time.AfterFunc(lim.dur, func() { stop.Store(true) })
	defer timer.Stop()
	unhook := context.AfterFunc(ctx, func() { stop.Store(true) })
	defer unhook()

	type perWorker struct {
		lat      []time.Duration
		errs     map[string]int
		firstErr error
	}
	hint := 4096
	if lim.ops > 0 {
		hint = int(lim.ops)/workers + 1
	}
	res := make([]perWorker, workers)
	fns := make([]workerFunc, workers)
	for i := range fns {
		fns[i] = newWorker()
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		wg.Go(func() {
			w := &res[i]
			w.lat = make([]time.Duration, 0, min(hint, 1<<16))
			do := fns[i]
			for !stop.Load() && remaining.Add(-1) >= 0 {
				t0 := time.Now()
				class, err := do()
				d := time.Since(t0)
				if class != "" {
					if w.errs == nil {
						w.errs = map[string]int{}
					}
					w.errs[class]++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.lat = append(w.lat, d)
			}
		})
	}
	wg.Wait()
	s := summary{elapsed: time.Since(start)}
	n := 0
	for _, w := range res {
		n += len(w.lat)
	}
	s.lat = make([]time.Duration, 0, n)
	for _, w := range res {
		s.lat = append(s.lat, w.lat...)
		for k, v := range w.errs {
			if s.errs == nil {
				s.errs = map[string]int{}
			}
			s.errs[k] += v
		}
		if w.firstErr != nil && s.firstErr == "" {
			s.firstErr = w.firstErr.Error()
		}
	}
	slices.Sort(s.lat)
	s.ops = len(s.lat)
	return s
}

// benchJob is one request sent over and over.
type benchJob struct {
	method, url string
	header      http.Header
	body        []byte
}

// httpWorker sends j with c and reads the whole answer; only 200 counts.
func httpWorker(ctx context.Context, c *http.Client, j benchJob) func() workerFunc {
	return func() workerFunc {
		h := j.header.Clone()
		return func() (string, error) {
			req, err := http.NewRequestWithContext(ctx, j.method, j.url, bytes.NewReader(j.body))
			if err != nil {
				return "request", err
			}
			req.Header = h
			resp, err := c.Do(req)
			if err != nil {
				return "transport", err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				return "transport", err
			}
			if resp.StatusCode != http.StatusOK {
				return strconv.Itoa(resp.StatusCode), fmt.Errorf("%s %s answered %s", j.method, j.url, resp.Status)
			}
			return "", nil
		}
	}
}

// benchTransport tunes a client for load: enough idle connections for
// every worker, one protocol, and no overall timeout other than a
// per-request bound.
func benchTransport(base *http.Transport, proto string, conns int) *http.Client {
	tr := base.Clone()
	// Clone set up h2 on base and copied its ALPN list; the protocol
	// chosen below must decide what is offered.
	if tr.TLSClientConfig != nil {
		tr.TLSClientConfig.NextProtos = nil
	}
	tr.MaxIdleConns = conns + 16
	tr.MaxIdleConnsPerHost = conns + 16
	tr.IdleConnTimeout = 2 * time.Minute
	tr.DisableCompression = true
	var p http.Protocols
	if proto == "2" {
		p.SetHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr.Protocols = &p
	tr.ForceAttemptHTTP2 = proto == "2"
	return &http.Client{Transport: tr, Timeout: benchRequestTimeout}
}

// ---- RSA operations shared by the raw baseline and the zero-logic server ----

// rsaOps are the RSA operations of one key; dek is the random 32-byte
// key that wrap and unwrap carry.
type rsaOps struct {
	key     *rsa.PrivateKey
	signAlg string
	dek     []byte
}

// newDEK returns a random 32-byte key to wrap, as a data encryption key.
func newDEK() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

func (k rsaOps) wrap(pt []byte) ([]byte, error) {
	return rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.key.PublicKey, pt, nil)
}

func (k rsaOps) unwrap(ct []byte) ([]byte, error) {
	return rsa.DecryptOAEP(sha256.New(), rand.Reader, k.key, ct, nil)
}

func (k rsaOps) sign(digest []byte) ([]byte, error) {
	if k.signAlg == "PS256" {
		return rsa.SignPSS(rand.Reader, k.key, crypto.SHA256, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return rsa.SignPKCS1v15(rand.Reader, k.key, crypto.SHA256, digest)
}

func benchDigest() []byte {
	d := sha256.Sum256([]byte("customerkey bench"))
	return d[:]
}

// raw returns the worker of the raw crypto/rsa baseline of op, or nil
// when op has no RSA operation (get).
func (k rsaOps) raw(op string) func() workerFunc {
	var f func() error
	switch op {
	case "wrap":
		f = func() error { _, err := k.wrap(k.dek); return err }
	case "unwrap":
		ct, err := k.wrap(k.dek)
		if err != nil {
			return nil
		}
		f = func() error { _, err := k.unwrap(ct); return err }
	case "sign", "token":
		d := benchDigest()
		f = func() error { _, err := k.sign(d); return err }
	default:
		return nil
	}
	return func() workerFunc {
		return func() (string, error) {
			if err := f(); err != nil {
				return "crypto", err
			}
			return "", nil
		}
	}
}

// keyOpParams and keyOpResult are the AKV wire shapes of a key operation.
type keyOpParams struct {
	Alg   string `json:"alg"`
	Value string `json:"value"`
}

type keyOpResult struct {
	KID   string `json:"kid"`
	Value string `json:"value"`
}

var b64u = base64.RawURLEncoding

// zeroServer is the zero-logic HTTPS baseline: no authentication, no
// authorization, no audit, no storage; one RSA operation per request.
type zeroServer struct {
	url    string
	ops    rsaOps
	aead   cipher.AEAD // encrypt and decrypt; nil for the RSA operations
	kid    string
	bundle []byte // the answer to GET
	srv    *http.Server
	tr     *http.Transport // trusts only this server's certificate
	// certDER is the server's certificate, for a client in another process.
	certDER []byte
}

// startZero starts a zero-logic server on 127.0.0.1 (never any other
// address) with a fresh self-signed ECDSA P-256 certificate, as the real
// server has, serving HTTP/1.1 and h2 the way the real server does.
func startZero(k rsaOps) (*zeroServer, error) { return startZeroServer(&zeroServer{ops: k}) }

// startZeroServer starts z, whose operations are set (the RSA key of
// z.ops, or z.aead for items).
func startZeroServer(z *zeroServer) (*zeroServer, error) {
	cert, pool, err := selfSigned()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	z.url = "https://" + ln.Addr().String()
	z.kid = z.url + "/keys/bench/00000000000000000000000000000000"
	if k := z.ops; k.key != nil {
		z.bundle, _ = json.Marshal(map[string]any{
			"key":        map[string]any{"kid": z.kid, "kty": "RSA", "key_ops": []string{"wrapKey", "unwrapKey", "sign", "verify"}, "n": b64u.EncodeToString(k.key.N.Bytes()), "e": "AQAB"},
			"attributes": map[string]any{"enabled": true, "created": 1800000000, "updated": 1800000000, "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90},
		})
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	z.srv = &http.Server{
		Handler:           z,
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() { _ = z.srv.Serve(tls.NewListener(ln, cfg)) }()
	z.certDER = cert.Certificate[0]
	z.tr = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	return z, nil
}

func (z *zeroServer) Close() error { return z.srv.Close() }

func (z *zeroServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case r.Method == http.MethodGet:
		z.write(w, z.bundle)
	case z.aead != nil && strings.HasSuffix(p, "/encrypt"):
		z.item(w, r, true)
	case z.aead != nil && strings.HasSuffix(p, "/decrypt"):
		z.item(w, r, false)
	case strings.HasSuffix(p, "/token"):
		// Like a token service: read the form, sign once, answer JSON.
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") == "" {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		sig, err := z.ops.sign(benchDigest())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		b, _ := json.Marshal(tokenResponse{AccessToken: "e30.e30." + b64u.EncodeToString(sig), ExpiresIn: 3599})
		z.write(w, b)
	default:
		var in keyOpParams
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		v, err := b64u.DecodeString(in.Value)
		if err != nil {
			http.Error(w, "bad value", http.StatusBadRequest)
			return
		}
		var out []byte
		switch {
		case strings.HasSuffix(p, "/wrapkey"):
			out, err = z.ops.wrap(v)
		case strings.HasSuffix(p, "/unwrapkey"):
			out, err = z.ops.unwrap(v)
		case strings.HasSuffix(p, "/sign"):
			out, err = z.ops.sign(v)
		default:
			http.NotFound(w, r)
			return
		}
		if err != nil {
			http.Error(w, "operation failed", http.StatusBadRequest)
			return
		}
		b, _ := json.Marshal(keyOpResult{KID: z.kid, Value: b64u.EncodeToString(out)})
		z.write(w, b)
	}
}

func (z *zeroServer) write(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
}

// selfSigned makes a one-off ECDSA P-256 certificate for 127.0.0.1 and
// localhost names, and a pool trusting only it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "customerkey bench baseline"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost", "*.localhost", "*.vault.localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// ---- the run ----

// benchKey is the server key one key size is measured with.
type benchKey struct {
	name, version string
	size          int
	temporary     bool
}

// benchRun holds what a run shares between operations.
type benchRun struct {
	o        *benchOptions
	s        *session
	log      io.Writer
	rep      *benchReport
	server   *http.Client // to the server under test
	vaultURL string       // "https://{vault}.{suffix}:{port}/"
	token    string       // for the vault's challenge resource
	dek      []byte       // what wrap and unwrap carry
	// item is the item size of the encrypt or decrypt being measured (0
	// for the RSA operations); results and progress lines carry it.
	item int
	// nodes carry the measured server requests: one client per
	// --endpoint when there are several, else server alone.
	nodes []*http.Client
}

// keepBenchHeap gives bench, and so its in-process baseline, the garbage
// collector pacing serve uses by default (--heap-headroom-mib): a baseline
// that collected every few milliseconds while the server did not would
// flatter the server. GOGC in the environment wins, as it does for serve;
// the zero-server child inherits it and calls this too. It returns the
// pacing for the report.
func keepBenchHeap() (pacing string, stop func()) {
	pacing, stop = heapgoal.Keep(uint64(config.Default().HeapHeadroomMiB) << 20)
	return pacing + " (as serve)", stop
}

func runBench(ctx context.Context, s *session, o *benchOptions, logw io.Writer) (*benchReport, error) {
	conns := slices.Max(o.concurrency)
	r := &benchRun{o: o, s: s, log: logw, dek: newDEK(), rep: &benchReport{HTTP: o.proto, CPUs: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), LoadBefore: loadAvg()}}
	defer func() { r.rep.LoadAfter = loadAvg() }()
	if s != nil {
		r.rep.Endpoint = s.prof.Endpoint
		base, ok := s.http.Transport.(*http.Transport)
		if !ok {
			return nil, errors.New("bench: the session's HTTP client has no *http.Transport to tune")
		}
		r.server = benchTransport(base, o.proto, conns)
		r.nodes = []*http.Client{r.server}
		if len(o.endpoints) > 1 {
			r.nodes = nodeClients(base, o.proto, conns, o.endpoints)
			r.rep.Nodes = o.endpoints
		}
		if o.vault != "" && slices.ContainsFunc(o.ops, func(op string) bool { return op != "token" && !isItemOp(op) }) {
			if err := r.openVault(ctx); err != nil {
				return nil, err
			}
		}
	}
	for _, size := range o.keySizes {
		ops := slices.DeleteFunc(slices.Clone(o.ops), func(op string) bool { return op == "token" || isItemOp(op) })
		if len(ops) == 0 {
			break
		}
		if err := r.measureSize(ctx, size, ops); err != nil {
			return nil, err
		}
	}
	if slices.Contains(o.ops, "token") {
		if err := r.measureToken(ctx); err != nil {
			return nil, err
		}
	}
	if ops := slices.DeleteFunc(slices.Clone(o.ops), func(op string) bool { return !isItemOp(op) }); len(ops) > 0 {
		if err := r.measureItems(ctx, ops); err != nil {
			return nil, err
		}
	}
	r.rep.ratios()
	return r.rep, nil
}

// loadAvg returns the 1, 5 and 15 minute load averages where the system
// publishes them (Linux), else "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// openVault finds the vault through Resource Manager, learns its
// challenge resource and gets a token for it.
func (r *benchRun) openVault(ctx context.Context) error {
	v, err := r.s.findVault(ctx, r.o.sub, r.o.vault)
	if err != nil {
		return err
	}
	if v.Properties.VaultURI == "" {
		return fmt.Errorf("the vault %s has no vaultUri", v.Name)
	}
	r.vaultURL = strings.TrimSuffix(v.Properties.VaultURI, "/") + "/"
	r.rep.Vault = r.vaultURL
	scope, err := r.challengeScope(ctx)
	if err != nil {
		return err
	}
	r.token, err = r.s.token(ctx, scope)
	return err
}

// challengeScope sends one unauthenticated request, as the SDKs do, and
// reads the scope to ask a token for from the 401's WWW-Authenticate.
func (r *benchRun) challengeScope(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.vaultURL+"keys?api-version="+benchAPIVersion, nil)
	if err != nil {
		return "", err
	}
	resp, err := r.server.Do(req)
	if err != nil {
		return "", fmt.Errorf("reaching the vault %s: %w", r.vaultURL, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		return "", fmt.Errorf("the vault %s answered an unauthenticated request with %s, not 401 and a challenge; does the server have the key vault data plane?", r.vaultURL, resp.Status)
	}
	return scopeFromChallenge(resp.Header.Get("WWW-Authenticate")), nil
}

// scopeFromChallenge reads scope="…" or resource="…" of a Bearer
// challenge, and falls back to the public cloud's vault resource.
func scopeFromChallenge(h string) string {
	params := map[string]string{}
	h = strings.TrimSpace(h)
	if i := strings.IndexByte(h, ' '); i > 0 && strings.EqualFold(h[:i], "bearer") {
		h = h[i+1:]
	}
	for _, part := range strings.FieldsFunc(h, func(c rune) bool { return c == ',' || c == ' ' }) {
		k, v, ok := strings.Cut(part, "=")
		if ok {
			params[strings.ToLower(k)] = strings.Trim(v, `"`)
		}
	}
	if s := params["scope"]; s != "" {
		return s
	}
	if res := params["resource"]; res != "" {
		return strings.TrimSuffix(res, "/") + "/.default"
	}
	return "https://vault.azure.net/.default"
}

// dataCall sends one data-plane request and decodes a JSON answer.
func (r *benchRun) dataCall(ctx context.Context, method, u string, in, out any, want int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.server.Do(req)
	if err != nil {
		return fmt.Errorf("reaching %s: %w", u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		return &apiError{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decoding the answer of %s %s: %w", method, u, err)
		}
	}
	return nil
}

type keyBundleOut struct {
	Key struct {
		KID string `json:"kid"`
		N   string `json:"n"`
	} `json:"key"`
}

func (k *benchKey) fromBundle(b keyBundleOut) error {
	if i := strings.LastIndexByte(b.Key.KID, '/'); i >= 0 {
		k.version = b.Key.KID[i+1:]
	}
	n, err := b64u.DecodeString(b.Key.N)
	if k.version == "" || err != nil || len(n) == 0 {
		return fmt.Errorf("the key %s has no usable kid or RSA modulus; bench needs an RSA key", k.name)
	}
	k.size = new(big.Int).SetBytes(n).BitLen()
	return nil
}

// serverKey creates a temporary key of size bits, or reads --key.
func (r *benchRun) serverKey(ctx context.Context, size int) (*benchKey, error) {
	k := &benchKey{name: r.o.key}
	var b keyBundleOut
	if k.name != "" {
		if err := r.dataCall(ctx, http.MethodGet, r.vaultURL+"keys/"+url.PathEscape(k.name)+"/?api-version="+benchAPIVersion, nil, &b, http.StatusOK); err != nil {
			return nil, err
		}
		return k, k.fromBundle(b)
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	k.name, k.temporary = "bench-"+hex.EncodeToString(rb[:]), true
	body := map[string]any{"kty": r.o.kty, "key_size": size, "key_ops": []string{"wrapKey", "unwrapKey", "sign", "verify"}}
	if err := r.dataCall(ctx, http.MethodPost, r.vaultURL+"keys/"+k.name+"/create?api-version="+benchAPIVersion, body, &b, http.StatusOK); err != nil {
		return nil, fmt.Errorf("creating the temporary key %s: %w", k.name, err)
	}
	fmt.Fprintf(r.log, "created the temporary key %s (%s %d)\n", k.name, r.o.kty, size)
	return k, k.fromBundle(b)
}

// dropKey deletes and purges a temporary key, retrying the purge while the
// deletion completes. It runs even when ctx has ended.
func (r *benchRun) dropKey(ctx context.Context, k *benchKey) {
	if !k.temporary || r.o.keep {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := r.dataCall(ctx, http.MethodDelete, r.vaultURL+"keys/"+k.name+"?api-version="+benchAPIVersion, nil, nil, http.StatusOK); err != nil {
		fmt.Fprintf(r.log, "warning: could not delete the temporary key %s: %v\n", k.name, err)
		return
	}
	var err error
	for range 20 {
		err = r.dataCall(ctx, http.MethodDelete, r.vaultURL+"deletedkeys/"+k.name+"?api-version="+benchAPIVersion, nil, nil, http.StatusNoContent)
		var ae *apiError
		if err == nil || !errors.As(err, &ae) || (ae.Status != http.StatusNotFound && ae.Status != http.StatusConflict) {
			break
		}
		if sleepCtx(ctx, 500*time.Millisecond) != nil {
			break
		}
	}
	if err != nil {
		fmt.Fprintf(r.log, "warning: the temporary key %s is deleted but not purged (%v); it stays recoverable until its retention ends\n", k.name, err)
		return
	}
	fmt.Fprintf(r.log, "deleted and purged the temporary key %s\n", k.name)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// serverJob builds the request of op against key k, checking once that
// the server answers it correctly.
func (r *benchRun) serverJob(ctx context.Context, op string, k *benchKey) (benchJob, error) {
	base := r.vaultURL + "keys/" + url.PathEscape(k.name) + "/" + k.version
	q := "?api-version=" + benchAPIVersion
	h := http.Header{"Authorization": {"Bearer " + r.token}, "Accept": {"application/json"}}
	post := func(path string, p keyOpParams) (benchJob, error) {
		body, _ := json.Marshal(p)
		h := h.Clone()
		h.Set("Content-Type", "application/json")
		return benchJob{method: http.MethodPost, url: base + path + q, header: h, body: body}, nil
	}
	switch op {
	case "wrap":
		return post("/wrapkey", keyOpParams{Alg: "RSA-OAEP-256", Value: b64u.EncodeToString(r.dek)})
	case "unwrap":
		var w keyOpResult
		if err := r.dataCall(ctx, http.MethodPost, base+"/wrapkey"+q, keyOpParams{Alg: "RSA-OAEP-256", Value: b64u.EncodeToString(r.dek)}, &w, http.StatusOK); err != nil {
			return benchJob{}, fmt.Errorf("wrapping the key to unwrap: %w", err)
		}
		var u keyOpResult
		p := keyOpParams{Alg: "RSA-OAEP-256", Value: w.Value}
		if err := r.dataCall(ctx, http.MethodPost, base+"/unwrapkey"+q, p, &u, http.StatusOK); err != nil {
			return benchJob{}, fmt.Errorf("checking unwrap: %w", err)
		}
		if got, err := b64u.DecodeString(u.Value); err != nil || !bytes.Equal(got, r.dek) {
			return benchJob{}, errors.New("the server's unwrap did not return the wrapped key")
		}
		return post("/unwrapkey", p)
	case "sign":
		return post("/sign", keyOpParams{Alg: r.o.signAlg, Value: b64u.EncodeToString(benchDigest())})
	case "get":
		return benchJob{method: http.MethodGet, url: base + q, header: h}, nil
	}
	return benchJob{}, fmt.Errorf("no server request for %s", op)
}

// zeroJob builds the same request for the zero-logic server.
// tokenLen is the length of the bearer token the server requests carry,
// so that both send the same bytes.
func zeroJob(z *zeroServer, op, signAlg string, tokenLen int) (benchJob, error) {
	base := z.url + "/keys/bench/00000000000000000000000000000000"
	q := "?api-version=" + benchAPIVersion
	if tokenLen <= 0 {
		tokenLen = 1200 // about what the server issues
	}
	h := http.Header{"Authorization": {"Bearer " + strings.Repeat("x", tokenLen)}, "Accept": {"application/json"}, "Content-Type": {"application/json"}}
	var path string
	var p keyOpParams
	switch op {
	case "wrap":
		path, p = "/wrapkey", keyOpParams{Alg: "RSA-OAEP-256", Value: b64u.EncodeToString(z.ops.dek)}
	case "unwrap":
		ct, err := z.ops.wrap(z.ops.dek)
		if err != nil {
			return benchJob{}, err
		}
		path, p = "/unwrapkey", keyOpParams{Alg: "RSA-OAEP-256", Value: b64u.EncodeToString(ct)}
	case "sign":
		path, p = "/sign", keyOpParams{Alg: signAlg, Value: b64u.EncodeToString(benchDigest())}
	case "get":
		h.Del("Content-Type")
		return benchJob{method: http.MethodGet, url: base + q, header: h}, nil
	case "token":
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"00000000-0000-0000-0000-000000000000"},
			"client_secret": {strings.Repeat("s", 40)}, "scope": {armScope}}
		h = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		return benchJob{method: http.MethodPost, url: z.url + "/00000000-0000-0000-0000-000000000000/oauth2/v2.0/token", header: h, body: []byte(form.Encode())}, nil
	default:
		return benchJob{}, fmt.Errorf("no baseline request for %s", op)
	}
	body, _ := json.Marshal(p)
	return benchJob{method: http.MethodPost, url: base + path + q, header: h, body: body}, nil
}

// benchTarget is one thing measured: the server or the baseline over
// HTTP (c and j; or nodes, taken in turn, and j), or work in this process
// (w).
type benchTarget struct {
	name  string
	c     *http.Client
	nodes []*http.Client
	j     benchJob
	w     func() workerFunc
}

// workers returns the worker factory of t.
func (t benchTarget) workers(ctx context.Context) func() workerFunc {
	switch {
	case t.w != nil:
		return t.w
	case len(t.nodes) > 0:
		return roundRobin(ctx, t.nodes, t.j)
	}
	return httpWorker(ctx, t.c, t.j)
}

// roundRobin makes workers that send j through the clients in turn: the
// i-th worker made uses clients[i mod len(clients)] for all its requests,
// so a run's workers are spread evenly over the nodes.
func roundRobin(ctx context.Context, clients []*http.Client, j benchJob) func() workerFunc {
	next := 0
	return func() workerFunc {
		c := clients[next%len(clients)]
		next++
		return httpWorker(ctx, c, j)()
	}
}

// nodeClients returns one client per endpoint. Each sends every request to
// its endpoint's address whatever host the URL names, and keeps the URL,
// the Host header and the TLS server name: the nodes of one deployment
// share its public URL, vault host names and certificate, and a load
// balancer in front of them routes the same way. endpoints are validated.
func nodeClients(base *http.Transport, proto string, conns int, endpoints []string) []*http.Client {
	dial := base.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	out := make([]*http.Client, len(endpoints))
	for i, e := range endpoints {
		addr, _ := endpointAddr(e)
		tr := base.Clone()
		// Through base's dialer, which resolves *.localhost to loopback.
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) { return dial(ctx, network, addr) }
		out[i] = benchTransport(tr, proto, conns)
	}
	return out
}

// endpointAddr returns the host:port an --endpoint URL names.
func endpointAddr(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("--endpoint %q: use the https URL of a node, such as https://localhost:8443", endpoint)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// measureAt measures each target at conc, after its warmup. The measured
// time and count are split into --rounds slices that alternate between the
// targets, so that other load on the machine falls on all of them alike.
func (r *benchRun) measureAt(ctx context.Context, op string, size, conc int, targets []benchTarget) {
	for _, t := range targets {
		if r.o.warmup > 0 {
			r.progress(op, size, conc, t.name+" (warmup)")
			drive(ctx, conc, benchLimit{dur: r.o.warmup}, t.workers(ctx))
		}
	}
	lim := r.o.limit()
	sums := make([]summary, len(targets))
	rates := make([][]float64, len(targets))
	for round := range r.o.rounds {
		per := benchLimit{dur: lim.dur / time.Duration(r.o.rounds)}
		if lim.ops > 0 {
			per.ops = lim.ops / int64(r.o.rounds)
			if int64(round) < lim.ops%int64(r.o.rounds) {
				per.ops++
			}
		}
		for i, t := range targets {
			r.progress(op, size, conc, t.name)
			run := drive(ctx, conc, per, t.workers(ctx))
			sums[i] = sums[i].merge(run)
			if run.elapsed > 0 {
				rates[i] = append(rates[i], math.Round(float64(run.ops)/run.elapsed.Seconds()))
			}
		}
	}
	for i, t := range targets {
		slices.Sort(sums[i].lat)
		res := sums[i].result(op, size, conc, t.name)
		res.ItemSize = r.item
		if r.o.rounds > 1 && len(rates[i]) == r.o.rounds {
			res.RoundOpsPerSec = rates[i]
		}
		r.rep.Results = append(r.rep.Results, res)
	}
}

// merge adds the run t to s; the caller sorts the latencies at the end.
func (s summary) merge(t summary) summary {
	s.ops += t.ops
	s.elapsed += t.elapsed
	s.lat = append(s.lat, t.lat...)
	for k, v := range t.errs {
		if s.errs == nil {
			s.errs = map[string]int{}
		}
		s.errs[k] += v
	}
	if s.firstErr == "" {
		s.firstErr = t.firstErr
	}
	return s
}

// raw measures the raw crypto baseline (crypto/rsa, or crypto/cipher's
// AES-GCM for items) with GOMAXPROCS workers.
func (r *benchRun) raw(ctx context.Context, op string, size int, w func() workerFunc) {
	n := runtime.GOMAXPROCS(0)
	r.progress(op, size, n, rawTarget(op))
	res := drive(ctx, n, r.o.limit(), w).result(op, size, n, rawTarget(op))
	res.ItemSize = r.item
	r.rep.Results = append(r.rep.Results, res)
}

func (r *benchRun) progress(op string, size, conc int, target string) {
	fmt.Fprintf(r.log, "measuring %s %s c=%d %s...\n", op, keyLabel(op, size, r.item), conc, target)
}

// measureSize measures ops with keys of one size: the server's key and a
// fresh local key of the same size for the baselines.
func (r *benchRun) measureSize(ctx context.Context, size int, ops []string) (err error) {
	var k *benchKey
	if !r.o.baselineOnly {
		if k, err = r.serverKey(ctx, size); err != nil {
			return err
		}
		defer r.dropKey(ctx, k)
		size = k.size
	}
	var z *zeroServer
	var local rsaOps
	if r.o.baseline {
		priv, err := rsa.GenerateKey(rand.Reader, size)
		if err != nil {
			return err
		}
		local = rsaOps{key: priv, signAlg: r.o.signAlg, dek: r.dek}
		if z, err = startZero(local); err != nil {
			return err
		}
		defer z.Close()
	}
	var zp *zeroProcess
	if r.o.baselineProcess {
		var rsaOpsOnly []string
		for _, op := range ops {
			if op != "get" {
				rsaOpsOnly = append(rsaOpsOnly, op)
			}
		}
		if len(rsaOpsOnly) > 0 {
			if zp, err = startZeroProcess(ctx, size, r.o.signAlg, len(r.token), rsaOpsOnly, nil); err != nil {
				return err
			}
			defer zp.Close()
		}
	}
	conns := slices.Max(r.o.concurrency)
	for _, op := range ops {
		var sj, zj benchJob
		if k != nil {
			if sj, err = r.serverJob(ctx, op, k); err != nil {
				return fmt.Errorf("%s: %w", op, err)
			}
		}
		var zc *http.Client
		if z != nil {
			if zj, err = zeroJob(z, op, r.o.signAlg, len(r.token)); err != nil {
				return err
			}
			zc = benchTransport(z.tr, r.o.proto, conns)
		}
		var targets []benchTarget
		if k != nil {
			targets = append(targets, benchTarget{name: "server", nodes: r.nodes, j: sj})
		}
		if z != nil {
			targets = append(targets, benchTarget{name: "baseline-https", c: zc, j: zj})
		}
		var pc *http.Client
		if pj, ok := zp.job(op); ok {
			pc = benchTransport(zp.tr, r.o.proto, conns)
			targets = append(targets, benchTarget{name: "baseline-process", c: pc, j: pj})
		}
		for _, conc := range r.o.concurrency {
			r.measureAt(ctx, op, size, conc, targets)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if zc != nil {
			zc.CloseIdleConnections()
		}
		if pc != nil {
			pc.CloseIdleConnections()
		}
		if z != nil {
			if w := local.raw(op); w != nil {
				r.raw(ctx, op, size, w)
			}
		}
	}
	return ctx.Err()
}

// measureToken measures the client credentials grant. The baselines sign
// once with RSA-2048 per request, as the server's RS256 tokens are.
func (r *benchRun) measureToken(ctx context.Context) error {
	const size = 2048
	var sj benchJob
	if !r.o.baselineOnly {
		p := r.s.prof
		if p.ClientSecret == "" {
			return errors.New("--op token needs application credentials: AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or --credentials-file")
		}
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {p.ClientID}, "client_secret": {p.ClientSecret}, "scope": {armScope}}
		sj = benchJob{method: http.MethodPost, url: p.Endpoint + "/" + url.PathEscape(p.TenantID) + "/oauth2/v2.0/token",
			header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, body: []byte(form.Encode())}
	}
	var z *zeroServer
	var local rsaOps
	var zj benchJob
	var zc *http.Client
	if r.o.baseline {
		priv, err := rsa.GenerateKey(rand.Reader, size)
		if err != nil {
			return err
		}
		local = rsaOps{key: priv, signAlg: "RS256", dek: r.dek}
		if z, err = startZero(local); err != nil {
			return err
		}
		defer z.Close()
		if zj, err = zeroJob(z, "token", "RS256", 0); err != nil {
			return err
		}
		zc = benchTransport(z.tr, r.o.proto, slices.Max(r.o.concurrency))
		defer zc.CloseIdleConnections()
	}
	var targets []benchTarget
	if !r.o.baselineOnly {
		targets = append(targets, benchTarget{name: "server", nodes: r.nodes, j: sj})
	}
	if z != nil {
		targets = append(targets, benchTarget{name: "baseline-https", c: zc, j: zj})
	}
	for _, conc := range r.o.concurrency {
		r.measureAt(ctx, "token", size, conc, targets)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if z != nil {
		r.raw(ctx, "token", size, local.raw("token"))
	}
	return ctx.Err()
}

// ---- encrypt and decrypt through the encryption API ----

// benchBufs keeps the zero-logic server's item buffers, as the server
// pools its own.
var benchBufs sync.Pool

func benchBuf(n int) *[]byte {
	if p, ok := benchBufs.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n)
	return &b
}

// item is the zero-logic encrypt or decrypt: read the raw body, one
// AES-256-GCM operation, write the raw answer.
func (z *zeroServer) item(w http.ResponseWriter, r *http.Request, seal bool) {
	n := r.ContentLength
	if n < 0 || n > benchMaxItem+1024 {
		http.Error(w, "bad length", http.StatusBadRequest)
		return
	}
	in := benchBuf(int(n))
	defer benchBufs.Put(in)
	if _, err := io.ReadFull(r.Body, *in); err != nil {
		http.Error(w, "short body", http.StatusBadRequest)
		return
	}
	out := benchBuf(int(n) + z.aead.Overhead())
	defer benchBufs.Put(out)
	var res []byte
	var err error
	if seal {
		res = z.aead.Seal((*out)[:0], nil, *in, nil)
	} else if res, err = z.aead.Open((*out)[:0], nil, *in, nil); err != nil {
		http.Error(w, "decryption failed", http.StatusBadRequest)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/octet-stream"}
	h["Content-Length"] = []string{strconv.Itoa(len(res))}
	_, _ = w.Write(res)
}

// benchItems is the server side of encrypt and decrypt: the scope, the
// token the requests carry, and the Go client package on the same
// connection pool.
type benchItems struct {
	scope     string
	temporary bool
	path      string // /customerkey/v1/tenants/{tenant}/encryption/scopes
	token     string
	client    *ckclient.Client
}

// tokenClaims reads the object id and expiry of a JWT access token (its
// payload only: the server checks the signature).
func tokenClaims(tok string) (oid string, exp time.Time, err error) {
	parts := strings.Split(tok, ".")
	var c struct {
		OID string `json:"oid"`
		Exp int64  `json:"exp"`
	}
	if len(parts) != 3 {
		return "", exp, errors.New("the access token is not a JWT")
	}
	b, err := b64u.DecodeString(strings.TrimRight(parts[1], "="))
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.OID == "" {
		return "", exp, errors.New("the access token names no object id (oid)")
	}
	return c.OID, time.Unix(c.Exp, 0), nil
}

// staticToken hands the client package the token bench already holds.
type staticToken struct {
	tok string
	exp time.Time
}

func (t staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: t.tok, ExpiresOn: t.exp}, nil
}

// openItems gets a token and the scope: --scope, or a temporary one with
// the signed-in principal as its only principal.
func (r *benchRun) openItems(ctx context.Context) (*benchItems, error) {
	tok, err := r.s.token(ctx, armScope)
	if err != nil {
		return nil, err
	}
	oid, exp, err := tokenClaims(tok)
	if err != nil && r.o.scope == "" {
		return nil, fmt.Errorf("%w; bench needs it to make you the principal of its temporary scope: pass --scope instead", err)
	}
	if exp.IsZero() || err != nil {
		exp = time.Now().Add(time.Hour)
	}
	tenant := r.s.prof.TenantID
	it := &benchItems{scope: r.o.scope, token: tok, path: "/customerkey/v1/tenants/" + url.PathEscape(tenant) + "/encryption/scopes"}
	if it.scope == "" {
		var rb [6]byte
		_, _ = rand.Read(rb[:])
		name := "bench-" + hex.EncodeToString(rb[:])
		var sc struct {
			Name string `json:"name"`
		}
		if err := r.s.call(ctx, armScope, http.MethodPost, it.path, map[string]any{"name": name, "principals": []string{oid}}, &sc); err != nil {
			return nil, fmt.Errorf("creating the temporary encryption scope %s (it takes a Global or Compliance Administrator of the tenant, or pass --scope): %w", name, err)
		}
		it.scope, it.temporary = sc.Name, true
		fmt.Fprintf(r.log, "created the temporary encryption scope %s\n", it.scope)
	}
	it.client, err = ckclient.New(r.s.prof.Endpoint, tenant, staticToken{tok, exp}, &ckclient.Options{HTTPClient: r.server})
	if err != nil {
		r.dropScope(ctx, it)
		return nil, err
	}
	return it, nil
}

// dropScope deletes a temporary scope. It runs even when ctx has ended.
func (r *benchRun) dropScope(ctx context.Context, it *benchItems) {
	if !it.temporary || r.o.keep {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := r.s.call(ctx, armScope, http.MethodDelete, it.path+"/"+url.PathEscape(it.scope), nil, nil); err != nil {
		fmt.Fprintf(r.log, "warning: could not delete the temporary encryption scope %s: %v\n", it.scope, err)
		return
	}
	fmt.Fprintf(r.log, "deleted the temporary encryption scope %s\n", it.scope)
}

// itemCall sends one raw item request and returns the answer's body.
func (r *benchRun) itemCall(ctx context.Context, j benchJob) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, j.method, j.url, bytes.NewReader(j.body))
	if err != nil {
		return nil, err
	}
	req.Header = j.header.Clone()
	resp, err := r.server.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching %s: %w", j.url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 2*benchMaxItem))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			return nil, &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		return nil, &apiError{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
	}
	return raw, nil
}

// serverJob builds the raw request of op on pt, checking once that the
// server's decrypt returns what its encrypt took.
func (it *benchItems) serverJob(ctx context.Context, r *benchRun, op string, pt []byte) (benchJob, error) {
	base := r.s.prof.Endpoint + it.path + "/" + url.PathEscape(it.scope) + "/"
	h := http.Header{"Authorization": {"Bearer " + it.token}, "Content-Type": {"application/octet-stream"}}
	enc := benchJob{method: http.MethodPost, url: base + "encrypt", header: h, body: pt}
	if op == "encrypt" {
		return enc, nil
	}
	ct, err := r.itemCall(ctx, enc)
	if err != nil {
		return benchJob{}, fmt.Errorf("encrypting the item to decrypt: %w", err)
	}
	dec := benchJob{method: http.MethodPost, url: base + "decrypt", header: h, body: ct}
	back, err := r.itemCall(ctx, dec)
	if err != nil {
		return benchJob{}, fmt.Errorf("checking decrypt: %w", err)
	}
	if !bytes.Equal(back, pt) {
		return benchJob{}, errors.New("the server's decrypt did not return what its encrypt took")
	}
	return dec, nil
}

// clientWorkers is the client-seal target: Seal (encrypt) or Open
// (decrypt) of pt through the client package, its data key cached after
// the check made here.
func (it *benchItems) clientWorkers(ctx context.Context, op string, pt []byte) (func() workerFunc, error) {
	sealed, err := it.client.Seal(ctx, it.scope, pt, nil)
	if err != nil {
		return nil, fmt.Errorf("sealing with the client package: %w", err)
	}
	back, err := it.client.Open(ctx, it.scope, sealed, nil)
	if err != nil || !bytes.Equal(back, pt) {
		return nil, fmt.Errorf("the client package did not open what it sealed: %v", err)
	}
	f := func() error { _, err := it.client.Seal(ctx, it.scope, pt, nil); return err }
	if op == "decrypt" {
		f = func() error { _, err := it.client.Open(ctx, it.scope, sealed, nil); return err }
	}
	return func() workerFunc {
		return func() (string, error) {
			err := f()
			if re, ok := errors.AsType[*ckclient.ResponseError](err); ok {
				return strconv.Itoa(re.StatusCode), err
			}
			if err != nil {
				return "client", err
			}
			return "", nil
		}
	}, nil
}

// zeroItemJob builds the same raw request for the zero-logic server, with
// a bearer token of the same length.
func zeroItemJob(z *zeroServer, op string, pt []byte, tokenLen int) benchJob {
	if tokenLen <= 0 {
		tokenLen = 1200 // about what the server issues
	}
	h := http.Header{"Authorization": {"Bearer " + strings.Repeat("x", tokenLen)}, "Content-Type": {"application/octet-stream"}}
	body := pt
	if op == "decrypt" {
		body = z.aead.Seal(nil, nil, pt, nil)
	}
	return benchJob{method: http.MethodPost, url: z.url + "/customerkey/v1/tenants/00000000-0000-0000-0000-000000000000/encryption/scopes/bench/" + op,
		header: h, body: body}
}

// rawAES is the raw-aes worker of op on pt: crypto/cipher's AES-256-GCM
// into a new slice, as the client package returns one.
func rawAES(aead cipher.AEAD, op string, pt []byte) func() workerFunc {
	ct := aead.Seal(nil, nil, pt, nil)
	f := func() error { aead.Seal(nil, nil, pt, nil); return nil }
	if op == "decrypt" {
		f = func() error { _, err := aead.Open(nil, nil, ct, nil); return err }
	}
	return func() workerFunc {
		return func() (string, error) {
			if err := f(); err != nil {
				return "crypto", err
			}
			return "", nil
		}
	}
}

// measureItems measures encrypt and decrypt for each item size: the
// server, the zero-logic server and the client package, then raw AES.
func (r *benchRun) measureItems(ctx context.Context, ops []string) (err error) {
	defer func() { r.item = 0 }()
	const keyBits = 256
	var it *benchItems
	if !r.o.baselineOnly {
		if it, err = r.openItems(ctx); err != nil {
			return err
		}
		defer r.dropScope(ctx, it)
	}
	var z *zeroServer
	var aead cipher.AEAD
	if r.o.baseline {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		block, err := aes.NewCipher(key)
		if err != nil {
			return err
		}
		if aead, err = cipher.NewGCMWithRandomNonce(block); err != nil {
			return err
		}
		if z, err = startZeroServer(&zeroServer{aead: aead}); err != nil {
			return err
		}
		defer z.Close()
	}
	var zp *zeroProcess
	if r.o.baselineProcess {
		tokenLen := 0
		if it != nil {
			tokenLen = len(it.token)
		}
		if zp, err = startZeroProcess(ctx, 2048, r.o.signAlg, tokenLen, ops, r.o.itemSizes); err != nil {
			return err
		}
		defer zp.Close()
	}
	conns := slices.Max(r.o.concurrency)
	for _, size := range r.o.itemSizes {
		r.item = size
		pt := make([]byte, size)
		_, _ = rand.Read(pt)
		for _, op := range ops {
			var targets []benchTarget
			tokenLen := 0
			if it != nil {
				sj, err := it.serverJob(ctx, r, op, pt)
				if err != nil {
					return fmt.Errorf("%s: %w", op, err)
				}
				targets = append(targets, benchTarget{name: "server", nodes: r.nodes, j: sj})
				tokenLen = len(it.token)
			}
			var zc *http.Client
			if z != nil {
				zc = benchTransport(z.tr, r.o.proto, conns)
				targets = append(targets, benchTarget{name: "baseline-https", c: zc, j: zeroItemJob(z, op, pt, tokenLen)})
			}
			var pc *http.Client
			if pj, ok := zp.job(itemJobKey(op, size)); ok {
				pc = benchTransport(zp.tr, r.o.proto, conns)
				targets = append(targets, benchTarget{name: "baseline-process", c: pc, j: pj})
			}
			if it != nil {
				w, err := it.clientWorkers(ctx, op, pt)
				if err != nil {
					return fmt.Errorf("%s: %w", op, err)
				}
				targets = append(targets, benchTarget{name: "client-seal", w: w})
			}
			for _, conc := range r.o.concurrency {
				r.measureAt(ctx, op, keyBits, conc, targets)
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if zc != nil {
				zc.CloseIdleConnections()
			}
			if pc != nil {
				pc.CloseIdleConnections()
			}
			if aead != nil {
				r.raw(ctx, op, keyBits, rawAES(aead, op, pt))
			}
		}
	}
	return ctx.Err()
}
