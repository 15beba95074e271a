// Package cli holds the client-side commands of the customerkey binary:
// `customerkey <noun> <verb>`, human tables by default and `-o json`
// everywhere. It talks to a server over HTTPS only, with the endpoint and
// CA from CUSTOMERKEY_ENDPOINT and CUSTOMERKEY_CA_FILE and application
// credentials from AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET,
// as Azure tools do. It imports no server package.
package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// globals are the flags every client command takes.
type globals struct {
	output          string
	endpoint        string
	caFile          string
	credentialsFile string
}

// AddCommands adds the client commands to root.
func AddCommands(root *cobra.Command) {
	g := &globals{}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	pf.StringVar(&g.endpoint, "endpoint", "", "server URL (default $CUSTOMERKEY_ENDPOINT or the saved login)")
	pf.StringVar(&g.caFile, "ca-file", "", "CA certificate to trust (default $CUSTOMERKEY_CA_FILE or the saved login)")
	pf.StringVar(&g.credentialsFile, "credentials-file", "", "sign in with an operator.json-style credentials file")
	root.AddCommand(loginCmd(g), logoutCmd(), tenantCmd(g), spCmd(g), userCmd(g), directoryRoleCmd(g), auditCmd(g),
		subscriptionCmd(g), groupCmd(g), providerCmd(g), featureCmd(g), vaultCmd(g), roleCmd(g), keyCmd(g),
		onboardingCmd(g), benchCmd(g), policyCmd(g, m365Family), policyCmd(g, exchangeFamily), spoPolicyCmd(g), siteCmd(g),
		fileCmd(g), mailboxCmd(g), messageCmd(g), encryptionCmd(g))
}

// printer renders either JSON or a table.
type printer struct {
	w      io.Writer
	format string
}

func (g *globals) printer(cmd *cobra.Command) (printer, error) {
	switch g.output {
	case "table", "json":
		return printer{w: cmd.OutOrStdout(), format: g.output}, nil
	}
	return printer{}, fmt.Errorf("--output %q: use table or json", g.output)
}

// begin resolves the session and the printer every command needs.
func (g *globals) begin(cmd *cobra.Command) (*session, printer, error) {
	pr, err := g.printer(cmd)
	if err != nil {
		return nil, printer{}, err
	}
	s, err := g.resolve()
	return s, pr, err
}

