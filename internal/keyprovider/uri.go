package keyprovider

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/customerkey/customerkey/internal/errkind"
)

// keyRef is a parsed key URI of one of this deployment's vaults.
type keyRef struct {
	vault   string // the vault's name, lower case
	host    string // {vault}.{suffix}[:port], lower case
	name    string
	version string // empty: the current version
}

// vaultURL is the base URL azkeys takes.
func (k keyRef) vaultURL() string { return "https://" + k.host }

// id is the key identifier in AKV's form.
func (k keyRef) id() string {
	s := "https://" + k.host + "/keys/" + k.name
	if k.version != "" {
		s += "/" + k.version
	}
	return s
}

// sameKey reports whether o names the same key of the same vault,
// whatever the versions.
func (k keyRef) sameKey(o keyRef) bool {
	return k.host == o.host && strings.EqualFold(k.name, o.name)
}

const maxURILen = 512

// parseKeyURI accepts https://{vault}.{suffix}[:port]/keys/{name}[/{version}]
// and nothing else: no other host (so a root key can never be sent to a
// server outside this deployment), no query, fragment, user info or
// escaping. The error is errkind.Invalid and says what is wrong.
func parseKeyURI(raw, suffix string) (keyRef, error) {
	form := "a key URI has the form https://{vault}." + suffix + "[:port]/keys/{name}[/{version}]"
	bad := func(why string) (keyRef, error) {
		return keyRef{}, errkind.Errorf(errkind.Invalid, "%s; %s", why, form)
	}
	if len(raw) > maxURILen {
		return bad("it is longer than 512 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, "https") || u.Opaque != "" || u.Host == "" {
		return bad("it is not an https URL")
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "" || u.RawPath != "" {
		return bad("it must not carry user information, a query, a fragment or escaped characters")
	}
	hostname := strings.ToLower(u.Hostname())
	host := hostname
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return bad("its port is not a number from 1 to 65535")
		}
		host += ":" + port
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("its port is empty")
	}
	vault, ok := strings.CutSuffix(hostname, "."+suffix)
	if !ok {
		return bad("its host " + clip(hostname) + " is not a vault of this deployment")
	}
	if !validVaultName(vault) {
		return bad("its vault name " + clip(vault) + " is not 3 to 24 letters, digits and single hyphens, starting with a letter")
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "keys" {
		return bad("its path must be /keys/{name} or /keys/{name}/{version}")
	}
	ref := keyRef{vault: vault, host: host, name: parts[1]}
	if !validKeyName(ref.name) {
		return bad("its key name must be 1 to 127 letters, digits and hyphens")
	}
	if len(parts) == 3 {
		if !validVersion(parts[2]) {
			return bad("its key version must be 32 hexadecimal digits")
		}
		ref.version = parts[2]
	}
	return ref, nil
}

// validVaultName follows Azure's rule for vault names.
func validVaultName(s string) bool {
	if len(s) < 3 || len(s) > 24 || s[0] < 'a' || s[0] > 'z' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validKeyName(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validVersion(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// clip bounds caller-supplied text echoed in messages.
func clip(s string) string {
	const max = 256
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
