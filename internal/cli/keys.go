package cli

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// apiKeys is the key vault API version the CLI speaks.
const apiKeys = "7.4"

// vaultScope is the audience key vault tokens carry.
const vaultScope = "https://vault.azure.net/.default"

type keyAttributes struct {
	Enabled         *bool  `json:"enabled,omitempty"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created,omitempty"`
	Updated         int64  `json:"updated,omitempty"`
	RecoveryLevel   string `json:"recoveryLevel,omitempty"`
	RecoverableDays int    `json:"recoverableDays,omitempty"`
}

type keyBundle struct {
	Key struct {
		KID    string   `json:"kid"`
		Kty    string   `json:"kty"`
		KeyOps []string `json:"key_ops"`
		N      string   `json:"n,omitempty"`
		Crv    string   `json:"crv,omitempty"`
	} `json:"key"`
	KID                string            `json:"kid,omitempty"` // list items
	Attributes         keyAttributes     `json:"attributes"`
	Tags               map[string]string `json:"tags,omitempty"`
	RecoveryID         string            `json:"recoveryId,omitempty"`
	DeletedDate        int64             `json:"deletedDate,omitempty"`
	ScheduledPurgeDate int64             `json:"scheduledPurgeDate,omitempty"`
}

func (k keyBundle) id() string {
	if k.Key.KID != "" {
		return k.Key.KID
	}
	return k.KID
}

// keySize is the RSA modulus length in bits, or the curve.
func (k keyBundle) keySize() string {
	if k.Key.Crv != "" {
		return k.Key.Crv
	}
	n, err := base64.RawURLEncoding.DecodeString(k.Key.N)
	if err != nil || len(n) == 0 {
		return ""
	}
	return strconv.Itoa(new(big.Int).SetBytes(n).BitLen())
}

func unixTime(p *int64) string {
	if p == nil {
		return ""
	}
	return time.Unix(*p, 0).UTC().Format("1/2/2006 3:04:05 PM")
}

// parseDate accepts the seed's 12/31/9999 and ISO dates.
func parseDate(s string) (int64, error) {
	for _, layout := range []string{"1/2/2006", "1/2/2006 15:04:05", "2006-01-02", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix(), nil
		}
	}
	return 0, fmt.Errorf("%q is not a date: use 12/31/9999, 2027-01-31 or 2027-01-31T00:00:00Z", s)
}

// vaultURL finds where vault name is served: the server says which DNS
// suffix its vaults use.
func (s *session) vaultURL(ctx context.Context, name string) (string, error) {
	var md struct {
		VaultDNSSuffix string `json:"vaultDnsSuffix"`
	}
	if err := s.call(ctx, "", "GET", "/customerkey/v1/metadata", nil, &md); err != nil {
		return "", err
	}
	u, err := url.Parse(s.prof.Endpoint)
	if err != nil {
		return "", err
	}
	host := strings.ToLower(name) + "." + md.VaultDNSSuffix
	if p := u.Port(); p != "" && p != "443" {
		host += ":" + p
	}
	return "https://" + host, nil
}

