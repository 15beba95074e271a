package cli

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// TestZeroServerChild runs the child side of --baseline-process in this
// process: it announces its certificate and requests, answers them, and
// stops when its standard input closes.
func TestZeroServerChild(t *testing.T) {
	cmd := zeroServerCmd()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	cmd.SetIn(inR)
	cmd.SetOut(outW)
	cmd.SetArgs([]string{"--op", "unwrap", "--op", "sign", "--key-size", "2048"})
	done := make(chan error, 1)
	go func() { done <- cmd.Execute(); outW.Close() }()

	line, err := bufio.NewReader(outR).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var h zeroProcessHello
	if err := json.Unmarshal(line, &h); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(h.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, op := range []string{"unwrap", "sign"} {
		j, ok := h.Jobs[op]
		if !ok || j.method != http.MethodPost || len(j.body) == 0 || j.header.Get("Authorization") == "" {
			t.Fatalf("job %s = %+v, %v", op, j, ok)
		}
		req, _ := http.NewRequest(j.method, j.url, bytes.NewReader(j.body))
		req.Header = j.header
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out keyOpResult
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || out.Value == "" {
			t.Fatalf("%s: status %d, %+v, %v", op, resp.StatusCode, out, err)
		}
	}
	if _, ok := h.Jobs["wrap"]; ok {
		t.Error("a job for an operation not asked for")
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatalf("the child did not stop cleanly when its input closed: %v", err)
	}
}

func TestRatiosWithProcessBaseline(t *testing.T) {
	r := benchReport{Results: []benchResult{
		{Op: "unwrap", KeySize: 2048, Concurrency: 8, Target: "server", OpsPerSec: 900},
		{Op: "unwrap", KeySize: 2048, Concurrency: 8, Target: "baseline-https", OpsPerSec: 1200},
		{Op: "unwrap", KeySize: 2048, Concurrency: 8, Target: "baseline-process", OpsPerSec: 1000},
		{Op: "unwrap", KeySize: 2048, Concurrency: 2, Target: "raw-rsa", OpsPerSec: 1500},
	}}
	r.ratios()
	if len(r.Ratios) != 1 {
		t.Fatalf("ratios = %+v", r.Ratios)
	}
	q := r.Ratios[0]
	if q.ServerPerBaseline != 0.75 || q.ServerPerProcess != 0.9 || q.ProcessOpsPerSec != 1000 || q.ServerPerRaw != 0.6 {
		t.Errorf("ratio = %+v", q)
	}
	var b bytes.Buffer
	if err := r.print(printer{w: &b}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b.Bytes(), []byte("SERVER/BASELINE-PROCESS")) || !bytes.Contains(b.Bytes(), []byte("0.833")) {
		t.Errorf("table lacks the process baseline columns:\n%s", b.String())
	}
}
