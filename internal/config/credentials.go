package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Credentials is operator.json: how the operator's tools reach the server
// and sign in as the operator's automation application.
type Credentials struct {
	Endpoint     string `json:"endpoint"`
	CAFile       string `json:"caFile"`
	TenantID     string `json:"tenantId"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

// CredentialsFile is the name of the operator's credentials in the data directory.
const CredentialsFile = "operator.json"

// ReadCredentials reads and checks a credentials file.
func ReadCredentials(path string) (Credentials, error) {
	var c Credentials
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("reading credentials: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("credentials file %s is not valid: %w", path, err)
	}
	if c.Endpoint == "" || c.TenantID == "" || c.ClientID == "" || c.ClientSecret == "" {
		return c, fmt.Errorf("credentials file %s lacks endpoint, tenantId, clientId or clientSecret", path)
	}
	return c, nil
}

// WriteCredentials writes c to path with mode 0600, atomically: a reader
// sees the old file or the new one, never half of it.
func WriteCredentials(path string, c Credentials) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".operator-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
