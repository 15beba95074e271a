package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

// policyFamily is one of the two kinds of policy Exchange Online
// PowerShell manages: multi-workload (M365DataAtRestEncryptionPolicy) and
// Exchange mailbox (DataEncryptionPolicy) policies. Their commands are
// alike; only mailbox policies can be purged, and only multi-workload ones
// are tested and assigned to the whole tenant.
type policyFamily struct {
	noun       string // the command: m365-policy
	collection string // the API's collection: m365-policies
	cmdlet     string // the cmdlets' noun: M365DataAtRestEncryptionPolicy
	what       string // for help texts: multi-workload policy
	whats      string // its plural
	exchange   bool
}

var (
	m365Family = policyFamily{noun: "m365-policy", collection: "m365-policies",
		cmdlet: "M365DataAtRestEncryptionPolicy", what: "multi-workload policy", whats: "multi-workload policies"}
	exchangeFamily = policyFamily{noun: "exchange-policy", collection: "exchange-policies",
		cmdlet: "DataEncryptionPolicy", what: "mailbox policy", whats: "mailbox policies", exchange: true}
)

// policyColumns are the fields Get-DataEncryptionPolicy and
// Get-M365DataAtRestEncryptionPolicy show, under their names.
var policyColumns = []column{
	{"Name", "name"}, {"Id", "id"}, {"Description", "description"}, {"Enabled", "enabled"},
	{"AzureKeyIDs", "azureKeyIds"}, {"State", "state"}, {"KeyVersion", "keyVersion"}, {"RootKeys", "rootKeys"},
	{"WhenCreated", "createdTime"}, {"WhenChanged", "modifiedTime"},
}

// purgeColumns are the fields only mailbox policies have.
var purgeColumns = []column{
	{"PermanentDataPurgeRequested", "permanentDataPurgeRequested"}, {"PermanentDataPurgeReason", "permanentDataPurgeReason"},
	{"PermanentDataPurgeContact", "permanentDataPurgeContact"}, {"PurgeApprovals", "purgeApprovals"},
}

var policyListColumns = []column{
	{"Name", "name"}, {"Id", "id"}, {"Enabled", "enabled"}, {"State", "state"}, {"KeyVersion", "keyVersion"}, {"AzureKeyIDs", "azureKeyIds"},
}

// testColumns are the per-key results of Test-M365DataAtRestEncryptionPolicy.
var testColumns = []column{
	{"KeyId", "keyId"}, {"Result", "result"}, {"Failure", "failure"}, {"Message", "message"},
}

func (f policyFamily) columns() []column {
	if f.exchange {
		return append(append([]column(nil), policyColumns...), purgeColumns...)
	}
	return policyColumns
}

// keyIDs cleans the --azure-key-ids list: PowerShell's `"a", "b"` reaches
// the CLI with spaces around the commas. An empty entry is refused: it is
// a typo the server would refuse less clearly.
func keyIDs(ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" {
			return nil, fmt.Errorf("--azure-key-ids %q holds an empty key URI: separate the keys' URIs with single commas",
				strings.Join(ids, ","))
		}
		out = append(out, id)
	}
	return out, nil
}

// operatorTenant refuses an operator command without --tenant: the
// operator signs in to its own tenant, never the customer's whose policy
// it acts on.
func operatorTenant(verb, tenant string) error {
	if tenant == "" {
		return fmt.Errorf("%s acts on a customer tenant's policy: pass --tenant <the customer's tenant id or domain>", verb)
	}
	return nil
}

