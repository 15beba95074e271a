package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// defaultGeo is the geo of a tenant that is not multi-geo, whose SharePoint
// cmdlets name none: Microsoft's code for North America, the default
// location of a tenant's data.
const defaultGeo = "NAM"

// spoPollSeconds is how often --wait asks for a geo's progress.
const spoPollSeconds = 2

// spoColumns are the fields Get-SPODataEncryptionPolicy shows.
var spoColumns = []column{
	{"Geo", "geo"}, {"State", "state"}, {"PercentComplete", "percentComplete"},
	{"PrimaryKeyId", "primaryKeyId"}, {"SecondaryKeyId", "secondaryKeyId"},
}

// keyRef is a root key as the SharePoint cmdlets take it: by vault, name
// and version (-PrimaryKeyVaultName -PrimaryKeyName -PrimaryKeyVersion) or
// by URI (-PrimaryKeyVaultUri, the form Managed HSM keys need).
type keyRef struct{ vault, name, version, uri string }

// addFlags adds --{prefix}key-vault-name, -key-name, -key-version and
// -key-uri; what names the key in help texts.
func (k *keyRef) addFlags(c *cobra.Command, prefix, what string) {
	c.Flags().StringVar(&k.vault, prefix+"key-vault-name", "", "the "+what+"key's vault")
	c.Flags().StringVar(&k.name, prefix+"key-name", "", "the "+what+"key's name")
	c.Flags().StringVar(&k.version, prefix+"key-version", "", "the "+what+"key's version (SharePoint pins it)")
	c.Flags().StringVar(&k.uri, prefix+"key-uri", "", "the "+what+"key's URI, instead of its vault, name and version")
}

// resolve returns the key's URI, building it from the vault's name with
// the vault DNS suffix the server announces.
func (k keyRef) resolve(ctx context.Context, s *session, prefix string) (string, error) {
	byName := k.vault != "" || k.name != "" || k.version != ""
	switch {
	case k.uri != "" && byName:
		return "", fmt.Errorf("give either --%[1]skey-uri or --%[1]skey-vault-name, --%[1]skey-name and --%[1]skey-version, not both", prefix)
	case k.uri != "":
		return k.uri, nil
	case k.vault == "" || k.name == "":
		return "", fmt.Errorf("give --%[1]skey-vault-name and --%[1]skey-name (and --%[1]skey-version), or --%[1]skey-uri", prefix)
	}
	base, err := s.vaultURL(ctx, k.vault)
	if err != nil {
		return "", err
	}
	return keyURI(base, k.name, k.version), nil
}

// keyURI is a key's identifier in the vault at base: versioned when
// version is given, versionless otherwise.
func keyURI(base, name, version string) string {
	u := strings.TrimSuffix(base, "/") + "/keys/" + url.PathEscape(name)
	if version != "" {
		u += "/" + url.PathEscape(version)
	}
	return u
}

// spoState is what --wait reads of a geo's policy.
type spoState struct {
	State           string  `json:"state"`
	PercentComplete float64 `json:"percentComplete"`
}

// waitRegistered follows a geo's policy from its answer raw until it is
// Registered, asking get every spoPollSeconds and writing each change of
// state or progress to progress. It fails when the policy leaves
// Registering and Rolling for another state, or after timeout; either way
// it returns the last answer.
func waitRegistered(ctx context.Context, raw json.RawMessage, get func(context.Context) (json.RawMessage, error),
	progress io.Writer, geo string, timeout time.Duration) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		var st spoState
		if err := json.Unmarshal(raw, &st); err != nil {
			return raw, fmt.Errorf("the server's answer about geo %s is not a SharePoint policy: %w", geo, err)
		}
		if st.State == "" {
			return raw, fmt.Errorf("the server's answer about geo %s has no state", geo)
		}
		pct := strconv.FormatFloat(st.PercentComplete, 'f', -1, 64)
		if line := st.State + ": " + pct + "% of sites"; line != last {
			fmt.Fprintln(progress, line)
			last = line
		}
		switch st.State {
		case "Registered":
			return raw, nil
		case "Registering", "Rolling":
		default:
			return raw, fmt.Errorf("geo %s's policy is %s, not Registered", geo, st.State)
		}
		stillErr := fmt.Errorf("geo %s's policy is still %s (%s%%) after %s; follow it with `customerkey spo-policy show --geo %s`",
			geo, st.State, pct, timeout, geo)
		if sleep(ctx, spoPollSeconds) != nil {
			return raw, stillErr
		}
		next, err := get(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return raw, stillErr
			}
			return raw, err
		}
		raw = next
	}
}

func spoPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "spo-policy", Short: "SharePoint and OneDrive geo policies (Register-, Update-, Get-, Restore-SPODataEncryptionPolicy)"}
	tenant := addTenantFlag(cmd)
	path := func(s *session, geo string, segments ...string) string {
		return tenantPath(s, *tenant, append([]string{"sharepoint", "policies", geo}, segments...)...)
	}
	geoFlag := func(c *cobra.Command, geo *string) {
		c.Flags().StringVar(geo, "geo", defaultGeo, "the geo (one policy per geo)")
	}
	waitFlags := func(c *cobra.Command, wait *bool, timeout *time.Duration) {
		c.Flags().BoolVar(wait, "wait", false, "follow the progress on stderr until the geo is Registered")
		c.Flags().DurationVar(timeout, "timeout", 30*time.Minute, "how long --wait follows it")
	}
	// finish prints a geo's policy, first following it with --wait.
	finish := func(cmd *cobra.Command, s *session, pr printer, raw json.RawMessage, geo string, wait bool, timeout time.Duration) error {
		if wait {
			var err error
			raw, err = waitRegistered(cmd.Context(), raw, func(ctx context.Context) (json.RawMessage, error) {
				return s.callRaw(ctx, http.MethodGet, path(s, geo), nil)
			}, cmd.ErrOrStderr(), geo, timeout)
			if err != nil {
				_ = printOne(pr, raw, spoColumns)
				return err
			}
		}
		return printOne(pr, raw, spoColumns)
	}
	// pair is register and restore: both take the primary and secondary key.
	pair := func(use, short, long, method, action string, operator bool) *cobra.Command {
		var geo string
		var primary, secondary keyRef
		var wait bool
		var timeout time.Duration
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Long:  long,
			Args:  cobra.NoArgs,
			RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
				if operator {
					if err := operatorTenant(cmd.Name(), *tenant); err != nil {
						return err
					}
				}
				p, err := primary.resolve(cmd.Context(), s, "primary-")
				if err != nil {
					return err
				}
				sec, err := secondary.resolve(cmd.Context(), s, "secondary-")
				if err != nil {
					return err
				}
				segments := []string{}
				if action != "" {
					segments = append(segments, action)
				}
				raw, err := s.callRaw(cmd.Context(), method, path(s, geo, segments...), map[string]string{"primaryKeyId": p, "secondaryKeyId": sec})
				if err != nil {
					return err
				}
				return finish(cmd, s, pr, raw, geo, wait, timeout)
			}),
		}
		geoFlag(c, &geo)
		primary.addFlags(c, "primary-", "primary ")
		secondary.addFlags(c, "secondary-", "secondary ")
		waitFlags(c, &wait, &timeout)
		return c
	}
	keysUsage := " (--primary-key-vault-name V --primary-key-name K --primary-key-version VER | --primary-key-uri URI) (--secondary-… likewise) [--geo GEO] [--wait]"
	register := pair("register"+keysUsage,
		"Protect a geo's SharePoint and OneDrive files with two root keys (Register-SPODataEncryptionPolicy)",
		`Register the geo's policy: its tenant intermediate key is wrapped by both root
keys, and every site's key is then rewrapped under it (state Registering,
with the percentage of sites done, then Registered). The tenant must be
onboarded for Exchange or multi-workload policies first.`,
		http.MethodPut, "", false)
	restore := pair("restore --tenant CUSTOMER"+keysUsage,
		"Bring a geo back from recovery mode under the customer's keys (operator; Restore-SPODataEncryptionPolicy)",
		`Restore a geo after a recovery with the availability key: its tenant
intermediate key is wrapped by the given root keys again.`,
		http.MethodPost, "restore", true)

	var upGeo, keyType string
	var upKey keyRef
	var upWait bool
	var upTimeout time.Duration
	update := &cobra.Command{
		Use:   "update --key-type Primary|Secondary (--key-vault-name V --key-name K --key-version VER | --key-uri URI) [--geo GEO] [--wait]",
		Short: "Roll one of a geo's root keys (Update-SPODataEncryptionPolicy)",
		Long: `Replace the primary or the secondary root key of a geo (state Rolling, with the
percentage of sites done, then Registered). One key at a time: roll the other
once the first roll is done.`,
		Args: cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			k, err := upKey.resolve(cmd.Context(), s, "")
			if err != nil {
				return err
			}
			raw, err := s.callRaw(cmd.Context(), http.MethodPatch, path(s, upGeo), map[string]string{"keyType": keyType, "keyId": k})
			if err != nil {
				return err
			}
			return finish(cmd, s, pr, raw, upGeo, upWait, upTimeout)
		}),
	}
	geoFlag(update, &upGeo)
	upKey.addFlags(update, "", "new ")
	update.Flags().StringVar(&keyType, "key-type", "", "which key to roll: Primary or Secondary (required)")
	_ = update.MarkFlagRequired("key-type")
	waitFlags(update, &upWait, &upTimeout)

	var showGeo string
	show := &cobra.Command{
		Use:   "show [--geo GEO]",
		Short: "Show a geo's policy: its keys, State and PercentComplete (Get-SPODataEncryptionPolicy)",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callRaw(cmd.Context(), http.MethodGet, path(s, showGeo), nil)
			if err != nil {
				return err
			}
			return printOne(pr, raw, spoColumns)
		}),
	}
	geoFlag(show, &showGeo)

	list := &cobra.Command{
		Use:   "list",
		Short: "List the tenant's geo policies",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callList(cmd.Context(), tenantPath(s, *tenant, "sharepoint", "policies"))
			if err != nil {
				return err
			}
			return printMany(pr, raw, spoColumns)
		}),
	}

	target := purgeTarget{
		usage: "[--geo GEO]",
		flags: func(c *cobra.Command) { geoFlag(c, new(string)) },
		path: func(s *session, c *cobra.Command, action string) string {
			geo, _ := c.Flags().GetString("geo")
			return path(s, geo, action)
		},
	}
	cmd.AddCommand(register, update, show, list, restore,
		purgeRequestCmd(g, target, "Ask for the permanent purge of a geo's SharePoint and OneDrive files",
			`Ask for the permanent purge of the geo's files. Two operator administrators
must approve before the purge runs.`, spoColumns),
		purgeApproveCmd(g, tenant, target, spoColumns))
	return cmd
}
