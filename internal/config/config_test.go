package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadAndValidate(t *testing.T) {
	t.Setenv("CK_TEST_SUFFIX", "vault.example.com")
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte("listen: 127.0.0.1:9443\nvault-dns-suffix: ${CK_TEST_SUFFIX}\ntoken-lifetime: 30m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.DataDir = dir
	if err := c.LoadFile(path); err != nil {
		t.Fatalf("LoadFile() err = %v", err)
	}
	if err := c.Complete(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() err = %v", err)
	}
	if c.PublicURL != "https://localhost:9443" || c.VaultDNSSuffix != "vault.example.com" || c.TokenLifetime != 30*time.Minute {
		t.Errorf("config = %+v", c)
	}
	if got := c.VaultResource(); got != "https://vault.example.com:9443" {
		t.Errorf("VaultResource() = %q", got)
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, body, want string }{
		{"unknown key", "listen: 127.0.0.1:1\nlisten-port: 3\n", "field listen-port not found"},
		{"unset env", "data-dir: ${CK_TEST_SURELY_UNSET}\n", "CK_TEST_SURELY_UNSET"},
		{"bad duration", "token-lifetime: soon\n", "line 1: cannot unmarshal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".yaml")
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			c := Default()
			err := c.LoadFile(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadFile() err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	empty := filepath.Join(dir, "empty.yaml")
	_ = os.WriteFile(empty, nil, 0o600)
	c := Default()
	if err := c.LoadFile(empty); err != nil {
		t.Errorf("LoadFile(empty) err = %v, want nil", err)
	}
}

func TestValidateJoinsEveryProblem(t *testing.T) {
	c := Config{Listen: "nope", PublicURL: "http://x/y", VaultDNSSuffix: "Bad_Name", LogLevel: "loud", LogFormat: "xml"}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want errors")
	}
	for _, key := range []string{"data-dir", "listen", "public-url", "vault-dns-suffix", "log-level", "log-format", "token-lifetime", "signing-key-rotation", "shutdown-timeout"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("Validate() = %v; does not mention %s", err, key)
		}
	}
}

func TestCredentialsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), CredentialsFile)
	want := Credentials{Endpoint: "https://localhost:8443", CAFile: "/x/ca.pem", TenantID: "t", ClientID: "c", ClientSecret: "s"}
	if err := WriteCredentials(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	got, err := ReadCredentials(path)
	if err != nil || got != want {
		t.Errorf("ReadCredentials() = %+v, %v; want %+v", got, err, want)
	}
}

func TestValidateStore(t *testing.T) {
	tests := []struct {
		name, store, passwordFile string
		timeout                   time.Duration
		want                      string // "" when valid
	}{
		{"default bolt", StoreBolt, "", 30 * time.Second, ""},
		{"postgres", "postgres://ck@db.example.com:5432/ck?sslmode=verify-full", "/run/secrets/pg", 30 * time.Second, ""},
		{"postgresql scheme", "postgresql://ck@db/ck", "", time.Minute, ""},
		{"unknown kind", "mysql://ck:hunter2@db/ck", "", 30 * time.Second, "store: must be bolt or a postgres:// URL"},
		{"empty", "", "", 30 * time.Second, "store: must be bolt"},
		{"no host", "postgres:///ck", "", 30 * time.Second, "store: is not a valid URL"},
		{"bad URL hides its password", "postgres://ck:hunter2@db:port/ck", "", 30 * time.Second, "store: is not a valid URL"},
		{"password file with bolt", StoreBolt, "/run/secrets/pg", 30 * time.Second, "store-password-file: is set, but store is bolt"},
		{"timeout too short", StoreBolt, "", 0, "store-connect-timeout: 0s must be between 1s and 1h"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.DataDir = t.TempDir()
			c.Store, c.StorePasswordFile, c.StoreConnectTimeout = tc.store, tc.passwordFile, tc.timeout
			if err := c.Complete(); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() err = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() err = %v, want it to mention %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Errorf("Validate() err = %v holds the password", err)
			}
		})
	}
}

func TestStoreFromFile(t *testing.T) {
	t.Setenv("CK_TEST_PGHOST", "db.internal")
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	body := "store: postgres://ck@${CK_TEST_PGHOST}/ck\nstore-password-file: pg.pass\nstore-connect-timeout: 2m\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Default()
	if err := c.LoadFile(path); err != nil {
		t.Fatalf("LoadFile() err = %v", err)
	}
	if err := c.Complete(); err != nil {
		t.Fatal(err)
	}
	if !c.StoreIsPostgres() || c.Store != "postgres://ck@db.internal/ck" || c.StoreConnectTimeout != 2*time.Minute {
		t.Errorf("store settings = %q, %v; want the expanded URL and 2m", c.Store, c.StoreConnectTimeout)
	}
	if !filepath.IsAbs(c.StorePasswordFile) {
		t.Errorf("StorePasswordFile = %q, want an absolute path after Complete", c.StorePasswordFile)
	}
	if Default().StoreIsPostgres() {
		t.Error("Default().StoreIsPostgres() = true, want the embedded store by default")
	}
}

func TestValidateHeapHeadroom(t *testing.T) {
	for _, tc := range []struct {
		mib  int
		want string // "" when valid
	}{
		{64, ""},
		{0, ""},
		{1 << 20, ""},
		{-1, "heap-headroom-mib: -1 must be between 0"},
		{1<<20 + 1, "heap-headroom-mib: 1048577 must be between 0"},
	} {
		c := Default()
		c.DataDir = t.TempDir()
		c.HeapHeadroomMiB = tc.mib
		if err := c.Complete(); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("heap-headroom-mib %d: Validate() = %v, want %q", tc.mib, err, tc.want)
		}
	}
}