// vaultCall calls the key vault data plane of vault name.
func (s *session) vaultCall(ctx context.Context, vaultName, method, path string, in, out any) error {
	base, err := s.vaultURL(ctx, vaultName)
	if err != nil {
		return err
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return s.callURL(ctx, vaultScope, method, base+path+sep+"api-version="+apiKeys, in, out)
}

func printKey(pr printer, k keyBundle) error {
	enabled := "True"
	if k.Attributes.Enabled != nil && !*k.Attributes.Enabled {
		enabled = "False"
	}
	tags := make([]string, 0, len(k.Tags))
	for n, v := range k.Tags {
		tags = append(tags, n+"="+v)
	}
	sort.Strings(tags)
	fields := [][2]string{{"Id", k.id()}, {"Enabled", enabled}, {"Expires", unixTime(k.Attributes.Expires)},
		{"NotBefore", unixTime(k.Attributes.NotBefore)}, {"Created", unixTime(&k.Attributes.Created)}, {"Updated", unixTime(&k.Attributes.Updated)},
		{"RecoveryLevel", k.Attributes.RecoveryLevel}, {"KeyType", k.Key.Kty}, {"KeySize", k.keySize()},
		{"KeyOps", strings.Join(k.Key.KeyOps, ", ")}, {"Tags", strings.Join(tags, ", ")}}
	if k.ScheduledPurgeDate != 0 {
		fields = append(fields, [2]string{"DeletedDate", unixTime(&k.DeletedDate)}, [2]string{"ScheduledPurgeDate", unixTime(&k.ScheduledPurgeDate)})
	}
	return pr.printFields(k, fields)
}

func printKeys(pr printer, ks []keyBundle) error {
	rows := make([][]string, 0, len(ks))
	for _, k := range ks {
		enabled := "True"
		if k.Attributes.Enabled != nil && !*k.Attributes.Enabled {
			enabled = "False"
		}
		rows = append(rows, []string{k.id(), enabled, unixTime(k.Attributes.Expires), k.Attributes.RecoveryLevel})
	}
	return pr.print(ks, []string{"Id", "Enabled", "Expires", "RecoveryLevel"}, rows)
}

// listKeys follows nextLink pages.
func (s *session) listKeys(ctx context.Context, vaultName, path string) ([]keyBundle, error) {
	var all []keyBundle
	next := ""
	for {
		var page struct {
			Value    []keyBundle `json:"value"`
			NextLink string      `json:"nextLink"`
		}
		var err error
		if next == "" {
			err = s.vaultCall(ctx, vaultName, "GET", path, nil, &page)
		} else {
			err = s.callURL(ctx, vaultScope, "GET", next, nil, &page)
		}
		if err != nil {
			return nil, err
		}
		all = append(all, page.Value...)
		if page.NextLink == "" {
			return all, nil
		}
		next = page.NextLink
	}
}

type keyFlags struct {
	vault, name, version                 string
	kty, curve, expires, notBefore, file string
	size                                 int
	ops, tags                            []string
	disabled, deleted, hsm               bool
}

func (f *keyFlags) attributes() (map[string]any, error) {
	a := map[string]any{}
	if f.disabled {
		a["enabled"] = false
	}
	for name, v := range map[string]string{"exp": f.expires, "nbf": f.notBefore} {
		if v == "" {
			continue
		}
		t, err := parseDate(v)
		if err != nil {
			return nil, err
		}
		a[name] = t
	}
	return a, nil
}

func (f *keyFlags) tagMap() (map[string]string, error) {
	if len(f.tags) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, t := range f.tags {
		n, v, ok := strings.Cut(t, "=")
		if !ok || n == "" {
			return nil, fmt.Errorf("--tag %q: use name=value", t)
		}
		m[n] = v
	}
	return m, nil
}

func keyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Keys in a key vault (Add-, Get-, Update-, Backup-AzKeyVaultKey …)"}
	mk := func(use, short string, args cobra.PositionalArgs, run func(cmd *cobra.Command, s *session, pr printer, f *keyFlags) error, setup func(*cobra.Command, *keyFlags)) *cobra.Command {
		f := &keyFlags{}
		c := &cobra.Command{Use: use, Short: short, Args: args, RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			return run(cmd, s, pr, f)
		}}
		c.Flags().StringVar(&f.vault, "vault-name", "", "key vault name (required)")
		_ = c.MarkFlagRequired("vault-name")
		if setup != nil {
			setup(c, f)
		}
		return c
	}
	nameFlag := func(c *cobra.Command, f *keyFlags, required bool) {
		c.Flags().StringVar(&f.name, "name", "", "key name")
		if required {
			_ = c.MarkFlagRequired("name")
		}
	}
	attrFlags := func(c *cobra.Command, f *keyFlags) {
		c.Flags().StringVar(&f.expires, "expires", "", "expiry date, e.g. 12/31/9999 (Customer Key wants none)")
		c.Flags().StringVar(&f.notBefore, "not-before", "", "activation date")
		c.Flags().StringArrayVar(&f.ops, "ops", nil, "allowed operations (repeatable): encrypt, decrypt, sign, verify, wrapKey, unwrapKey")
		c.Flags().StringArrayVar(&f.tags, "tag", nil, "tag name=value (repeatable)")
	}

	create := mk("create --vault-name V --name K [--kty RSA] [--size 2048]", "Create a key, or a new version of it", cobra.NoArgs,
		func(cmd *cobra.Command, s *session, pr printer, f *keyFlags) error {
			attrs, err := f.attributes()
			if err != nil {
				return err
			}
			tags, err := f.tagMap()
			if err != nil {
				return err
			}
			kty := strings.ToUpper(f.kty)
			if f.hsm && !strings.HasSuffix(kty, "-HSM") {
				kty += "-HSM"
			}
			in := map[string]any{"kty": kty, "attributes": attrs}
			if strings.HasPrefix(kty, "EC") {
				in["crv"] = f.curve
			} else {
				in["key_size"] = f.size
			}
			if len(f.ops) > 0 {
				in["key_ops"] = f.ops
			}
			if tags != nil {
				in["tags"] = tags
			}
			var k keyBundle
			if err := s.vaultCall(cmd.Context(), f.vault, "POST", "/keys/"+url.PathEscape(f.name)+"/create", in, &k); err != nil {
				return err
			}
			return printKey(pr, k)
		}, func(c *cobra.Command, f *keyFlags) {
			nameFlag(c, f, true)
			attrFlags(c, f)
			c.Flags().StringVar(&f.kty, "kty", "RSA", "key type: RSA or EC")
			c.Flags().IntVar(&f.size, "size", 2048, "RSA key size: 2048, 3072 or 4096")
			c.Flags().StringVar(&f.curve, "curve", "P-256", "EC curve: P-256, P-384, P-521, P-256K")
			c.Flags().BoolVar(&f.hsm, "hsm", false, "protect the key with the HSM (premium vaults)")
			c.Flags().BoolVar(&f.disabled, "disabled", false, "create the key disabled")
		})

	importCmd := mk("import --vault-name V --name K --file KEY.pem|KEY.json", "Import a key from a PEM private key or a JSON Web Key", cobra.NoArgs,
		func(cmd *cobra.Command, s *session, pr printer, f *keyFlags) error {
			jwkBody, err := readKeyFile(f.file)
			if err != nil {
				return err
			}
			attrs, err := f.attributes()
			if err != nil {
				return err
			}
			in := map[string]any{"key": jwkBody, "Hsm": f.hsm, "attributes": attrs}
			var k keyBundle
			if err := s.vaultCall(cmd.Context(), f.vault, "PUT", "/keys/"+url.PathEscape(f.name), in, &k); err != nil {
				return err
			}
			return printKey(pr, k)
		}, func(c *cobra.Command, f *keyFlags) {
			nameFlag(c, f, true)
			attrFlags(c, f)
			c.Flags().StringVar(&f.file, "file", "", "PKCS#1/PKCS#8 PEM private key or JSON Web Key file (required)")
			c.Flags().BoolVar(&f.hsm, "hsm", false, "import into the HSM (premium vaults)")
			_ = c.MarkFlagRequired("file")
		})

	show := mk("show --vault-name V --name K [--version VER]", "Show a key: its URI (Id), Enabled, Expires, RecoveryLevel, KeyOps, KeySize; without --name, list the keys", cobra.NoArgs,
		func(cmd *cobra.Command, s *session, pr printer, f *keyFlags) error {
			if f.name == "" {
				ks, err := s.listKeys(cmd.Context(), f.vault, "/keys")
				if err != nil {
					return err
				}
				return printKeys(pr, ks)
			}
			var k keyBundle
			if err := s.vaultCall(cmd.Context(), f.vault, "GET", "/keys/"+url.PathEscape(f.name)+"/"+url.PathEscape(f.version), nil, &k); err != nil {
				return err
			}
			return printKey(pr, k)
		}, func(c *cobra.Command, f *keyFlags) {
			nameFlag(c, f, false)
			c.Flags().StringVar(&f.version, "version", "", "version (default the latest)")
		})

	list := mk("list --vault-name V [--deleted]", "List keys", cobra.NoArgs,
		func(cmd *cobra.Command, s *session, pr printer, f *keyFlags) error {
			path := "/keys"
			if f.deleted {
				path = "/deletedkeys"
			}
			ks, err := s.listKeys(cmd.Context(), f.vault, path)
			if err != nil {
				return err
			}
			return printKeys(pr, ks)
		}, func(c *cobra.Command, f *keyFlags) {
			c.Flags().BoolVar(&f.deleted, "deleted", false, "list soft-deleted keys")
		})

	versions := mk("versions --vault-name V --name K", "List a key's versions", cobra.NoArgs,
		func(cmd *cobra.Command, s *session, pr printer, f *keyFlags) error {
			ks, err := s.listKeys(cmd.Context(), f.vault, "/keys/"+url.PathEscape(f.name)+"/versions")
			if err != nil {
				return err
			}
			return printKeys(pr, ks)
		}, func(c *cobra.Command, f *keyFlags) { nameFlag(c, f, true) })

	var enable string
	update := mk("update --vault-name V --name K [--expires 12/31/9999] [--enable true|false]", "Update a key's attributes (an expiry can be changed, never removed)", cobra.NoArgs,
		func(cmd *cobra.Command, s *session, pr printer, f *keyFlags) error {
			attrs, err := f.attributes()
			if err != nil {
				return err
			}
			if enable != "" {
				b, err := strconv.ParseBool(enable)
				if err != nil {
					return fmt.Errorf("--enable %q: use true or false", enable)
				}
				attrs["enabled"] = b
			}
			tags, err := f.tagMap()
			if err != nil {
				return err
			}
			in := map[string]any{"attributes": attrs}
			if len(f.ops) > 0 {
				in["key_ops"] = f.ops
			}
			if tags != nil {
				in["tags"] = tags
			}
			var k keyBundle
			if err := s.vaultCall(cmd.Context(), f.vault, "PATCH", "/keys/"+url.PathEscape(f.name)+"/"+url.PathEscape(f.version), in, &k); err != nil {
				return err
			}
			return printKey(pr, k)
		}, func(c *cobra.Command, f *keyFlags) {
			nameFlag(c, f, true)
			attrFlags(c, f)
			c.Flags().StringVar(&f.version, "version", "", "version (default the latest)")
			c.Flags().StringVar(&enable, "enable", "", "true or false")
		})

	simple := func(use, short, method, pathFmt string, deleted bool) *cobra.Command {
		return mk(use, short, cobra.NoArgs, func(cmd *cobra.Command, s *session, pr printer, f *keyFlags) error {
			var k keyBundle
			err := s.vaultCall(cmd.Context(), f.vault, method, fmt.Sprintf(pathFmt, url.PathEscape(f.name)), nil, &k)
			if err != nil {
				return err
			}
			if method == "DELETE" && deleted {
				fmt.Fprintf(cmd.ErrOrStderr(), "Purged %s.\n", f.name)
				return nil
			}
			return printKey(pr, k)
		}, func(c *cobra.Command, f *keyFlags) { nameFlag(c, f, true) })
	}
	del := simple("delete --vault-name V --name K", "Delete a key (soft delete: recoverable for the vault's retention period)", "DELETE", "/keys/%s", false)
	recoverCmd := simple("recover --vault-name V --name K", "Recover a soft-deleted key", "POST", "/deletedkeys/%s/recover", false)
	purge := simple("purge --vault-name V --name K", "Purge a soft-deleted key for good (refused under purge protection)", "DELETE", "/deletedkeys/%s", true)
	rotate := simple("rotate --vault-name V --name K", "Create a new version of a key with the same type and size", "POST", "/keys/%s/rotate", false)

	backup := mk("backup --vault-name V --name K --file OUT", "Back up a key with all its versions to a file (restorable into a vault of the same subscription)", cobra.NoArgs,
		func(cmd *cobra.Command, s *session, pr printer, f *keyFlags) error {
			var out struct {
				Value string `json:"value"`
			}
			if err := s.vaultCall(cmd.Context(), f.vault, "POST", "/keys/"+url.PathEscape(f.name)+"/backup", nil, &out); err != nil {
				return err
			}
			if err := os.WriteFile(f.file, []byte(out.Value), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Backed up %s to %s; keep a copy online and one offline.\n", f.name, f.file)
			return nil
		}, func(c *cobra.Command, f *keyFlags) {
			nameFlag(c, f, true)
			c.Flags().StringVar(&f.file, "file", "", "output file (required)")
			_ = c.MarkFlagRequired("file")
		})
	restore := mk("restore --vault-name V --file IN", "Restore a key from a backup file", cobra.NoArgs,
		func(cmd *cobra.Command, s *session, pr printer, f *keyFlags) error {
			blob, err := os.ReadFile(f.file)
			if err != nil {
				return err
			}
			var k keyBundle
			if err := s.vaultCall(cmd.Context(), f.vault, "POST", "/keys/restore", map[string]string{"value": strings.TrimSpace(string(blob))}, &k); err != nil {
				return err
			}
			return printKey(pr, k)
		}, func(c *cobra.Command, f *keyFlags) {
			c.Flags().StringVar(&f.file, "file", "", "backup file (required)")
			_ = c.MarkFlagRequired("file")
		})
	cmd.AddCommand(create, importCmd, show, list, versions, update, del, recoverCmd, purge, rotate, backup, restore)
	return cmd
}

// readKeyFile reads a JSON Web Key, or a PEM private key which it turns
// into one.
func readKeyFile(path string) (map[string]any, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if b, _ := pem.Decode(raw); b != nil {
		var key any
		switch b.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			return nil, fmt.Errorf("%s holds a %s; give a private key", path, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return privateJWK(key)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s is neither PEM nor a JSON Web Key", path)
	}
	return m, nil
}

var errKeyType = errors.New("only RSA and EC private keys can be imported")
