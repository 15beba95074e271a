package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHSMKeys(t *testing.T) {
	valid := func() Config {
		c := Default()
		c.DataDir = t.TempDir()
		if err := c.Complete(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string // "" means valid
	}{
		{"default file seal", func(*Config) {}, ""},
		{"pkcs11 seal with an HSM", func(c *Config) {
			c.Seal, c.HSMModule, c.HSMToken, c.HSMPINFile = SealPKCS11, "/usr/lib/softhsm/libsofthsm2.so", "ck", "/etc/ck/pin"
		}, ""},
		{"HSM keys without the seal", func(c *Config) { c.HSMModule, c.HSMToken = "/usr/lib/p11.so", "ck" }, ""},
		{"pkcs11 seal without an HSM", func(c *Config) { c.Seal = SealPKCS11 }, "seal: is pkcs11, which needs hsm-module"},
		{"unknown seal", func(c *Config) { c.Seal = "tpm" }, `seal: "tpm" must be file or pkcs11`},
		{"relative module", func(c *Config) { c.HSMModule, c.HSMToken = "libsofthsm2.so", "ck" }, "hsm-module: \"libsofthsm2.so\" must be the absolute path"},
		{"module without token", func(c *Config) { c.HSMModule = "/usr/lib/p11.so" }, "hsm-token: is required with hsm-module"},
		{"token without module", func(c *Config) { c.HSMToken = "ck" }, "hsm-module: is required when hsm-token"},
		{"negative sessions", func(c *Config) { c.HSMMaxSessions = -2 }, "hsm-max-sessions: -2 must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() err = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestHSMKeysFromFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	body := "seal: pkcs11\nhsm-module: /usr/lib/softhsm/libsofthsm2.so\nhsm-token: customerkey\nhsm-pin-file: pin\nhsm-max-sessions: 8\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.DataDir = dir
	if err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if err := c.Complete(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() err = %v", err)
	}
	if c.Seal != SealPKCS11 || c.HSMToken != "customerkey" || c.HSMMaxSessions != 8 || !filepath.IsAbs(c.HSMPINFile) {
		t.Errorf("config = seal %q token %q sessions %d pin file %q", c.Seal, c.HSMToken, c.HSMMaxSessions, c.HSMPINFile)
	}
	if err := os.WriteFile(path, []byte("hsm-pin: 1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := Default()
	if err := fresh.LoadFile(path); err == nil || !strings.Contains(err.Error(), "hsm-pin not found") {
		t.Errorf("LoadFile(hsm-pin) err = %v, want the key refused: a PIN never goes in the file", err)
	}
}