// policyCmd builds `m365-policy` or `exchange-policy`.
func policyCmd(g *globals, f policyFamily) *cobra.Command {
	cmd := &cobra.Command{Use: f.noun, Short: fmt.Sprintf("Customer Key %s (New-, Set-, Get-%s)", f.whats, f.cmdlet)}
	tenant := addTenantFlag(cmd)
	path := func(s *session, segments ...string) string {
		return tenantPath(s, *tenant, append([]string{f.collection}, segments...)...)
	}
	identityFlag := func(c *cobra.Command, id *string) {
		c.Flags().StringVar(id, "identity", "", "the policy's name or id (required)")
		_ = c.MarkFlagRequired("identity")
	}

	var name, desc string
	var keys []string
	var enabled bool
	create := &cobra.Command{
		Use:   "create --name NAME --azure-key-ids URI1,URI2 [--description TEXT] [--enabled=false]",
		Short: fmt.Sprintf("Create a %s wrapped by two root keys (New-%s)", f.what, f.cmdlet),
		Long: fmt.Sprintf(`Create a %s. Its policy key is wrapped by each root key and by an
availability key the service holds. Give the keys' URIs, versionless
(https://VAULT.SUFFIX/keys/NAME: the current version is used, and a refresh
picks up new ones) or versioned; use two keys in two different vaults.`, f.what),
		Args: cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			ids, err := keyIDs(keys)
			if err != nil {
				return err
			}
			in := map[string]any{"name": name, "azureKeyIds": ids, "description": desc, "enabled": enabled}
			raw, err := s.callRaw(cmd.Context(), http.MethodPost, path(s), in)
			if err != nil {
				return err
			}
			return printOne(pr, raw, f.columns())
		}),
	}
	create.Flags().StringVar(&name, "name", "", "a unique name (required)")
	create.Flags().StringSliceVar(&keys, "azure-key-ids", nil, "the root keys' URIs, comma-separated or repeated (required)")
	create.Flags().StringVar(&desc, "description", "", "description")
	create.Flags().BoolVar(&enabled, "enabled", true, "whether the policy can be used")
	_ = create.MarkFlagRequired("name")
	_ = create.MarkFlagRequired("azure-key-ids")

	list := &cobra.Command{
		Use:   "list",
		Short: fmt.Sprintf("List the tenant's %s (Get-%s)", f.whats, f.cmdlet),
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callList(cmd.Context(), path(s))
			if err != nil {
				return err
			}
			return printMany(pr, raw, policyListColumns)
		}),
	}

	var showID string
	show := &cobra.Command{
		Use:   "show --identity NAME|ID",
		Short: fmt.Sprintf("Show one %s (Get-%s -Identity)", f.what, f.cmdlet),
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callRaw(cmd.Context(), http.MethodGet, path(s, showID), nil)
			if err != nil {
				return err
			}
			return printOne(pr, raw, f.columns())
		}),
	}
	identityFlag(show, &showID)

	var setID, setName, setDesc string
	var setEnabled bool
	set := &cobra.Command{
		Use:   "set --identity NAME|ID [--name NEW] [--description TEXT] [--enabled=false]",
		Short: fmt.Sprintf("Rename, describe, enable or disable a %s (Set-%s)", f.what, f.cmdlet),
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			in := map[string]any{}
			fl := cmd.Flags()
			if fl.Changed("name") {
				in["name"] = setName
			}
			if fl.Changed("description") {
				in["description"] = setDesc
			}
			if fl.Changed("enabled") {
				in["enabled"] = setEnabled
			}
			if len(in) == 0 {
				return fmt.Errorf("nothing to change: give --name, --description or --enabled (new key versions: `%[1]s refresh`; other keys: `%[1]s replace`)", f.noun)
			}
			raw, err := s.callRaw(cmd.Context(), http.MethodPatch, path(s, setID), in)
			if err != nil {
				return err
			}
			return printOne(pr, raw, f.columns())
		}),
	}
	identityFlag(set, &setID)
	set.Flags().StringVar(&setName, "name", "", "new name")
	set.Flags().StringVar(&setDesc, "description", "", "new description")
	set.Flags().BoolVar(&setEnabled, "enabled", false, "enable (--enabled) or disable (--enabled=false) the policy")

	var refreshID string
	refresh := &cobra.Command{
		Use:   "refresh --identity NAME|ID",
		Short: fmt.Sprintf("Wrap the policy key under the root keys' current versions (Set-%s -Refresh)", f.cmdlet),
		Long: `Wrap the policy key under the root keys' current versions: run it after a
root key gets a new version. The data is rewrapped in the background.`,
		Args: cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callRaw(cmd.Context(), http.MethodPost, path(s, refreshID, "refresh"), nil)
			if err != nil {
				return err
			}
			return printOne(pr, raw, f.columns())
		}),
	}
	identityFlag(refresh, &refreshID)

	var replaceID string
	var replaceKeys []string
	replace := &cobra.Command{
		Use:   "replace --identity NAME|ID --azure-key-ids URI1,URI2",
		Short: fmt.Sprintf("Wrap the policy key under other root keys (Set-%s -Replace -AzureKeyIDs)", f.cmdlet),
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			ids, err := keyIDs(replaceKeys)
			if err != nil {
				return err
			}
			raw, err := s.callRaw(cmd.Context(), http.MethodPost, path(s, replaceID, "replace"), map[string]any{"azureKeyIds": ids})
			if err != nil {
				return err
			}
			return printOne(pr, raw, f.columns())
		}),
	}
	identityFlag(replace, &replaceID)
	replace.Flags().StringSliceVar(&replaceKeys, "azure-key-ids", nil, "the new root keys' URIs, comma-separated or repeated (required)")
	_ = replace.MarkFlagRequired("azure-key-ids")

	cmd.AddCommand(create, list, show, set, refresh, replace, recoveryCmd(g, tenant, path, f, true), recoveryCmd(g, tenant, path, f, false))
	if f.exchange {
		target := purgeTarget{
			usage: "--identity NAME|ID",
			flags: func(c *cobra.Command) { identityFlag(c, new(string)) },
			path: func(s *session, c *cobra.Command, action string) string {
				id, _ := c.Flags().GetString("identity")
				return path(s, id, action)
			},
		}
		cmd.AddCommand(purgeRequestCmd(g, target,
			"Ask for the permanent purge of the mailboxes under a policy (Set-DataEncryptionPolicy -PermanentDataPurgeRequested)",
			`Ask for the permanent purge of every mailbox under the policy. Refused unless
Exchange Online has lost wrap and unwrap on both root keys (revoke its access
first); afterwards the policy can no longer be assigned. Two operator
administrators must approve before the purge runs.`, f.columns()),
			purgeApproveCmd(g, tenant, target, f.columns()))
	} else {
		cmd.AddCommand(policyTestCmd(g, path), assignmentCmd(g, tenant))
	}
	return cmd
}