// print writes v as JSON, or as a table of headers and rows.
func (p printer) print(v any, headers []string, rows [][]string) error {
	if p.format == "json" {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printFields writes one object as JSON, or as "Name : value" lines the
// way PowerShell's Format-List shows an object.
func (p printer) printFields(v any, fields [][2]string) error {
	if p.format == "json" {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	width := 0
	for _, f := range fields {
		width = max(width, len(f[0]))
	}
	for _, f := range fields {
		fmt.Fprintf(p.w, "%-*s : %s\n", width, f[0], f[1])
	}
	return nil
}

// cmdlet is how one of the seed's PowerShell cmdlets becomes a command.
type cmdlet struct {
	args  []string          // the command
	flags map[string]string // value parameters, by lower-case name: -VaultName X → --vault-name X
	typed map[string]param  // the other parameters
	// picks choose another command when a parameter is given, the first
	// that is: a Set- cmdlet's parameter sets are different operations
	// (Set-DataEncryptionPolicy -Refresh → exchange-policy refresh).
	picks []pick
}

type pick struct {
	param string
	args  []string
}

// paramKind says how a PowerShell parameter that is not a plain value
// becomes flags.
type paramKind int

const (
	// nullableParam is a value whose $null clears it: Set-Mailbox
	// -DataEncryptionPolicy $null → --clear-data-encryption-policy.
	nullableParam paramKind = iota + 1
	// listParam: -AzureKeyIDs "a","b" reaches the program as `a,b`, or as
	// `a,` `b` when written with spaces; it becomes --azure-key-ids a,b.
	listParam
	// boolParam: -Enabled $false or -Enabled:$false → --enabled=false (a
	// boolean flag takes a value only after '=').
	boolParam
	// switchParam: -Force → --force; -Force:$false → --force=false.
	switchParam
	// selectParam only picks the command (-Refresh) and is dropped.
	selectParam
	// promptParam only silences PowerShell's confirmation prompt, which
	// the CLI never shows (-Force of most Set- cmdlets): dropped.
	promptParam
	// choiceParam takes one of a fixed set of values, each of which
	// becomes flags of its own: -Destination HSM → --hsm. PowerShell
	// matches such values without regard to case. Any other value, or
	// none, passes through unchanged, as an unknown parameter does, so
	// that the command rejects it.
	choiceParam
)

type param struct {
	kind paramKind
	flag string
	null string // nullableParam: the flag $null becomes
	// with makes a switchParam a promptParam unless the selectParam named
	// here is given too: -Force means something only for a purge request.
	with string
	// choices are a choiceParam's flags, by lower-case value.
	choices map[string][]string
}

// Parameters several cmdlets share.
var (
	policyFlags    = map[string]string{"identity": "--identity", "name": "--name", "description": "--description"}
	newPolicyTyped = map[string]param{"azurekeyids": {kind: listParam, flag: "--azure-key-ids"}, "enabled": {kind: boolParam, flag: "--enabled"}}
	setPolicyTyped = map[string]param{"azurekeyids": {kind: listParam, flag: "--azure-key-ids"}, "enabled": {kind: boolParam, flag: "--enabled"},
		"refresh": {kind: selectParam}, "replace": {kind: selectParam}, "force": {kind: promptParam}}
	spoKeyFlags = map[string]string{
		"primarykeyvaultname": "--primary-key-vault-name", "primarykeyname": "--primary-key-name", "primarykeyversion": "--primary-key-version",
		"secondarykeyvaultname": "--secondary-key-vault-name", "secondarykeyname": "--secondary-key-name", "secondarykeyversion": "--secondary-key-version",
		"primarykeyvaulturi": "--primary-key-uri", "secondarykeyvaulturi": "--secondary-key-uri"}
	identityParams = map[string]string{"identity": "--identity"}
	mailboxPolicy  = map[string]param{"dataencryptionpolicy": {kind: nullableParam, flag: "--data-encryption-policy", null: "--clear-data-encryption-policy"}}
)

// cmdlets maps the seed's PowerShell cmdlets to commands, and their
// parameters to flags, so that the setup guide can be followed as written.
var cmdlets = map[string]cmdlet{
	"get-azadserviceprincipal":    {args: []string{"sp", "show"}, flags: map[string]string{"serviceprincipalname": "--app-id", "applicationid": "--app-id"}},
	"new-azadserviceprincipal":    {args: []string{"sp", "create"}, flags: map[string]string{"applicationid": "--app-id"}},
	"get-azproviderfeature":       {args: []string{"feature", "show"}, flags: map[string]string{"featurename": "--name", "providernamespace": "--namespace"}},
	"register-azproviderfeature":  {args: []string{"feature", "register"}, flags: map[string]string{"featurename": "--name", "providernamespace": "--namespace"}},
	"register-azresourceprovider": {args: []string{"provider", "register"}, flags: map[string]string{"providernamespace": "--namespace"}},
	"new-customerkeyonboardingrequest": {args: []string{"onboarding", "new"}, flags: map[string]string{"organization": "--organization", "scenario": "--scenario",
		"subscription1": "--subscription1", "vaultname1": "--vault-name1", "keyname1": "--key-name1", "keyidentifier1": "--key-identifier1",
		"subscription2": "--subscription2", "vaultname2": "--vault-name2", "keyname2": "--key-name2", "keyidentifier2": "--key-identifier2",
		"onboardingmode": "--onboarding-mode"}},
	"get-customerkeyonboardingrequest": {args: []string{"onboarding", "get"}, flags: map[string]string{"organizationid": "--organization-id", "requestid": "--request-id"}},
	"get-azkeyvault":                   {args: []string{"vault", "show"}, flags: map[string]string{"vaultname": "--name"}},
	"add-azkeyvaultkey": {args: []string{"key", "create"}, flags: map[string]string{"vaultname": "--vault-name", "name": "--name",
		"expires": "--expires", "notbefore": "--not-before", "keyops": "--ops", "size": "--size", "keytype": "--kty"},
		// -Destination HSM is how the seed's premium vaults get HSM-protected
		// keys (RSA-HSM); Software is the default of `key create`.
		typed: map[string]param{"destination": {kind: choiceParam, choices: map[string][]string{"hsm": {"--hsm"}, "software": {"--hsm=false"}}}}},
	"get-azkeyvaultkey":         {args: []string{"key", "show"}, flags: map[string]string{"vaultname": "--vault-name", "name": "--name", "version": "--version"}},
	"update-azkeyvaultkey":      {args: []string{"key", "update"}, flags: map[string]string{"vaultname": "--vault-name", "name": "--name", "expires": "--expires", "enable": "--enable"}},
	"backup-azkeyvaultkey":      {args: []string{"key", "backup"}, flags: map[string]string{"vaultname": "--vault-name", "name": "--name", "outputfile": "--file"}},
	"restore-azkeyvaultkey":     {args: []string{"key", "restore"}, flags: map[string]string{"vaultname": "--vault-name", "inputfile": "--file"}},
	"remove-azkeyvaultkey":      {args: []string{"key", "delete"}, flags: map[string]string{"vaultname": "--vault-name", "name": "--name"}},
	"undo-azkeyvaultkeyremoval": {args: []string{"key", "recover"}, flags: map[string]string{"vaultname": "--vault-name", "name": "--name"}},

	"new-m365dataatrestencryptionpolicy": {args: []string{"m365-policy", "create"}, flags: policyFlags, typed: newPolicyTyped},
	"set-m365dataatrestencryptionpolicy": {args: []string{"m365-policy", "set"}, flags: policyFlags, typed: setPolicyTyped,
		picks: []pick{{"refresh", []string{"m365-policy", "refresh"}}, {"replace", []string{"m365-policy", "replace"}}}},
	"get-m365dataatrestencryptionpolicy": {args: []string{"m365-policy", "list"}, flags: identityParams,
		picks: []pick{{"identity", []string{"m365-policy", "show"}}}},
	"test-m365dataatrestencryptionpolicy": {args: []string{"m365-policy", "test"}, flags: identityParams},
	"set-m365dataatrestencryptionpolicyassignment": {args: []string{"m365-policy", "assignment", "set"},
		flags: map[string]string{"dataencryptionpolicy": "--data-encryption-policy"}, typed: map[string]param{"force": {kind: promptParam}}},
	"get-m365dataatrestencryptionpolicyassignment": {args: []string{"m365-policy", "assignment", "show"}},

	"new-dataencryptionpolicy": {args: []string{"exchange-policy", "create"}, flags: policyFlags, typed: newPolicyTyped},
	"set-dataencryptionpolicy": {args: []string{"exchange-policy", "set"},
		flags: map[string]string{"identity": "--identity", "name": "--name", "description": "--description",
			"permanentdatapurgereason": "--reason", "permanentdatapurgecontact": "--contact"},
		typed: map[string]param{"azurekeyids": {kind: listParam, flag: "--azure-key-ids"}, "enabled": {kind: boolParam, flag: "--enabled"},
			"refresh": {kind: selectParam}, "replace": {kind: selectParam}, "permanentdatapurgerequested": {kind: selectParam},
			"force": {kind: switchParam, flag: "--force", with: "permanentdatapurgerequested"}},
		picks: []pick{{"refresh", []string{"exchange-policy", "refresh"}}, {"replace", []string{"exchange-policy", "replace"}},
			{"permanentdatapurgerequested", []string{"exchange-policy", "request-purge"}}}},
	"get-dataencryptionpolicy": {args: []string{"exchange-policy", "list"}, flags: identityParams,
		picks: []pick{{"identity", []string{"exchange-policy", "show"}}}},
	"set-mailbox":           {args: []string{"mailbox", "set"}, flags: identityParams, typed: mailboxPolicy},
	"set-mailuser":          {args: []string{"mailbox", "set"}, flags: identityParams, typed: mailboxPolicy},
	"get-mailbox":           {args: []string{"mailbox", "list"}, flags: identityParams, picks: []pick{{"identity", []string{"mailbox", "show"}}}},
	"get-mailboxstatistics": {args: []string{"mailbox", "statistics"}, flags: identityParams},

	"register-spodataencryptionpolicy": {args: []string{"spo-policy", "register"}, flags: spoKeyFlags},
	"restore-spodataencryptionpolicy":  {args: []string{"spo-policy", "restore"}, flags: spoKeyFlags},
	"update-spodataencryptionpolicy": {args: []string{"spo-policy", "update"}, flags: map[string]string{"keyvaultname": "--key-vault-name",
		"keyname": "--key-name", "keyversion": "--key-version", "keyvaulturi": "--key-uri", "keytype": "--key-type"}},
	"get-spodataencryptionpolicy":     {args: []string{"spo-policy", "show"}},
	"get-spositedataencryptionpolicy": {args: []string{"site", "encryption"}, flags: map[string]string{"identity": "--site"}},
}

// RewriteCmdlet turns `Get-AzADServicePrincipal -ServicePrincipalName X`
// into `sp show --app-id X` and `Set-DataEncryptionPolicy -Identity P
// -Enabled $false` into `exchange-policy set --identity P --enabled=false`.
// Parameters are matched without regard to case and may carry their value
// after a colon (-Enabled:$false); $true and $false become true and false.
// Other arguments, and unknown parameters, pass through unchanged.
func RewriteCmdlet(args []string) []string {
	if len(args) == 0 {
		return args
	}
	c, ok := cmdlets[strings.ToLower(args[0])]
	if !ok {
		return args
	}
	rest := args[1:]
	given := map[string]bool{}
	for _, a := range rest {
		if name, _, _, ok := psParam(a); ok {
			given[name] = true
		}
	}
	cmd := c.args
	for _, p := range c.picks {
		if given[p.param] {
			cmd = p.args
			break
		}
	}
	out := append([]string(nil), cmd...)
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		name, inline, hasInline, ok := psParam(a)
		if !ok {
			out = append(out, a)
			continue
		}
		// value is the parameter's value: after its colon, or the next
		// argument (consumed).
		value := func() (string, bool) {
			if hasInline {
				return inline, true
			}
			if i+1 < len(rest) {
				i++
				return rest[i], true
			}
			return "", false
		}
		if f, ok := c.flags[name]; ok {
			out = append(out, f)
			if v, ok := value(); ok {
				out = append(out, psValue(v))
			}
			continue
		}
		p, ok := c.typed[name]
		if !ok {
			out = append(out, a)
			continue
		}
		switch p.kind {
		case nullableParam:
			v, ok := value()
			switch {
			case ok && strings.EqualFold(v, "$null"):
				out = append(out, p.null)
			case ok:
				out = append(out, p.flag, psValue(v))
			default:
				out = append(out, p.flag)
			}
		case listParam:
			v, ok := value()
			for ok && strings.HasSuffix(v, ",") && i+1 < len(rest) {
				i++
				v += rest[i]
			}
			out = append(out, p.flag)
			if ok {
				out = append(out, v)
			}
		case boolParam:
			switch {
			case hasInline:
				out = append(out, p.flag+"="+psValue(inline))
			case i+1 < len(rest) && isPSBool(rest[i+1]):
				i++
				out = append(out, p.flag+"="+psValue(rest[i]))
			default:
				out = append(out, p.flag)
			}
		case switchParam:
			switch {
			case p.with != "" && !given[p.with]:
			case hasInline:
				out = append(out, p.flag+"="+psValue(inline))
			default:
				out = append(out, p.flag)
			}
		case choiceParam:
			v, ok := value()
			if flags, known := p.choices[strings.ToLower(v)]; ok && known {
				out = append(out, flags...)
				continue
			}
			out = append(out, a)
			if ok && !hasInline {
				out = append(out, v)
			}
		case selectParam, promptParam:
		}
	}
	return out
}

// psParam splits a PowerShell parameter, -Name or -Name:value, into its
// lower-case name and inline value; ok is false for anything else,
// including the CLI's own --flags.
func psParam(a string) (name, value string, inline, ok bool) {
	if len(a) < 2 || a[0] != '-' || a[1] == '-' {
		return "", "", false, false
	}
	name, value, inline = strings.Cut(a[1:], ":")
	return strings.ToLower(name), value, inline, true
}

// psValue spells PowerShell's $true and $false as the CLI's flags do.
func psValue(v string) string {
	switch strings.ToLower(v) {
	case "$true":
		return "true"
	case "$false":
		return "false"
	}
	return v
}

func isPSBool(v string) bool {
	switch strings.ToLower(v) {
	case "$true", "$false", "true", "false":
		return true
	}
	return false
}
