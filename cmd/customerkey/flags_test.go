package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/customerkey/customerkey/internal/config"
)

// TestConfigFrom: defaults, then the file, then the flags given, which win;
// a flag not given leaves the file's value.
func TestConfigFrom(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "customerkey.yaml")
	yaml := "data-dir: " + filepath.Join(dir, "from-file") + "\nlisten: 127.0.0.1:9443\nlog-level: warn\npolicy-key-cache-lifetime: 2m\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	parse := func(args ...string) (config.Config, error) {
		var cfg = config.Default()
		set := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		bindServe(set, &cfg)
		if err := set.Parse(args); err != nil {
			t.Fatal(err)
		}
		return configFrom(file, set, bindServe)
	}
	c, err := parse("--log-level", "debug", "--feature-registration-delay", "5s")
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != "debug" || c.FeatureRegistrationDelay != 5*time.Second {
		t.Errorf("flags did not win: log-level %q, delay %s", c.LogLevel, c.FeatureRegistrationDelay)
	}
	if c.Listen != "127.0.0.1:9443" || c.PolicyKeyCacheLifetime != 2*time.Minute || c.DataDir != filepath.Join(dir, "from-file") {
		t.Errorf("the file's values were lost: listen %q, lifetime %s, data-dir %q", c.Listen, c.PolicyKeyCacheLifetime, c.DataDir)
	}
	if c.PublicURL != "https://localhost:9443" {
		t.Errorf("public URL %q, want it derived from the file's listen address", c.PublicURL)
	}
	if c.VaultDNSSuffix != config.Default().VaultDNSSuffix {
		t.Errorf("a default was lost: vault-dns-suffix %q", c.VaultDNSSuffix)
	}
	if _, err := parse("--log-level", "loud"); err == nil || !strings.Contains(err.Error(), "log-level") {
		t.Errorf("an invalid flag value: err = %v, want the configuration error naming log-level", err)
	}
}