// recoveryCmd is the operator's `start-recovery` (on) or `end-recovery`:
// a customer who lost both root keys is served from the policy's
// availability key, user requests included, until the operator ends it.
func recoveryCmd(g *globals, tenant *string, path func(*session, ...string) string, f policyFamily, on bool) *cobra.Command {
	var id, reason string
	use, short := "end-recovery --tenant CUSTOMER --identity NAME|ID", "End the recovery of a policy (operator)"
	if on {
		use = "start-recovery --tenant CUSTOMER --identity NAME|ID --reason TEXT"
		short = "Serve a policy from its availability key because the customer lost both root keys (operator)"
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

While a policy is in recovery, user requests that no root key can serve are
served from the policy's availability key, each use audited as "Fallback to
Availability Key", so the customer can create new keys and a new policy and
move its data there. Only the operator's Global Administrators may start or
end it; a purge request ends it.`,
		Args: cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			verb := "end-recovery"
			if on {
				verb = "start-recovery"
			}
			if err := operatorTenant(verb, *tenant); err != nil {
				return err
			}
			method, body := http.MethodDelete, any(nil)
			if on {
				method, body = http.MethodPut, map[string]string{"reason": reason}
			}
			raw, err := s.callRaw(cmd.Context(), method, path(s, id, "recovery"), body)
			if err != nil {
				return err
			}
			return printOne(pr, raw, f.columns())
		}),
	}
	c.Flags().StringVar(&id, "identity", "", "the policy's name or id (required)")
	_ = c.MarkFlagRequired("identity")
	if on {
		c.Flags().StringVar(&reason, "reason", "", "what the customer reported (required)")
		_ = c.MarkFlagRequired("reason")
	}
	return c
}

// purgeTarget is what a purge command acts on: a mailbox policy
// (--identity) or a geo's SharePoint policy (--geo).
type purgeTarget struct {
	usage string               // how the usage line names it
	flags func(*cobra.Command) // adds the flags usage names
	path  func(s *session, c *cobra.Command, action string) string
}

// purgeRequestCmd is `request-purge` of mailbox and SharePoint policies.
func purgeRequestCmd(g *globals, t purgeTarget, short, long string, cols []column) *cobra.Command {
	var reason, contact string
	var force bool
	c := &cobra.Command{
		Use:   "request-purge " + t.usage + " --reason TEXT [--contact EMAIL] [--force]",
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			in := map[string]any{"reason": reason, "contact": contact, "force": force}
			raw, err := s.callRaw(cmd.Context(), http.MethodPost, t.path(s, cmd, "purge-request"), in)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "Purge requested: it runs once two operator administrators approve it.")
			return printOne(pr, raw, cols)
		}),
	}
	t.flags(c)
	c.Flags().StringVar(&reason, "reason", "", "why the data must be purged (-PermanentDataPurgeReason) (required)")
	c.Flags().StringVar(&contact, "contact", "", "who to contact about the purge (-PermanentDataPurgeContact)")
	c.Flags().BoolVar(&force, "force", false, "proceed although a key vault itself was deleted")
	_ = c.MarkFlagRequired("reason")
	return c
}

// purgeApproveCmd is the operator's `approve-purge`.
func purgeApproveCmd(g *globals, tenant *string, t purgeTarget, cols []column) *cobra.Command {
	c := &cobra.Command{
		Use:   "approve-purge --tenant CUSTOMER " + t.usage,
		Short: "Approve a requested purge (operator; the second approval, by another administrator, runs it)",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			if err := operatorTenant("approve-purge", *tenant); err != nil {
				return err
			}
			raw, err := s.callRaw(cmd.Context(), http.MethodPost, t.path(s, cmd, "purge-approvals"), nil)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "Approval recorded.")
			return printOne(pr, raw, cols)
		}),
	}
	t.flags(c)
	return c
}

func policyTestCmd(g *globals, path func(*session, ...string) string) *cobra.Command {
	var id string
	c := &cobra.Command{
		Use:   "test --identity NAME|ID",
		Short: "Wrap and unwrap with each root key as the workload does (Test-M365DataAtRestEncryptionPolicy)",
		Long: `Unwrap the stored policy key, then wrap and unwrap a test value, with each of
the policy's root keys, as the workload identity: a key fails when its vault
refuses the workload (role or access removed), the key is disabled, expired
or gone. The command fails when any key fails.`,
		Args: cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callRaw(cmd.Context(), http.MethodPost, path(s, id, "test"), nil)
			if err != nil {
				return err
			}
			var out struct {
				Results json.RawMessage `json:"results"`
			}
			var results []struct {
				Result string `json:"result"`
			}
			if json.Unmarshal(raw, &out) != nil || json.Unmarshal(out.Results, &results) != nil {
				return errors.New("the server's test answer is not {\"results\":[…]}")
			}
			if pr.format == "json" {
				err = pr.print(raw, nil, nil)
			} else {
				err = printMany(pr, out.Results, testColumns)
			}
			if err != nil {
				return err
			}
			failed := 0
			for _, r := range results {
				if r.Result != "Success" {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of the policy's %d root keys failed the test: the Failure and Message columns say why", failed, len(results))
			}
			return nil
		}),
	}
	c.Flags().StringVar(&id, "identity", "", "the policy's name or id (required)")
	_ = c.MarkFlagRequired("identity")
	return c
}

func assignmentCmd(g *globals, tenant *string) *cobra.Command {
	cmd := &cobra.Command{Use: "assignment", Short: "The multi-workload policy assigned to the tenant (Get-, Set-M365DataAtRestEncryptionPolicyAssignment)"}
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the assigned multi-workload policy (Get-M365DataAtRestEncryptionPolicyAssignment)",
		Args:  cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callRaw(cmd.Context(), http.MethodGet, tenantPath(s, *tenant, "m365-policy-assignment"), nil)
			if err != nil {
				return err
			}
			return printAssignment(pr, raw)
		}),
	}
	var policy string
	set := &cobra.Command{
		Use:   "set --data-encryption-policy NAME|ID",
		Short: "Assign a multi-workload policy to the tenant, replacing the one assigned (Set-M365DataAtRestEncryptionPolicyAssignment)",
		Long: `Assign a multi-workload policy to the tenant; it replaces the policy assigned
before. The policy must be enabled. Existing data is rewrapped in the
background.`,
		Args: cobra.NoArgs,
		RunE: g.runE(func(cmd *cobra.Command, s *session, pr printer) error {
			raw, err := s.callRaw(cmd.Context(), http.MethodPut, tenantPath(s, *tenant, "m365-policy-assignment"),
				map[string]string{"dataEncryptionPolicy": policy})
			if err != nil {
				return err
			}
			return printAssignment(pr, raw)
		}),
	}
	set.Flags().StringVar(&policy, "data-encryption-policy", "", "the policy's name or id (required)")
	_ = set.MarkFlagRequired("data-encryption-policy")
	cmd.AddCommand(show, set)
	return cmd
}

// printAssignment prints {"dataEncryptionPolicy": policy or null}.
func printAssignment(pr printer, raw json.RawMessage) error {
	if pr.format == "json" || len(raw) == 0 {
		return printOne(pr, raw, nil)
	}
	var a struct {
		Policy json.RawMessage `json:"dataEncryptionPolicy"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return errNotObject
	}
	if len(a.Policy) == 0 || string(a.Policy) == "null" {
		return pr.printFields(raw, [][2]string{{"DataEncryptionPolicy", "(none: the tenant's workloads use service-managed keys)"}})
	}
	return printOne(pr, a.Policy, append([]column{{"DataEncryptionPolicy", "name"}}, policyColumns[1:]...))
}
