package cli

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

// The process baseline is the zero-logic HTTPS server of baseline-https run
// in a separate process (this binary, `bench zero-server`). The real server
// is always another process, which costs something the in-process baseline
// does not pay: two Go runtimes and two schedulers on the same cores, and
// loopback traffic between processes. Measuring both baselines in one run
// separates that structural cost from the server's own.

// zeroProcessHello is the one line a zero-server child prints when ready.
type zeroProcessHello struct {
	CertDER []byte              `json:"certDer"`
	Jobs    map[string]benchJob `json:"jobs"`
}

// benchJob's fields are unexported; the child sends them in this form.
type wireJob struct {
	Method string      `json:"method"`
	URL    string      `json:"url"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"body"`
}

func (j benchJob) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireJob{Method: j.method, URL: j.url, Header: j.header, Body: j.body})
}

func (j *benchJob) UnmarshalJSON(b []byte) error {
	var w wireJob
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*j = benchJob{method: w.Method, url: w.URL, header: w.Header, body: w.Body}
	return nil
}

// zeroServerCmd is the child side: it serves until its standard input
// closes, which happens when the parent exits for any reason.
func zeroServerCmd() *cobra.Command {
	var size, tokenLen int
	var signAlg string
	var ops []string
	var items []int
	cmd := &cobra.Command{
		Use:    "zero-server",
		Short:  "Serve the zero-logic HTTPS baseline in this process until standard input closes (used by bench --baseline-process)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, stopKeeping := keepBenchHeap()
			defer stopKeeping()
			z := &zeroServer{}
			var keyOps, itemOps []string
			for _, op := range ops {
				if isItemOp(op) {
					itemOps = append(itemOps, op)
				} else {
					keyOps = append(keyOps, op)
				}
			}
			if len(keyOps) > 0 {
				priv, err := rsa.GenerateKey(rand.Reader, size)
				if err != nil {
					return err
				}
				z.ops = rsaOps{key: priv, signAlg: signAlg, dek: newDEK()}
			}
			if len(itemOps) > 0 {
				key := make([]byte, 32)
				_, _ = rand.Read(key)
				block, err := aes.NewCipher(key)
				if err != nil {
					return err
				}
				if z.aead, err = cipher.NewGCMWithRandomNonce(block); err != nil {
					return err
				}
			}
			z, err := startZeroServer(z)
			if err != nil {
				return err
			}
			defer z.Close()
			hello := zeroProcessHello{CertDER: z.certDER, Jobs: map[string]benchJob{}}
			for _, op := range keyOps {
				j, err := zeroJob(z, op, signAlg, tokenLen)
				if err != nil {
					return err
				}
				hello.Jobs[op] = j
			}
			for _, op := range itemOps {
				for _, n := range items {
					pt := make([]byte, n)
					_, _ = rand.Read(pt)
					hello.Jobs[itemJobKey(op, n)] = zeroItemJob(z, op, pt, tokenLen)
				}
			}
			if err := json.NewEncoder(cmd.OutOrStdout()).Encode(hello); err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, cmd.InOrStdin())
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&size, "key-size", 2048, "RSA key size")
	f.StringVar(&signAlg, "sign-alg", "RS256", "RS256 or PS256")
	f.IntVar(&tokenLen, "token-len", 0, "length of the Authorization header's token")
	f.StringSliceVar(&ops, "op", []string{"unwrap"}, "operations to prepare requests for")
	f.IntSliceVar(&items, "item-size", nil, "item sizes in bytes of encrypt and decrypt")
	return cmd
}

// itemJobKey names the child's request for op on items of n bytes.
func itemJobKey(op string, n int) string { return op + "/" + strconv.Itoa(n) }

// zeroProcess is the parent's handle on a running zero-server child.
type zeroProcess struct {
	cmd   *exec.Cmd
	stdin io.Closer
	jobs  map[string]benchJob
	tr    *http.Transport
}

// startZeroProcess starts this executable as `bench zero-server` and waits
// for its hello line (at most a minute: RSA-4096 key generation is slow).
func startZeroProcess(ctx context.Context, size int, signAlg string, tokenLen int, ops []string, items []int) (*zeroProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("--baseline-process: finding this executable: %w", err)
	}
	args := []string{"bench", "zero-server", "--key-size", strconv.Itoa(size), "--sign-alg", signAlg, "--token-len", strconv.Itoa(tokenLen)}
	for _, op := range ops {
		args = append(args, "--op", op)
	}
	for _, n := range items {
		args = append(args, "--item-size", strconv.Itoa(n))
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("--baseline-process: starting %s: %w", exe, err)
	}
	p := &zeroProcess{cmd: cmd, stdin: stdin}
	type hello struct {
		h   zeroProcessHello
		err error
	}
	got := make(chan hello, 1)
	go func() {
		var h zeroProcessHello
		line, err := bufio.NewReader(stdout).ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &h)
		}
		got <- hello{h, err}
	}()
	var h hello
	select {
	case h = <-got:
	case <-time.After(time.Minute):
		h.err = errors.New("no answer within a minute")
	case <-ctx.Done():
		h.err = ctx.Err()
	}
	if h.err != nil {
		p.Close()
		return nil, fmt.Errorf("--baseline-process: the zero-logic server process did not start: %w", h.err)
	}
	cert, err := x509.ParseCertificate(h.h.CertDER)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("--baseline-process: the child's certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	p.jobs = h.h.Jobs
	p.tr = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	return p, nil
}

// Close ends the child (closing its standard input) and waits for it.
func (p *zeroProcess) Close() {
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// job returns the child's request for op; a nil p has none.
func (p *zeroProcess) job(op string) (benchJob, bool) {
	if p == nil {
		return benchJob{}, false
	}
	j, ok := p.jobs[op]
	return j, ok
}
