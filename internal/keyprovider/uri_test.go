package keyprovider

import (
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/errkind"
)

func TestParseKeyURI(t *testing.T) {
	const suffix = "vault.localhost"
	const ver = "0123456789abcdef0123456789ABCDEF"
	tests := []struct {
		name    string
		uri     string
		want    keyRef // zero when refused
		id      string
		refused string // part of the reason
	}{
		{"versionless", "https://contosoexo1.vault.localhost:8443/keys/root1",
			keyRef{vault: "contosoexo1", host: "contosoexo1.vault.localhost:8443", name: "root1"},
			"https://contosoexo1.vault.localhost:8443/keys/root1", ""},
		{"versioned", "https://contosoexo1.vault.localhost:8443/keys/root1/" + ver,
			keyRef{vault: "contosoexo1", host: "contosoexo1.vault.localhost:8443", name: "root1", version: ver},
			"https://contosoexo1.vault.localhost:8443/keys/root1/" + ver, ""},
		{"no port, upper-case host", "HTTPS://ContosoEXO1.Vault.LocalHost/keys/Root-1",
			keyRef{vault: "contosoexo1", host: "contosoexo1.vault.localhost", name: "Root-1"},
			"https://contosoexo1.vault.localhost/keys/Root-1", ""},
		{"foreign vault", "https://x.vault.azure.net/keys/root1", keyRef{}, "", "host x.vault.azure.net is not a vault of this deployment"},
		{"the suffix itself", "https://vault.localhost/keys/root1", keyRef{}, "", "is not a vault of this deployment"},
		{"suffix lookalike", "https://kv.evilvault.localhost/keys/root1", keyRef{}, "", "is not a vault of this deployment"},
		{"suffix as a prefix", "https://kv.vault.localhost.evil.example/keys/root1", keyRef{}, "", "is not a vault of this deployment"},
		{"nested vault label", "https://a.kv1.vault.localhost/keys/root1", keyRef{}, "", "vault name a.kv1"},
		{"http", "http://kv1.vault.localhost/keys/root1", keyRef{}, "", "not an https URL"},
		{"relative", "/keys/root1", keyRef{}, "", "not an https URL"},
		{"port out of range", "https://kv1.vault.localhost:99999/keys/root1", keyRef{}, "", "port"},
		{"empty port", "https://kv1.vault.localhost:/keys/root1", keyRef{}, "", "port is empty"},
		{"user info", "https://me@kv1.vault.localhost/keys/root1", keyRef{}, "", "user information"},
		{"query", "https://kv1.vault.localhost/keys/root1?api-version=7.4", keyRef{}, "", "query"},
		{"empty query", "https://kv1.vault.localhost/keys/root1?", keyRef{}, "", "query"},
		{"fragment", "https://kv1.vault.localhost/keys/root1#x", keyRef{}, "", "fragment"},
		{"escaped path", "https://kv1.vault.localhost/keys/root%2F1", keyRef{}, "", "escaped"},
		{"secrets path", "https://kv1.vault.localhost/secrets/root1", keyRef{}, "", "path must be"},
		{"no name", "https://kv1.vault.localhost/keys/", keyRef{}, "", "key name"},
		{"trailing slash", "https://kv1.vault.localhost/keys/root1/", keyRef{}, "", "version"},
		{"too deep", "https://kv1.vault.localhost/keys/root1/" + ver + "/wrapkey", keyRef{}, "", "path must be"},
		{"bad name", "https://kv1.vault.localhost/keys/root_1", keyRef{}, "", "key name"},
		{"short version", "https://kv1.vault.localhost/keys/root1/abc", keyRef{}, "", "32 hexadecimal"},
		{"short vault name", "https://kv.vault.localhost/keys/root1", keyRef{}, "", "vault name kv"},
		{"vault name with a double hyphen", "https://kv--1.vault.localhost/keys/root1", keyRef{}, "", "vault name"},
		{"vault name starting with a digit", "https://1kv.vault.localhost/keys/root1", keyRef{}, "", "vault name"},
		{"too long", "https://kv1.vault.localhost/keys/" + strings.Repeat("a", 600), keyRef{}, "", "longer than 512"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKeyURI(tc.uri, suffix)
			if tc.refused != "" {
				if err == nil || errkind.KindOf(err) != errkind.Invalid || !strings.Contains(err.Error(), tc.refused) ||
					!strings.Contains(err.Error(), "https://{vault}.vault.localhost[:port]/keys/{name}[/{version}]") {
					t.Errorf("parseKeyURI(%q) = %+v, %v; want Invalid mentioning %q and the form", tc.uri, got, err, tc.refused)
				}
				return
			}
			if err != nil || got != tc.want || got.id() != tc.id {
				t.Errorf("parseKeyURI(%q) = %+v (id %s), %v; want %+v (id %s)", tc.uri, got, got.id(), err, tc.want, tc.id)
			}
		})
	}
}
